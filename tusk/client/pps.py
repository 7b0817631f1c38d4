"""``client.pps``: pipelines, jobs, datums, logs, workers and flush over HTTP.

The server answers PPS calls with plain JSON objects; they are handed on as dicts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tusk.api.models import CommitInfo
from tusk.client.http import Http, clean


class PpsClient:
    """The PPS operations of a :class:`tusk.Client` (``client.pps``)."""

    def __init__(self, http: Http) -> None:
        self._http = http

    # -- pipelines ---------------------------------------------------------------------------
    def create_pipeline(
        self, specs: str, *, source: str = "spec", update: bool = False, reprocess: bool = False
    ) -> list[dict[str, Any]]:
        """Create (or ``update``) the pipelines of a JSON/YAML spec text; ``source`` names it."""
        body = {"specs": specs, "source": source, "update": update, "reprocess": reprocess}
        return list(self._http.json("POST", "/pipelines", json=body))

    def list_pipeline(self) -> list[dict[str, Any]]:
        """Every pipeline, newest first."""
        return list(self._http.json("GET", "/pipelines"))

    def inspect_pipeline(self, name: str) -> dict[str, Any]:
        """One pipeline: its spec, state and job counts."""
        return dict(self._http.json("GET", f"/pipelines/{name}"))

    def extract_pipeline(self, name: str) -> dict[str, Any]:
        """The spec a pipeline was created from (with its salt)."""
        return dict(self._http.json("GET", f"/pipelines/{name}/extract"))

    def delete_pipeline(
        self, name: str | None = None, *, all: bool = False, force: bool = False
    ) -> list[str]:
        """Delete a pipeline (or every one with ``all``); returns the deleted names."""
        params = clean({"force": force or None})
        url = "/pipelines" if all and not name else f"/pipelines/{name}"
        return list(self._http.json("DELETE", url, params=params))

    def stop_pipeline(self, name: str) -> dict[str, Any]:
        """Stop a pipeline: no new jobs start until it is started again."""
        return dict(self._http.json("POST", f"/pipelines/{name}/stop"))

    def start_pipeline(self, name: str) -> dict[str, Any]:
        """Restart a stopped pipeline."""
        return dict(self._http.json("POST", f"/pipelines/{name}/start"))

    # -- jobs and datums ---------------------------------------------------------------------
    def list_job(
        self,
        pipeline: str | None = None,
        *,
        inputs: list[str] | None = None,
        output: str | None = None,
    ) -> list[dict[str, Any]]:
        """Jobs, newest first: of a pipeline, with given inputs, or of an output commit."""
        params = clean({"pipeline": pipeline, "input": inputs or None, "output": output})
        return list(self._http.json("GET", "/jobs", params=params))

    def inspect_job(
        self, job_id: str, *, pipeline: str | None = None, block: bool = False
    ) -> dict[str, Any]:
        """One job (``block``: once it has finished)."""
        params = clean({"pipeline": pipeline, "block": block or None})
        return dict(self._http.json("GET", f"/jobs/{job_id}", params=params, timeout=None))

    def stop_job(self, job_id: str, *, pipeline: str | None = None) -> None:
        """Stop a job; its output commit is finished without data."""
        self._http.send("POST", f"/jobs/{job_id}/stop", params=clean({"pipeline": pipeline}))

    def delete_job(self, job_id: str, *, pipeline: str | None = None) -> None:
        """Delete a job record (its output commit stays)."""
        self._http.send("DELETE", f"/jobs/{job_id}", params=clean({"pipeline": pipeline}))

    def list_datum(self, job_id: str, *, pipeline: str | None = None) -> list[dict[str, Any]]:
        """The datums of a job, failed first."""
        params = clean({"pipeline": pipeline})
        return list(self._http.json("GET", f"/jobs/{job_id}/datums", params=params))

    def inspect_datum(
        self, job_id: str, datum_id: str, *, pipeline: str | None = None
    ) -> dict[str, Any]:
        """One datum of a job: its state, inputs, sizes and time."""
        params = clean({"pipeline": pipeline})
        return dict(self._http.json("GET", f"/jobs/{job_id}/datums/{datum_id}", params=params))

    # -- logs, flush, workers ----------------------------------------------------------------
    def get_logs(
        self,
        *,
        pipeline: str | None = None,
        job: str | None = None,
        datum: str | None = None,
        master: bool = False,
        inputs: list[str] | None = None,
        follow: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """Log lines of user code (and the master's), oldest first; ``follow`` waits for more."""
        after = 0
        while True:
            params = clean(
                {
                    "pipeline": pipeline,
                    "job": job,
                    "datum": datum,
                    "master": master or None,
                    "after": after or None,
                    "inputs": ",".join(inputs) if inputs else None,
                    "wait": 25 if follow else None,
                }
            )
            rows = list(self._http.json("GET", "/logs", params=params))
            yield from rows
            if rows:
                after = int(rows[-1]["pk"])
            if not follow:
                return

    def flush_commit(
        self, commits: list[tuple[str, str]], *, repos: list[str] | None = None
    ) -> list[CommitInfo]:
        """Wait until every commit downstream of ``(repo, ref)`` commits is finished; list them."""
        body = {"commits": commits, "repos": repos}
        rows = self._http.json("POST", "/flush/commits", json=body, timeout=None)
        return [CommitInfo.model_validate(r) for r in rows]

    def flush_job(
        self, commits: list[tuple[str, str]], *, pipelines: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Wait until the jobs caused by ``(repo, ref)`` commits are finished; list them."""
        body = {"commits": commits, "pipelines": pipelines}
        return list(self._http.json("POST", "/flush/jobs", json=body, timeout=None))

    def list_worker(self, pipeline: str | None = None) -> list[dict[str, Any]]:
        """The workers of every pipeline (or of one)."""
        return list(self._http.json("GET", "/workers", params=clean({"pipeline": pipeline})))
