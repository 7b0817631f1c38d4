"""``client.pps``: pipelines, jobs, datums, logs, workers and flush over HTTP, answered as the
typed models of :mod:`tusk.api.pps`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from urllib.parse import quote

from tusk.api.models import CommitInfo
from tusk.api.pps import (
    CommitRefs,
    CommitWave,
    CreatePipelines,
    DatumInfo,
    DatumsOfSpec,
    FileLineage,
    JobInfo,
    LogLine,
    PipelineCreated,
    PipelineInfo,
    PipelineSpecDoc,
    WorkerInfo,
)
from tusk.api.projects import qualify
from tusk.api.secrets import CreateSecret, SecretInfo
from tusk.client.http import Http, clean, seg

CommitRef = tuple[str, str]  # (repo, commit id or branch)


class PpsClient:
    """The PPS operations of a :class:`tusk.Client` (``client.pps``)."""

    def __init__(self, http: Http, project: str | None = None) -> None:
        self._http = http
        # the project of the bare repo and pipeline names this client is given (None: default)
        self.project = project

    def _key(self, name: str | None) -> str | None:
        """The stored key of a repo or pipeline name (bare names are in this client's project)."""
        return None if name is None else qualify(self.project, name)

    def _seg(self, name: str) -> str:
        return seg(qualify(self.project, name))

    def _refs(self, commits: Sequence[CommitRef]) -> list[tuple[str, str]]:
        return [(qualify(self.project, repo), ref) for repo, ref in commits]

    # -- pipelines ---------------------------------------------------------------------------
    def create_pipeline(
        self, specs: str, *, source: str = "spec", update: bool = False, reprocess: bool = False
    ) -> list[PipelineCreated]:
        """Create (or ``update``) the pipelines of a JSON/YAML spec text; ``source`` names it.

        Each answer carries the server's ``warnings`` for the user (e.g. a changed transform
        whose old results were kept)."""
        body = CreatePipelines(
            specs=specs, source=source, update=update, reprocess=reprocess, project=self.project
        )
        return self._http.post("/pipelines", body, list[PipelineCreated])

    def list_pipeline(self, *, project: str | None = None) -> list[PipelineInfo]:
        """The pipelines of ``project`` (default: ``default``; ``"*"``: every project), newest
        first. Names outside ``default`` are ``<project>/<pipeline>``."""
        project = project or self.project
        params = {"project": project} if project and project != "*" else {}
        return self._http.get(
            "/pipelines", list[PipelineInfo], all_projects=(project == "*") or None, **params
        )

    def inspect_pipeline(self, name: str) -> PipelineInfo:
        """One pipeline: its spec, state and job counts."""
        return self._http.get(f"/pipelines/{self._seg(name)}", PipelineInfo)

    def extract_pipeline(self, name: str) -> PipelineSpecDoc:
        """The spec a pipeline was created from (with its salt); ``.root`` is the document."""
        return self._http.get(f"/pipelines/{self._seg(name)}/extract", PipelineSpecDoc)

    def delete_pipeline(
        self,
        name: str | None = None,
        *,
        all: bool = False,
        force: bool = False,
        project: str | None = None,
    ) -> list[str]:
        """Delete a pipeline (or every one of ``project`` with ``all``); returns the deleted
        names."""
        project = project or self.project
        if name is not None:
            name = qualify(project, name)
        url = "/pipelines" if all and not name else f"/pipelines/{seg(name or '')}"
        params = clean({"force": force or None, "project": project if all else None})
        return self._http.call("DELETE", url, list[str], params=params)

    def stop_pipeline(self, name: str) -> PipelineInfo:
        """Stop a pipeline: no new jobs start until it is started again."""
        return self._http.post(f"/pipelines/{self._seg(name)}/stop", None, PipelineInfo)

    def start_pipeline(self, name: str) -> PipelineInfo:
        """Restart a stopped pipeline."""
        return self._http.post(f"/pipelines/{self._seg(name)}/start", None, PipelineInfo)

    # -- jobs and datums ---------------------------------------------------------------------
    def list_job(
        self,
        pipeline: str | None = None,
        *,
        inputs: Sequence[str] | None = None,
        output: str | None = None,
    ) -> list[JobInfo]:
        """Jobs, newest first: of a pipeline, with given inputs, or of an output commit
        (``inputs`` and ``output`` as ``repo/commit``)."""
        wanted = list(inputs) if inputs else None
        return self._http.get(
            "/jobs", list[JobInfo], pipeline=self._key(pipeline), input=wanted, output=output
        )

    def inspect_job(
        self, job_id: str, *, pipeline: str | None = None, block: bool = False
    ) -> JobInfo:
        """One job with the spec it ran (``block``: once it has finished)."""
        params = clean({"pipeline": pipeline, "block": block or None})
        return self._http.call("GET", f"/jobs/{job_id}", JobInfo, params=params, timeout=None)

    def stop_job(self, job_id: str, *, pipeline: str | None = None) -> None:
        """Stop a job; its output commit is finished without data."""
        self._http.send("POST", f"/jobs/{job_id}/stop", params=clean({"pipeline": pipeline}))

    def delete_job(self, job_id: str, *, pipeline: str | None = None) -> None:
        """Delete a job record (its output commit stays)."""
        self._http.send("DELETE", f"/jobs/{job_id}", params=clean({"pipeline": pipeline}))

    def list_datum(
        self, job_id: str, *, pipeline: str | None = None, page_size: int = 0, page: int = 0
    ) -> list[DatumInfo]:
        """The datums of a job, failed first (with ``page_size``, only page ``page``, from 0)."""
        return self._http.get(
            f"/jobs/{job_id}/datums",
            list[DatumInfo],
            pipeline=self._key(pipeline),
            page_size=page_size or None,
            page=page or None,
        )

    def datums_of_spec(self, spec: str, *, source: str = "spec") -> list[DatumInfo]:
        """The datums a pipeline with this spec's input (JSON or YAML text) would run now,
        before any pipeline has it; nothing is stored or run."""
        body = DatumsOfSpec(specs=spec, source=source, project=self.project)
        return self._http.post("/datums/preview", body, list[DatumInfo])

    # -- lineage -----------------------------------------------------------------------------
    def lineage(self, repo: str, commit: str, path: str) -> FileLineage:
        """The datums (with the input files each read) that wrote the file ``path`` of
        ``repo@commit`` (a commit id or a branch)."""
        return self._http.get("/lineage", FileLineage, repo=repo, commit=commit, path=path)

    def wave(self, commit_id: str, *, repo: str | None = None) -> CommitWave:
        """The whole wave behind a global ID: its commits and every commit up their provenance,
        the jobs and the pipelines' spec versions. With ``repo``, ``commit_id`` may also be a
        branch (or ``branch^``) of that repo."""
        return self._http.get(
            f"/commitsets/{quote(commit_id, safe='')}/wave", CommitWave, repo=repo
        )

    def restart_datum(
        self, job_id: str, filters: Sequence[str], *, pipeline: str | None = None
    ) -> list[str]:
        """Stop the running datums of a job whose inputs match every filter (input paths), so
        they are tried again; returns their ids."""
        params = clean({"data": ",".join(filters), "pipeline": pipeline})
        return self._http.call("POST", f"/jobs/{job_id}/datums/restart", list[str], params=params)

    def inspect_datum(
        self, job_id: str, datum_id: str, *, pipeline: str | None = None
    ) -> DatumInfo:
        """One datum of a job: its state, inputs, sizes and time."""
        return self._http.get(
            f"/jobs/{job_id}/datums/{datum_id}", DatumInfo, pipeline=self._key(pipeline)
        )

    # -- logs, flush, workers ----------------------------------------------------------------
    def get_logs(
        self,
        *,
        pipeline: str | None = None,
        job: str | None = None,
        datum: str | None = None,
        master: bool = False,
        inputs: Sequence[str] | None = None,
        follow: bool = False,
    ) -> Iterator[LogLine]:
        """Log lines of user code (and the master's), oldest first; ``follow`` waits for more."""
        after = 0
        while True:
            lines: list[LogLine] = self._http.get(
                "/logs",
                list[LogLine],
                pipeline=self._key(pipeline),
                job=job,
                datum=datum,
                master=master or None,
                after=after or None,
                inputs=",".join(inputs) if inputs else None,
                wait=25 if follow else None,
            )
            yield from lines
            if lines:
                after = lines[-1].pk
            if not follow:
                return

    def flush_commit(
        self, commits: Sequence[CommitRef], *, repos: Sequence[str] | None = None
    ) -> list[CommitInfo]:
        """Wait until every commit downstream of ``(repo, ref)`` commits is finished; list them."""
        body = CommitRefs(
            commits=self._refs(commits),
            repos=None if repos is None else [qualify(self.project, r) for r in repos],
        )
        return self._http.call("POST", "/flush/commits", list[CommitInfo], body=body, timeout=None)

    def flush_job(
        self, commits: Sequence[CommitRef], *, pipelines: Sequence[str] | None = None
    ) -> list[JobInfo]:
        """Wait until the jobs caused by ``(repo, ref)`` commits are finished; list them."""
        body = CommitRefs(
            commits=self._refs(commits),
            pipelines=None if pipelines is None else [qualify(self.project, p) for p in pipelines],
        )
        return self._http.call("POST", "/flush/jobs", list[JobInfo], body=body, timeout=None)

    def list_worker(self, pipeline: str | None = None) -> list[WorkerInfo]:
        """The workers of every pipeline (or of one)."""
        return self._http.get("/workers", list[WorkerInfo], pipeline=self._key(pipeline))

    # -- secrets -----------------------------------------------------------------------------
    def create_secret(self, manifest: str, *, source: str = "secret") -> SecretInfo:
        """Create a secret from a Kubernetes Secret manifest (JSON or YAML text); the answer
        names its keys, never its values."""
        body = CreateSecret(manifest=manifest, source=source)
        return self._http.post("/secrets", body, SecretInfo)

    def list_secret(self) -> list[SecretInfo]:
        """Every secret, by name."""
        return self._http.get("/secrets", list[SecretInfo])

    def inspect_secret(self, name: str) -> SecretInfo:
        """One secret: its name, type, creation time and key names."""
        return self._http.get(f"/secrets/{name}", SecretInfo)

    def delete_secret(self, name: str) -> None:
        """Delete a secret."""
        self._http.send("DELETE", f"/secrets/{name}")
