"""Task lines between an executor and a worker: a job's next datum goes as a follow-up line."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from tusk.errors import InvalidArgument
from tusk.storage import ChunkRef
from tusk.worker.protocol import (
    DatumInput,
    DatumTask,
    InputFile,
    TaskDecoder,
    TaskEncoder,
    encode_task,
)


def datum(job: str, i: int, **fields: object) -> DatumTask:
    data = InputFile(f"/f{i}", (ChunkRef("cd" * 32, "ab" * 32, 0, 3),), 3)
    return DatumTask(
        task_id=f"{job}-{i}-1",
        job_id=job,
        datum_id=f"d{i}",
        output_commit_id=job,
        pipeline="p",
        store_url="file:///store",
        cmd=("python3", "/code/run.py"),
        env={"MODE": "fast"},
        image="python:3",
        runtime="bwrap",
        inputs=(DatumInput("in", "c1", f"/f{i}", (data,)),),
        secret_env={"TOKEN": "s3cret"},
        **fields,  # type: ignore[arg-type]
    )


def decode_all(lines: list[bytes]) -> list[DatumTask]:
    decoder = TaskDecoder()
    return [decoder.decode(json.loads(line)) for line in lines]


def test_the_next_datums_of_a_job_carry_only_their_own_fields() -> None:
    tasks = [datum("job1", i) for i in range(3)]
    encoder = TaskEncoder()
    lines = [encoder.encode(t) for t in tasks]
    assert lines[0] == encode_task(tasks[0])
    for line in lines[1:]:
        assert set(json.loads(line)) == {"follows", "task_id", "datum_id", "inputs"}
        assert b"s3cret" not in line and b"python3" not in line
    assert decode_all(lines) == tasks


def test_a_task_of_another_job_or_with_other_settings_goes_in_full() -> None:
    tasks = [
        datum("job1", 0),
        datum("job1", 1),
        datum("job2", 2),
        replace(datum("job2", 3), env={"MODE": "slow"}),
        datum("job1", 4),
        replace(datum("job1", 5), secret_env={"TOKEN": "other"}),
    ]
    encoder = TaskEncoder()
    lines = [encoder.encode(t) for t in tasks]
    follows = ["follows" in json.loads(line) for line in lines]
    assert follows == [False, True, False, False, False, False]
    assert decode_all(lines) == tasks


def test_after_a_reset_the_next_task_goes_in_full() -> None:
    encoder = TaskEncoder()
    encoder.encode(datum("job1", 0))
    encoder.reset()  # a new worker process knows no task before it
    assert encoder.encode(datum("job1", 1)) == encode_task(datum("job1", 1))


def test_a_follow_up_without_a_valid_task_before_it_is_refused() -> None:
    encoder = TaskEncoder()
    encoder.encode(datum("job1", 0))
    follow_up = json.loads(encoder.encode(datum("job1", 1)))
    with pytest.raises(InvalidArgument, match="follow-up task line without a valid task line"):
        TaskDecoder().decode(follow_up)
    # a full line that is no task: the follow-up after it fails too (it would run with the
    # settings of an older task)
    decoder = TaskDecoder()
    decoder.decode(json.loads(encode_task(datum("job0", 9))))
    with pytest.raises(InvalidArgument, match="invalid runtime"):
        decoder.decode({**json.loads(encode_task(datum("job1", 0))), "runtime": "vm"})
    with pytest.raises(InvalidArgument, match="follow-up task line without a valid task line"):
        decoder.decode(follow_up)


def test_a_follow_up_with_bad_inputs_is_refused() -> None:
    decoder = TaskDecoder()
    decoder.decode(json.loads(encode_task(datum("job1", 0))))
    with pytest.raises(InvalidArgument, match="'inputs' must be a list"):
        decoder.decode({"follows": True, "task_id": "t", "datum_id": "d", "inputs": "x"})
    with pytest.raises(InvalidArgument, match="must hold a JSON object"):
        decoder.decode(["follows"])


def test_a_follow_up_without_inputs_is_a_task_without_inputs() -> None:
    """A spout's next stream (no inputs) follows the one before it."""
    tasks = [replace(datum("spout", i), inputs=(), spout=True) for i in range(3)]
    encoder = TaskEncoder()
    lines = [encoder.encode(t) for t in tasks]
    assert ["follows" in json.loads(line) for line in lines] == [False, True, True]
    assert decode_all(lines) == tasks
