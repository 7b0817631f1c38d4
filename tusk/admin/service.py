"""``AdminService``: the operations on a whole deployment (inspect-cluster, delete-all,
garbage-collect, extract, restore, and reading objects by id)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import IO

from tusk import __version__
from tusk.admin import archive
from tusk.api.admin import ClusterInfo, DeleteAllResult, GcResult, RestoreResult
from tusk.api.pps import TERMINAL_JOB_STATES
from tusk.errors import Conflict, InvalidArgument, NotFound
from tusk.meta import RepoRow, dump
from tusk.meta.schema import SCHEMA_VERSION
from tusk.pfs.context import SPEC_REPO, PfsContext
from tusk.pfs.repos import RepoService
from tusk.pfs.tree import EMPTY_ROOT
from tusk.pps.pipelines import PipelineService
from tusk.storage import ChunkRef
from tusk.storage.base import validate_object_id

CLUSTER_ID_KEY = "cluster_id"
READ_BLOCK = 1 << 20


class AdminService:
    """Operations on everything a deployment holds."""

    def __init__(self, ctx: PfsContext, repos: RepoService, pipelines: PipelineService) -> None:
        self.ctx = ctx
        self.repos = repos
        self.pipelines = pipelines

    # -- cluster ---------------------------------------------------------------------------
    def inspect_cluster(self) -> ClusterInfo:
        """The deployment's id (made on first use and kept in its metadata)."""
        with self.ctx.meta.transaction() as tx:
            cid = tx.get_setting(CLUSTER_ID_KEY)
            if cid is None:
                cid = uuid.uuid4().hex
                tx.put_setting(CLUSTER_ID_KEY, cid)
        return ClusterInfo(id=cid)

    def delete_all(self) -> DeleteAllResult:
        """Delete every pipeline (stopping its jobs), every repo, every project but ``default``,
        and all job history; the spec repo is emptied. Objects stay until ``garbage_collect``."""
        pipelines = self.pipelines.delete(None, all=True, force=True)
        repos = self.repos.delete(None, all=True, force=True)
        with self.ctx.meta.transaction() as tx:
            dump.clear_history(tx)
            for project in tx.list_projects():  # as pachd: only ``default`` is left
                tx.delete_project(project.name)
            tx.delete_repo(SPEC_REPO)
            tx.insert_repo(RepoRow(SPEC_REPO, self.ctx.clock(), "", 0, "spec"))
        self.ctx.feed.publish("delete", SPEC_REPO, "")
        return DeleteAllResult(repos=repos, pipelines=pipelines)

    # -- objects ---------------------------------------------------------------------------
    def _live_objects(self) -> set[str]:
        """Every object a commit's tree or a stored datum output uses."""
        with self.ctx.meta.transaction(write=False) as tx:
            tx.snapshot()
            trees, manifests = dump.object_roots(tx)
        return self._used_by(trees, manifests)

    def _used_by(self, trees: list[str], manifests: list[str]) -> set[str]:
        """Every object the trees ``trees`` and the datum output ``manifests`` use."""
        seen: set[str] = set()
        for root in trees:
            self.ctx.tree.referenced(root, seen)
        for manifest in manifests:
            for f in json.loads(manifest).get("files", ()):
                seen.update(ChunkRef.from_json(c).object for c in f["chunks"])
        return seen

    def _check_idle(self, what: str) -> None:
        with self.ctx.meta.transaction(write=False) as tx:
            running = dump.unfinished_jobs(tx, [str(s) for s in TERMINAL_JOB_STATES])
        if running:
            raise Conflict(
                f"{what} needs every job to have ended; {running} job(s) are still running",
                hint="wait for them (tusk flush-job / list-job), or stop their pipelines first",
            )

    def garbage_collect(self) -> GcResult:
        """Delete the objects nothing uses any more (left by deleted commits, repos and
        pipelines, and by writes a crash interrupted). Refused while jobs run; a put-file running
        at the same time may lose its data, as in Pachyderm."""
        self._check_idle("garbage-collect")
        stored = list(self.ctx.store.iter_ids())  # listed first: newer objects are never taken
        live = self._live_objects()
        deleted = freed = 0
        for oid in stored:
            if oid in live:
                continue
            try:
                size = self.ctx.store.size(oid)
            except NotFound:
                continue
            self.ctx.store.delete(oid)
            deleted += 1
            freed += size
        return GcResult(
            objects_kept=len(stored) - deleted, objects_deleted=deleted, bytes_deleted=freed
        )

    def get_object(self, object_id: str) -> Iterator[bytes]:
        """The bytes of one object of the object store, in blocks."""
        validate_object_id(object_id)
        size = self.ctx.store.size(object_id)  # NotFound before the answer starts
        for offset in range(0, size, READ_BLOCK):
            yield self.ctx.store.get(object_id, offset, min(READ_BLOCK, size - offset))

    def get_tag(self, tag: str) -> str:
        """The stored output of the datum whose hash (or, failing that, id) is ``tag``: JSON
        naming its files and the objects holding their chunks."""
        with self.ctx.meta.transaction(write=False) as tx:
            manifest = dump.cached_output(tx, tag)
        if manifest is None:
            raise NotFound(
                f"tag {tag} not found",
                hint="a tag is a datum's hash or id; list a job's datum ids with `list-datum <job>`",
            )
        return manifest

    # -- extract / restore -----------------------------------------------------------------
    def extract(self, objects: bool = True) -> Iterator[bytes]:
        """Everything this deployment holds as one stream (see :mod:`tusk.admin.archive`)."""
        with self.ctx.meta.transaction(write=False) as tx:
            tx.snapshot()
            rows: dict[str, list[dict[str, object]]] = {}
            for table, row in dump.dump(tx):
                rows.setdefault(table, []).append(row)
        # the objects of exactly the rows read, whatever changed since
        trees = [str(r["tree"]) for r in rows.get("commits", []) if r.get("tree")]
        manifests = [str(r["manifest"]) for r in rows.get("datum_cache", [])]
        live = sorted(self._used_by(trees, manifests)) if objects else []
        yield archive.header(__version__, SCHEMA_VERSION, objects, time.time())
        count = 0
        for oid in live:
            try:
                data = self.ctx.store.get(oid)
            except NotFound:
                if oid == EMPTY_ROOT:  # the empty tree is known without being stored
                    continue
                raise
            count += 1
            yield archive.object_record(oid, data)
        for table, table_rows in rows.items():
            for i in range(0, len(table_rows), archive.ROWS_PER_RECORD):
                yield archive.rows_record(table, table_rows[i : i + archive.ROWS_PER_RECORD])
        yield archive.end_record(count, {t: len(r) for t, r in rows.items()})

    def check_empty(self) -> None:
        """Refuse (Conflict) unless this deployment holds nothing but its empty spec repo."""
        with self.ctx.meta.transaction(write=False) as tx:
            counts = dump.counts(tx)
            spec = 1 if tx.get_repo(SPEC_REPO) is not None else 0
        counts["repos"] -= spec
        held = {t: n for t, n in counts.items() if n}
        if held:
            what = ", ".join(f"{n} {t}" for t, n in held.items())
            raise Conflict(
                f"restore needs an empty tusk server; this one holds {what}",
                hint="restore into a fresh server (a new TUSK_HOME), or run `delete-all` first",
            )

    def restore(self, fh: IO[bytes]) -> RestoreResult:
        """Recreate an extract in this (empty) deployment: objects first, then every row in
        one transaction, so a failed restore leaves the metadata as it was."""
        self.check_empty()
        head = archive.read_header(fh, SCHEMA_VERSION)
        rows: dict[str, list[dict[str, object]]] = {}
        stored = 0
        for kind, a, b in archive.records(fh):
            if kind == "object":
                validate_object_id(a)
                self.ctx.store.put(b, a)
                stored += 1
            elif kind == "rows":
                if a not in {t.name for t in dump.tables()}:
                    raise InvalidArgument(
                        f"this extract has rows of an unknown table {a!r}",
                        hint="restore it with the tusk version that made it",
                    )
                rows.setdefault(a, []).extend(b)
            else:
                expected = b if isinstance(b, dict) else {}
                got = {t: len(r) for t, r in rows.items()}
                if a != stored or {t: n for t, n in expected.items() if n} != got:
                    raise InvalidArgument(
                        "not a complete tusk extract: its counts do not match its contents; "
                        "nothing was restored",
                        hint="extract again",
                    )
        if head.get("objects"):
            self.ctx.store.sync()
        if "datum_files" not in rows and rows.get("datum_cache"):  # made before schema 9
            rows["datum_files"] = [
                {"pipeline": c["pipeline"], "path": p, "hash": c["hash"]}
                for c in rows["datum_cache"]
                for p in sorted({f["path"] for f in json.loads(str(c["manifest"]))["files"]})
            ]
        with self.ctx.meta.transaction() as tx:
            if sum(dump.counts(tx).values()) > (1 if tx.get_repo(SPEC_REPO) else 0):
                raise Conflict(
                    "the server was written to while the restore ran; nothing was restored",
                    hint="restore into a server nobody else uses",
                )
            for table in dump.tables():
                dump.load(tx, table.name, rows.get(table.name, []))
        return RestoreResult(objects=stored, rows={t: len(r) for t, r in rows.items()})
