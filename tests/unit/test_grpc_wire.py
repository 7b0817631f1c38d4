"""The hand-written wire handling of the bulk gRPC messages agrees with betterproto's."""

from __future__ import annotations

import pytest
from betterproto.lib.google.protobuf import BytesValue
from hypothesis import given
from hypothesis import strategies as st
from pachyderm_sdk.api import pfs

from tusk.errors import InvalidArgument
from tusk.grpc import files
from tusk.grpc.wire import encode_bytes_value, parse_modify_file


@given(st.binary(max_size=4096))
def test_bytes_value_encoding_is_betterprotos(data: bytes) -> None:
    assert BytesValue().parse(encode_bytes_value(data)).value == data


@given(st.text(min_size=1, max_size=40), st.binary(max_size=70_000), st.text(max_size=8))
def test_add_file_parses_as_betterproto_does(path: str, raw: bytes, datum: str) -> None:
    msg = pfs.ModifyFileRequest(add_file=pfs.AddFile(path=path, datum=datum, raw=raw))
    assert parse_modify_file(bytes(msg)) == pfs.ModifyFileRequest().parse(bytes(msg))


@pytest.mark.parametrize(
    "msg",
    [
        pfs.ModifyFileRequest(set_commit=pfs.Commit.from_uri("images@master")),
        pfs.ModifyFileRequest(delete_file=pfs.DeleteFile(path="/a")),
        pfs.ModifyFileRequest(
            copy_file=pfs.CopyFile(dst="/b", src=pfs.File.from_uri("images@master:/a"))
        ),
        pfs.ModifyFileRequest(
            add_file=pfs.AddFile(path="/u", url=pfs.AddFileUrlSource(url="http://x"))
        ),
    ],
)
def test_other_requests_fall_back_to_betterproto(msg: pfs.ModifyFileRequest) -> None:
    data = bytes(msg)
    assert bytes(parse_modify_file(data)) == bytes(pfs.ModifyFileRequest().parse(data)) == data


def test_truncated_add_file_is_invalid() -> None:
    data = bytes(pfs.ModifyFileRequest(add_file=pfs.AddFile(path="/a", raw=b"x" * 300)))
    with pytest.raises(InvalidArgument, match="malformed"):
        parse_modify_file(data[:-10])


@given(st.lists(st.binary(max_size=300), max_size=12), st.integers(min_value=1, max_value=257))
def test_get_file_answers_split_the_bytes_at_the_message_size(
    pieces: list[bytes], size: int
) -> None:
    old, files.CHUNK = files.CHUNK, size
    try:
        answers = [BytesValue().parse(bytes(m)).value for m in files.chunks(iter(pieces))]
    finally:
        files.CHUNK = old
    assert b"".join(answers) == b"".join(pieces)
    assert all(len(a) == size for a in answers[:-1])
    assert all(answers)  # no empty message, not even the last
