"""The Kubernetes deployment (deploy/): generated files, schemas, chart = manifests, env, secrets.

Nothing here needs a cluster, helm or a container engine: the objects are validated offline
against the Kubernetes 1.30 JSON schemas that the ``kubernetes-validate`` package ships (strict:
unknown fields are errors), and the chart is rendered by a small renderer for exactly the Helm
syntax that deploy/render.py emits.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate  # the dev extra
import pytest
import yaml

from tusk.testing import Tuskd, clean_env

ROOT = Path(__file__).resolve().parents[2]
K8S_VERSION = "1.30.0"

_spec = importlib.util.spec_from_file_location("tusk_deploy_render", ROOT / "deploy" / "render.py")
assert _spec and _spec.loader
render = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = render
_spec.loader.exec_module(render)

# Variables that containers of the tusk image get and that tusk itself does not read: each is read
# by a library tusk uses, named here.
THIRD_PARTY_ENV = {
    "PGPASSWORD": "libpq (psycopg): the password missing from TUSK_METADATA_URL",
    "AWS_ACCESS_KEY_ID": "boto3: S3 credentials",
    "AWS_SECRET_ACCESS_KEY": "boto3: S3 credentials",
    "RAY_AUTH_MODE": "Ray: token authentication",
    "RAY_AUTH_TOKEN": "Ray: the cluster token",
}
# Variables whose value is a credential: always from the Secret, never a literal.
SECRET_ENV = {
    "TUSK_AUTH_TOKEN",
    "PGPASSWORD",
    "POSTGRES_PASSWORD",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "MINIO_ROOT_USER",
    "MINIO_ROOT_PASSWORD",
    "RAY_AUTH_TOKEN",
}

# A HAND-WRITTEN JSON schema for the RayCluster fields the deployment uses, checked by hand
# against KubeRay's CRD (ray.io_rayclusters.yaml, ray.io/v1, KubeRay v1.6.0) -- that CRD is not in
# a package this project installs, so it is not used here. Strict like the CRD's structural
# schema: a field not listed is an error. The pod templates inside are validated separately
# against the real core/v1 PodTemplateSpec schema.
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
RAYCLUSTER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "ray.io/v1"},
        "kind": {"const": "RayCluster"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "required": ["headGroupSpec"],
            "additionalProperties": False,
            "properties": {
                "rayVersion": {"type": "string"},
                "enableInTreeAutoscaling": {"type": "boolean"},
                "authOptions": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "mode": {"enum": ["disabled", "token"]},
                        "secretName": {"type": "string"},
                        "enableK8sTokenAuth": {"type": "boolean"},
                    },
                },
                "headGroupSpec": {
                    "type": "object",
                    "required": ["template"],
                    "additionalProperties": False,
                    "properties": {
                        "rayStartParams": _STRING_MAP,
                        "template": {"type": "object"},
                    },
                },
                "workerGroupSpecs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["groupName", "maxReplicas", "minReplicas", "template"],
                        "additionalProperties": False,
                        "properties": {
                            "groupName": {"type": "string"},
                            "replicas": {"type": "integer", "minimum": 0},
                            "minReplicas": {"type": "integer", "minimum": 0},
                            "maxReplicas": {"type": "integer", "minimum": 0},
                            "rayStartParams": _STRING_MAP,
                            "template": {"type": "object"},
                        },
                    },
                },
            },
        },
    },
}


def _id(obj: dict[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def _manifest_docs() -> list[dict[str, Any]]:
    text = (ROOT / "deploy" / "manifests" / "tusk.yaml").read_text()
    return [d for d in yaml.safe_load_all(text) if d is not None]


ALL_OBJECTS = [r.obj for r in render.build(render.defaults())]  # switched-off ones too


def _containers(obj: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(pod spec, container) for every container of an object."""
    spec = obj.get("spec", {})
    templates = []
    if "template" in spec:
        templates.append(spec["template"])
    if obj["kind"] == "RayCluster":
        templates.append(spec["headGroupSpec"]["template"])
        templates += [g["template"] for g in spec["workerGroupSpecs"]]
    return [(t["spec"], c) for t in templates for c in t["spec"]["containers"]]


def _tusk_image_containers(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    image = render._image(render.defaults())
    return [c for o in objs for _, c in _containers(o) if c["image"] == image]


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def _tuskd(objs: list[dict[str, Any]]) -> dict[str, Any]:
    (dep,) = [o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "tuskd"]
    return dep


# -- generated files -----------------------------------------------------------------------------


def test_generated_files_are_up_to_date() -> None:
    for path, text in render.files().items():
        assert path.exists(), f"{path} missing: run python deploy/render.py"
        assert path.read_text() == text, f"{path} is stale: run python deploy/render.py"
    templates = {p.name for p in (render.CHART / "templates").iterdir()}
    assert templates == {p.name for p in render.files() if p.parent.name == "templates"}


def test_manifests_are_the_defaults() -> None:
    docs = _manifest_docs()
    assert docs == render.manifests()
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "StatefulSet", "PersistentVolumeClaim", "Job"} <= kinds
    assert "RayCluster" in kinds
    assert "Secret" not in kinds  # made beforehand: see docs/deploy.md


# -- schemas -------------------------------------------------------------------------------------


@pytest.mark.parametrize("obj", [o for o in ALL_OBJECTS if o["kind"] != "RayCluster"], ids=_id)
def test_core_objects_validate_strictly(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_strict_validation_rejects_unknown_fields() -> None:
    bad = copy.deepcopy(_tuskd(ALL_OBJECTS))
    bad["spec"]["template"]["spec"]["containers"][0]["readynessProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def test_raycluster_validates() -> None:
    (cluster,) = [o for o in ALL_OBJECTS if o["kind"] == "RayCluster"]
    jsonschema.validate(cluster, RAYCLUSTER_SCHEMA)
    spec = cluster["spec"]
    for template in [spec["headGroupSpec"]["template"]] + [
        g["template"] for g in spec["workerGroupSpecs"]
    ]:
        pod_template = {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": "check"},
            "template": template,
        }
        kubernetes_validate.validate(pod_template, K8S_VERSION, strict=True)
    bad = copy.deepcopy(cluster)
    bad["spec"]["workerGroupSpecs"][0]["rayStartParams"]["num-cpus"] = 4  # must be a string
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, RAYCLUSTER_SCHEMA)


def test_raycluster_shape() -> None:
    (cluster,) = [o for o in ALL_OBJECTS if o["kind"] == "RayCluster"]
    spec = cluster["spec"]
    head = spec["headGroupSpec"]
    (workers,) = spec["workerGroupSpecs"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    assert workers["rayStartParams"]["num-cpus"] == render.defaults()["ray.workers.cpu"]
    assert spec["rayVersion"] == render.defaults()["ray.version"]
    modes = {
        _env(c)["RAY_AUTH_MODE"]["value"]
        for t in [head["template"], workers["template"]]
        for c in t["spec"]["containers"]
    }
    tuskd = _tuskd(ALL_OBJECTS)["spec"]["template"]["spec"]["containers"][0]
    modes.add(_env(tuskd)["RAY_AUTH_MODE"]["value"])
    assert modes == {spec["authOptions"]["mode"]}
    executor = render.defaults()["tuskd.executor"]
    assert executor == f"ray://{cluster['metadata']['name']}-head-svc:10001"
    head_ports = {p["containerPort"] for p in head["template"]["spec"]["containers"][0]["ports"]}
    assert 10001 in head_ports


# -- the chart renders to the manifests ----------------------------------------------------------

_ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.S)
_VALUE = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def _lookup(values: dict[str, Any], path: str) -> Any:
    node: Any = values
    for key in path.strip(".").split("."):
        node = node[key]
    return node


def _go_print(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def helm_render(text: str, values: dict[str, Any]) -> str:
    """Render a template with the subset of Helm's syntax the chart uses; anything else fails."""
    pieces = _ACTION.split(text)  # text, trim_left, action, trim_right, text, ...
    out: list[str] = []
    active = [True]
    for i in range(0, len(pieces), 4):
        chunk = pieces[i]
        if i > 0 and pieces[i - 1] == "-":
            chunk = chunk.lstrip()
        if i + 1 < len(pieces) and pieces[i + 1] == "-":
            chunk = chunk.rstrip()
        if all(active):
            out.append(chunk)
        if i + 2 >= len(pieces):
            break
        action = pieces[i + 2]
        if m := re.fullmatch(r"if " + _VALUE.pattern, action):
            value = _lookup(values, m[1])
            active.append(value not in (False, None, 0, "", [], {}))
        elif action == "end":
            assert len(active) > 1, "unbalanced end"
            active.pop()
        elif m := re.fullmatch(_VALUE.pattern + r"( \| quote)?", action):
            value = _go_print(_lookup(values, m[1]))
            if all(active):
                out.append(json.dumps(value) if m[2] else value)
        else:
            raise AssertionError(f"template syntax the test renderer does not know: {action!r}")
    assert len(active) == 1, "unclosed if"
    return "".join(out)


def _chart_values(overrides: dict[str, Any]) -> dict[str, Any]:
    values = yaml.safe_load((render.CHART / "values.yaml").read_text())
    for path, value in overrides.items():
        *parents, leaf = path.split(".")
        node = values
        for key in parents:
            node = node[key]
        assert leaf in node, path
        node[leaf] = value
    return values


def _render_chart(overrides: dict[str, Any]) -> list[dict[str, Any]]:
    values = _chart_values(overrides)
    docs = []
    for resource in render.build(render.defaults()):
        text = (render.CHART / "templates" / resource.file).read_text()
        docs += [d for d in yaml.safe_load_all(helm_render(text, values)) if d is not None]
    return docs


def test_values_yaml_holds_the_defaults() -> None:
    values = yaml.safe_load((render.CHART / "values.yaml").read_text())
    for value in render.VALUES:
        assert _lookup(values, value.path) == value.default, value.path
    chart = yaml.safe_load((render.CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "tusk"


def test_chart_with_defaults_is_the_manifests() -> None:
    assert _render_chart({}) == _manifest_docs()


@pytest.mark.parametrize(
    "overrides",
    [
        {"postgresql.enabled": False, "postgresql.url": "postgresql://u@db.example:5432/t"},
        {"minio.enabled": False, "objectStore.url": "s3://b/p?region=eu-west-1"},
        {"service.nodePortEnabled": True, "service.nodePort": 31000},
        {"tuskd.replicas": 5, "image.repository": "reg.example/tusk", "image.tag": "dev"},
        {"ray.workers.cpu": "16", "ray.autoscaling": True, "ray.authMode": "disabled"},
    ],
    ids=lambda o: ",".join(o),
)
def test_chart_follows_values(overrides: dict[str, Any]) -> None:
    rendered = _render_chart(overrides)
    assert rendered == render.manifests(overrides)
    for obj in rendered:
        if obj["kind"] == "RayCluster":
            jsonschema.validate(obj, RAYCLUSTER_SCHEMA)
        else:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_every_value_is_used_by_a_template() -> None:
    text = "".join(p.read_text() for p in (render.CHART / "templates").glob("*.yaml"))
    for value in render.VALUES:
        assert f".Values.{value.path} " in text, value.path


# -- environment and secrets ---------------------------------------------------------------------


def _from_env_vars() -> set[str]:
    """The variables ``Settings.from_env`` reads, from runtime.py's source."""
    tree = ast.parse((ROOT / "tusk" / "runtime.py").read_text())
    (fn,) = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "from_env"]
    names = set()
    for node in ast.walk(fn):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(node.args[0].value)
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            names.add(node.slice.value)
    return {n for n in names if isinstance(n, str)}


def test_env_vars_are_ones_tusk_or_its_libraries_read() -> None:
    read = _from_env_vars()
    assert {"TUSK_METADATA_URL", "TUSK_OBJECT_URL", "TUSK_AUTH_TOKEN"} <= read
    containers = _tusk_image_containers(ALL_OBJECTS)
    assert len(containers) == 4  # tuskd, bucket job, Ray head, Ray workers
    for container in containers:
        for name in _env(container):
            if name.startswith("TUSK_"):
                assert name in read, f"{container['name']}: {name} is not read by from_env"
            else:
                assert name in THIRD_PARTY_ENV, f"{container['name']}: who reads {name}?"
    tuskd_env = _env(_tuskd(ALL_OBJECTS)["spec"]["template"]["spec"]["containers"][0])
    # optional: a deployed tuskd has a token, so it answers to any host name it is given; the
    # sandbox network, the service host and the parallelism limit have defaults; crash points
    # are for tests only; file:// egress is off unless allowed, and secrets default to a
    # directory under TUSK_HOME; idle workers stop after a default time
    # the gRPC API shares tuskd's port unless given one of its own
    optional = {
        "TUSK_GRPC_PORT",
        "TUSK_SANDBOX_NETWORK",
        "TUSK_SERVICE_HOST",
        "TUSK_ALLOWED_HOSTS",
        "TUSK_MAX_PARALLELISM",
        "TUSK_GIT_POLL_SECONDS",
        "TUSK_GIT_ALLOW_FILE_URLS",
        "TUSK_TEST_CRASH_AT",
        "TUSK_EGRESS_DIRS",
        "TUSK_SECRETS_DIR",
        "TUSK_WORKER_IDLE_SECONDS",
    }
    assert read <= set(tuskd_env) | optional
    assert "TUSK_TEST_CRASH_AT" not in tuskd_env
    assert tuskd_env["TUSK_HOST"]["value"] == "0.0.0.0"
    assert tuskd_env["TUSK_PORT"]["value"] == str(render.PORT)


def test_secrets_are_referenced_not_inlined() -> None:
    secret = render.defaults()["secret.name"]
    seen = set()
    for obj in ALL_OBJECTS:
        for _, container in _containers(obj):
            for name, entry in _env(container).items():
                if name in SECRET_ENV:
                    seen.add(name)
                    assert "value" not in entry, f"{_id(obj)}: {name} inlined"
                    ref = entry["valueFrom"]["secretKeyRef"]
                    assert ref["name"] == secret and ref["key"] in render.SECRET_KEYS
    assert seen == SECRET_ENV
    for obj in ALL_OBJECTS:
        if obj["kind"] == "RayCluster":
            assert obj["spec"]["authOptions"]["secretName"] == secret
    # no credentials in the URLs either
    userinfo = render.defaults()["postgresql.url"].split("//")[1].split("@")[0]
    assert ":" not in userinfo  # no password
    assert "secret" not in render.defaults()["objectStore.url"].lower()


def test_services_use_port_30650() -> None:
    services = [
        o for o in ALL_OBJECTS if o["kind"] == "Service" and "tuskd" in o["metadata"]["name"]
    ]
    assert {s["spec"]["type"] for s in services} == {"ClusterIP", "NodePort"}
    for service in services:
        (port,) = service["spec"]["ports"]
        assert port["port"] == 30650
        if service["spec"]["type"] == "NodePort":
            assert port["nodePort"] == 30650


# -- probes --------------------------------------------------------------------------------------


def _probes() -> dict[str, dict[str, Any]]:
    container = _tuskd(ALL_OBJECTS)["spec"]["template"]["spec"]["containers"][0]
    return {k: container[k] for k in ("startupProbe", "readinessProbe", "livenessProbe")}


def test_probes_hit_v1_info() -> None:
    for probe in _probes().values():
        command = probe["exec"]["command"]
        assert command[:2] == ["python", "-c"]
        assert f"http://127.0.0.1:{render.PORT}/v1/info" in command[2]
        assert "TUSK_AUTH_TOKEN" in command[2]


@pytest.mark.timeout(60)
def test_probe_command_against_a_real_tuskd(tmp_path: Path) -> None:
    with Tuskd(tmp_path / "home", token="probe-token") as server:
        script = _probes()["readinessProbe"]["exec"]["command"][2]
        script = script.replace(f":{render.PORT}/", f":{server.port}/")
        env = clean_env(TUSK_AUTH_TOKEN="probe-token")
        probe = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True)
        assert probe.returncode == 0, probe.stderr
        wrong = {**env, "TUSK_AUTH_TOKEN": "wrong"}
        probe = subprocess.run([sys.executable, "-c", script], env=wrong, capture_output=True)
        assert probe.returncode != 0 and b"401" in probe.stderr


@pytest.mark.timeout(120)
def test_bucket_job_script_against_moto(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tusk.storage import open_object_store
    from tusk.testing.moto import CREDENTIALS, MotoServer

    with MotoServer(tmp_path) as moto:
        url = f"s3://tusk-deploy/objects?endpoint={moto.endpoint}&path_style=1"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TUSK_"))}
        env.update(CREDENTIALS, TUSK_OBJECT_URL=url, AWS_EC2_METADATA_DISABLED="true")
        for _ in range(2):  # creates the bucket, then finds it
            job = subprocess.run(
                [sys.executable, "-c", render.BUCKET_SCRIPT], env=env, capture_output=True
            )
            assert job.returncode == 0, job.stdout + job.stderr
            assert b"bucket tusk-deploy is there" in job.stdout
        moto.client().head_bucket(Bucket="tusk-deploy")
        for key, value in CREDENTIALS.items():
            monkeypatch.setenv(key, value)
        open_object_store(url)  # what tuskd does at start: checks the bucket
        moto.remove_bucket("tusk-deploy")


# -- image and docs ------------------------------------------------------------------------------


def test_dockerfile() -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    assert "bubblewrap" in text
    assert '".[postgres,s3,ray]"' in text
    assert f"ARG RAY_VERSION={render.defaults()['ray.version']}" in text
    (user,) = re.findall(r"^USER (\S+)$", text, re.M)
    assert not user.startswith(("root", "0"))


def test_docs_cover_every_value_and_secret_key() -> None:
    text = (ROOT / "docs" / "deploy.md").read_text()
    for value in render.VALUES:
        assert f"`{value.path}`" in text, value.path
    for key in render.SECRET_KEYS:
        assert key in text, key
