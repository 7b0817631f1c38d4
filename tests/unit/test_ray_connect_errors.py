"""A Ray cluster that cannot be reached is named in the error (an address and a fix), not an
"internal error: ConnectionAbortedError". Ray Client takes ~30 s to give up on a closed port, so
its failure is raised here by ``ray.init`` itself; the mapping is what is under test."""

from __future__ import annotations

import time

import pytest
import ray

from tusk.errors import ServerUnavailable
from tusk.pps.executors.ray import RayExecutor


@pytest.mark.parametrize(
    "error",
    [
        ConnectionAbortedError("Starting Ray client server failed"),
        ConnectionError("ray client connection timeout"),
        TimeoutError("Timed out while waiting for GCS to become available"),
    ],
)
def test_an_unreachable_cluster_is_named(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    def fail(**_kwargs: object) -> None:
        raise error

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", fail)
    monkeypatch.setattr(time, "sleep", lambda _s: None)  # no waits between the tries
    executor = RayExecutor("ray://10.1.2.3:10001", client=True)
    with pytest.raises(ServerUnavailable) as got:
        executor.capacity()
    assert "ray://10.1.2.3:10001" in got.value.message
    assert str(error) in got.value.message
    assert "TUSK_EXECUTOR" in (got.value.hint or "")
    assert got.value.http_status == 503


def test_a_client_server_that_failed_to_start_is_tried_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ray Client's proxy starts one server process per connection and answers
    ConnectionAbortedError when that process did not come up in time (a busy machine): the
    connection is tried again, and only the last failure is the user's error."""
    calls: list[str | None] = []

    def flaky(**kwargs: object) -> None:
        calls.append(kwargs["address"])  # type: ignore[arg-type]
        if len(calls) < 3:
            raise ConnectionAbortedError("Starting Ray client server failed")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", flaky)
    monkeypatch.setattr(time, "sleep", lambda _s: None)
    RayExecutor("ray://10.1.2.3:10001", client=True)._connect()
    assert calls == ["ray://10.1.2.3:10001"] * 3
