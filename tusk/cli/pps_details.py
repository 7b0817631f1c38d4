"""The text of inspect-pipeline and inspect-job in 1.7's layout, with the spec's pieces in Go's
proto text (``constant:1 ``) and struct-ordered JSON."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tusk.cli.jsonpb import proto_duration_text, render_json
from tusk.cli.tables import TabWriter
from tusk.cli.units import ago, bytes_size, from_timestamp, human_duration

if TYPE_CHECKING:
    from tusk.api.pps import JobInfo

JOB_COUNT_STATES = ("starting", "running", "failure", "success")  # 1.7 leaves out killed


def _parallelism(spec: dict[str, Any]) -> str:
    """The parallelism spec in proto text form, as 1.7 prints it (``constant:1 ``)."""
    ps = spec.get("parallelism_spec") or {}
    if ps.get("coefficient"):
        return f"coefficient:{ps['coefficient']} "
    return f"constant:{ps.get('constant') or 1} "


def _resources(title: str, res: dict[str, Any] | None) -> list[str]:
    if not res:
        return []
    lines = [f"{title}:", f"  CPU: {res.get('cpu', 0)}", f"  Memory: {res.get('memory', '')} "]
    if res.get("gpu"):
        lines.append(f"  GPU: {res['gpu']} ")
    return lines


_ATOM_ORDER = ("name", "repo", "branch", "commit", "glob", "lazy", "from_commit")


def _input_json(inp: dict[str, Any] | None, commits: dict[tuple[str, str], str]) -> Any:
    """A spec input in Go struct order, with each atom's ``commit`` filled from ``commits``."""
    if inp is None:
        return None
    result: dict[str, Any] = {}
    for kind, value in inp.items():
        if kind in ("atom", "pfs"):
            atom = dict(value)
            cid = commits.get((atom.get("repo", ""), atom.get("branch", "master")))
            if cid and not atom.get("commit"):
                atom["commit"] = cid
            ordered = {k: atom[k] for k in _ATOM_ORDER if k in atom}
            result[kind] = {**ordered, **{k: v for k, v in atom.items() if k not in ordered}}
        elif isinstance(value, list):
            result[kind] = [_input_json(k, commits) for k in value]
        else:
            result[kind] = value
    return result


_TRANSFORM_ORDER = ("image", "cmd", "env", "secrets", "image_pull_secrets", "stdin")


def _transform_json(transform: dict[str, Any] | None) -> str:
    t = dict(transform or {})
    ordered = {k: t[k] for k in _TRANSFORM_ORDER if k in t}
    ordered.update({k: v for k, v in t.items() if k not in ordered})
    return json.dumps(ordered, indent=2, ensure_ascii=False)


def pipeline_details(info: dict[str, Any]) -> str:
    """inspect-pipeline's text (from the pipeline's JSON value, as the plain reader gets it)."""
    spec: dict[str, Any] = info.get("spec") or {}
    lines = [f"Name: {info['name']}"]
    if spec.get("description"):
        lines.append(f"Description: {spec['description']}")
    lines += [
        f"Created: {ago(from_timestamp(info.get('created')))}",
        f"State: {info['state']}",
        f"Stopped: {'true' if info.get('stopped') else 'false'}",
        f"Reason: {info.get('reason', '')}",
        f"Parallelism Spec: {_parallelism(spec)}",
        *_resources("ResourceRequests", spec.get("resource_requests")),
        *_resources("ResourceLimits", spec.get("resource_limits")),
        f"Datum Timeout: {proto_duration_text(info.get('datum_timeout_seconds'))}",
        f"Job Timeout: {proto_duration_text(info.get('job_timeout_seconds'))}",
        "Input:",
        render_json(_input_json(spec.get("input"), {})),
        f"Output Branch: {spec.get('output_branch') or 'master'}",
        "Transform:",
        _transform_json(spec.get("transform")),
    ]
    if (spec.get("egress") or {}).get("URL"):
        lines.append(f"Egress: {spec['egress']['URL']} ")
    if info.get("service_url"):
        port = (spec.get("service") or {}).get("internal_port")
        lines.append(f"Service: {info['service_url']} (internal port {port})")
    lines += [f"Warning: {w}" for w in info.get("warnings") or ()]
    counts = info.get("job_counts") or {}
    lines += ["Job Counts:", "".join(f"{s}: {counts.get(s, 0)}\t" for s in JOB_COUNT_STATES)]
    return "\n".join(lines) + "\n"


def _worker_status_header() -> str:
    # tusk has no per-worker datum queue to report, so the table is only its header
    w = TabWriter(20, 1, 3)
    w.write("WORKER\tJOB\tDATUM\tSTARTED\tQUEUE\t\n")
    return w.flush().rstrip("\n")


def _runtime(name: str) -> str:
    if name == "host":
        return "host (unsandboxed: the image was not used)"
    return name


def job_details(info: JobInfo | dict[str, Any]) -> str:
    """inspect-job's text (from the job's JSON value, as the plain reader gets it, or its
    model)."""
    job = info if isinstance(info, dict) else info.model_dump(mode="json")
    spec: dict[str, Any] = job.get("spec") or {}
    lines = [
        f"ID: {job['id']} ",
        f"Pipeline: {job['pipeline']} ",
        f"Started: {ago(from_timestamp(job.get('started')))} ",
    ]
    if job.get("duration_seconds") is not None:
        lines.append(f"Duration: {human_duration(job['duration_seconds'])} ")
    lines += [
        f"State: {job['state']}",
        f"Reason: {job.get('reason', '')}",
        f"Image: {job.get('image', '')}",
        f"Image digest: {job.get('image_digest', '')}",
        f"Runtime: {_runtime(job.get('runtime', ''))}",
        f"Processed: {job.get('processed', 0)}",
        f"Failed: {job.get('failed', 0)}",
        f"Skipped: {job.get('skipped', 0)}",
        f"Total: {job.get('total', 0)}",
        f"Recovered: {job.get('recovered', 0)}",
        f"Data Downloaded: {bytes_size(job.get('bytes_down', 0))}",
        f"Data Uploaded: {bytes_size(job.get('bytes_up', 0))}",
        f"Download Time: {human_duration(job.get('seconds_download', 0.0))}",
        f"Process Time: {human_duration(job.get('seconds_process', 0.0))}",
        f"Upload Time: {human_duration(job.get('seconds_upload', 0.0))}",
        f"Datum Timeout: {proto_duration_text(job.get('datum_timeout_seconds'))}",
        f"Job Timeout: {proto_duration_text(job.get('job_timeout_seconds'))}",
        "Worker Status:",
        _worker_status_header(),
        f"Restarts: {job.get('restarts', 0)}",
        f"ParallelismSpec: {_parallelism(spec)}",
        *_resources("ResourceRequests", spec.get("resource_requests")),
        *_resources("ResourceLimits", spec.get("resource_limits")),
    ]
    commits = {(i["repo"], i.get("branch") or "master"): i["id"] for i in job.get("inputs", [])}
    lines += ["Input:", render_json(_input_json(spec.get("input"), commits))]
    lines += ["Transform:", _transform_json(spec.get("transform")) + " "]
    if job.get("output_commit") is not None:
        lines.append(f"Output Commit: {job['output_commit']['id']} ")
    if (spec.get("egress") or {}).get("URL"):
        lines.append(f"Egress: {spec['egress']['URL']} ")
    return "\n".join(lines) + "\n"
