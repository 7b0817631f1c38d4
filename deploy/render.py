"""The source of truth for tusk's Kubernetes deployment: writes the Helm chart and the manifests.

``python deploy/render.py`` (re)writes

- ``deploy/helm/tusk/`` -- ``Chart.yaml``, ``values.yaml`` and ``templates/*.yaml``;
- ``deploy/manifests/tusk.yaml`` -- the same objects with the default values, for ``kubectl apply``.

``python deploy/render.py --check`` writes nothing and exits 1 when the files on disk differ from
what this module makes (CI runs the same comparison in ``tests/unit/test_deploy.py``).

How: :data:`VALUES` lists every setting (dotted path, default, help). :func:`build` turns a flat
``{path: value}`` mapping into the Kubernetes objects, each tagged with the boolean value (if any)
that switches it on. The manifests are ``build(defaults)``. A chart template is ``build`` called
with a marker string in place of every value, dumped to YAML, with each marker then replaced by
``{{ .Values.path }}`` (``| quote`` where the default made a string). So the templates use only
three pieces of Helm syntax -- ``{{ .Values.x }}``, ``{{ .Values.x | quote }}`` and a
whole-file ``{{- if .Values.x }}`` -- and ``build`` may place values but never compute with or
branch on them (an object is either switched by one boolean value or always there).

Needs only PyYAML (a tusk dependency); the helm binary is not needed to make the chart.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parent
ROOT = DEPLOY.parent
CHART = DEPLOY / "helm" / "tusk"
MANIFESTS = DEPLOY / "manifests" / "tusk.yaml"

PORT = 30650  # tuskd's port in the pod and the Service, as pachd's in Pachyderm 1.7
HOME = "/var/lib/tusk"
RAY_CLUSTER = "tusk-ray"  # KubeRay names the head Service "<cluster>-head-svc"
UID = 1000  # the tusk user of deploy/Dockerfile

# Keys of the Secret named by ``secret.name``; the manifests only ever reference them.
SECRET_KEYS = {
    "tusk-auth-token": "tuskd's API token (TUSK_AUTH_TOKEN; clients set the same)",
    "postgres-password": "the PostgreSQL password (PGPASSWORD for tuskd, POSTGRES_PASSWORD)",
    "s3-access-key": "S3 access key (AWS_ACCESS_KEY_ID; MinIO's root user)",
    "s3-secret-key": "S3 secret key (AWS_SECRET_ACCESS_KEY; MinIO's root password)",
    "auth_token": "Ray's cluster token (RAY_AUTH_TOKEN; KubeRay's authOptions wants this key)",
}


@dataclass(frozen=True)
class Value:
    path: str
    default: str | int | bool
    help: str


def _resources(prefix: str, cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> list:
    return [
        Value(f"{prefix}.resources.requests.cpu", cpu, "CPU request"),
        Value(f"{prefix}.resources.requests.memory", memory, "memory request"),
        Value(f"{prefix}.resources.limits.cpu", cpu_limit, "CPU limit"),
        Value(f"{prefix}.resources.limits.memory", memory_limit, "memory limit"),
    ]


VALUES: list[Value] = [
    Value("image.repository", "tusk", "the tusk image (deploy/Dockerfile): tuskd, Ray nodes, jobs"),
    Value("image.tag", "0.1.0", "its tag"),
    Value("image.pullPolicy", "IfNotPresent", "its pull policy"),
    Value("secret.name", "tusk-secrets", "the Secret (made beforehand) holding the credentials"),
    Value("tuskd.replicas", 2, "tuskd replicas: one holds the scheduler lease, all serve the API"),
    Value("tuskd.executor", f"ray://{RAY_CLUSTER}-head-svc:10001", "TUSK_EXECUTOR"),
    Value("tuskd.runtime", "auto", "TUSK_RUNTIME: auto, bwrap, podman, docker or host"),
    *_resources("tuskd", "500m", "1Gi", "2", "4Gi"),
    Value("service.nodePortEnabled", False, "also expose tuskd on a NodePort, as pachd was"),
    Value("service.nodePort", PORT, "that node port"),
    Value("postgresql.enabled", True, "run PostgreSQL in the cluster (a StatefulSet)"),
    Value(
        "postgresql.url",
        "postgresql://tusk@tusk-postgresql:5432/tusk",
        "TUSK_METADATA_URL; the password comes from the Secret as PGPASSWORD",
    ),
    Value("postgresql.image", "postgres:16", "PostgreSQL image"),
    Value("postgresql.storage", "10Gi", "PostgreSQL volume size"),
    *_resources("postgresql", "250m", "512Mi", "2", "2Gi"),
    Value(
        "objectStore.url",
        "s3://tusk/objects?endpoint=http://tusk-minio:9000&path_style=1",
        "TUSK_OBJECT_URL; credentials come from the Secret",
    ),
    Value("minio.enabled", True, "run MinIO in the cluster and create the bucket"),
    Value("minio.image", "minio/minio:RELEASE.2025-04-22T22-12-26Z", "MinIO image"),
    Value("minio.storage", "50Gi", "MinIO volume size"),
    *_resources("minio", "250m", "512Mi", "2", "2Gi"),
    Value("ray.version", "2.60.0", "Ray version in the image (RayCluster rayVersion)"),
    Value("ray.authMode", "token", "RAY_AUTH_MODE on tuskd, head and workers: token or disabled"),
    Value("ray.autoscaling", False, "KubeRay's in-tree autoscaler (between min and max workers)"),
    *_resources("ray.head", "1", "4Gi", "2", "4Gi"),
    Value("ray.workers.replicas", 2, "Ray worker pods"),
    Value("ray.workers.minReplicas", 1, "fewest worker pods (autoscaling)"),
    Value("ray.workers.maxReplicas", 10, "most worker pods (autoscaling)"),
    Value("ray.workers.cpu", "4", "CPUs per worker pod: num-cpus, request and limit"),
    Value("ray.workers.memory", "8Gi", "memory per worker pod: request and limit"),
]


def defaults() -> dict[str, Any]:
    return {v.path: v.default for v in VALUES}


def markers() -> dict[str, str]:
    return {v.path: f"@@{v.path}@@" for v in VALUES}


@dataclass(frozen=True)
class Resource:
    file: str  # template file name
    obj: dict[str, Any]
    when: str | None = None  # a boolean value's path: the object exists only when it is true


# -- building blocks --------------------------------------------------------------------------


def _labels(component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "tusk",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "tusk",
    }


def _meta(name: str, component: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "labels": _labels(component), **extra}


def _secret_env(name: str, key: str, v: dict[str, Any]) -> dict[str, Any]:
    assert key in SECRET_KEYS, key
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": v["secret.name"], "key": key}}}


def _env(name: str, value: Any) -> dict[str, Any]:
    return {"name": name, "value": value}


def _s3_env(v: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        _secret_env("AWS_ACCESS_KEY_ID", "s3-access-key", v),
        _secret_env("AWS_SECRET_ACCESS_KEY", "s3-secret-key", v),
    ]


def _ray_env(v: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        _env("RAY_AUTH_MODE", v["ray.authMode"]),
        _secret_env("RAY_AUTH_TOKEN", "auth_token", v),
    ]


def _resources_of(prefix: str, v: dict[str, Any]) -> dict[str, Any]:
    return {
        kind: {r: v[f"{prefix}.resources.{kind}.{r}"] for r in ("cpu", "memory")}
        for kind in ("requests", "limits")
    }


def _image(v: dict[str, Any]) -> str:
    return f"{v['image.repository']}:{v['image.tag']}"


def _pod_security(uid: int) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}

# The probes call GET /v1/info. The API wants the token when one is set (always, here), and an
# httpGet probe's headers cannot come from a Secret, so the probe is a command in the container.
PROBE_SCRIPT = (
    "import os, urllib.request as u; "
    f"r = u.Request('http://127.0.0.1:{PORT}/v1/info', "
    "headers={'Authorization': 'Bearer ' + os.environ['TUSK_AUTH_TOKEN']}); "
    "u.urlopen(r, timeout=4).read()"
)

# Creates the bucket of TUSK_OBJECT_URL (if missing) at the URL's endpoint, retrying until the
# store answers. Runs in the tusk image (boto3 is there).
BUCKET_SCRIPT = """\
import os, sys, time
from urllib.parse import parse_qs, urlsplit
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
url = urlsplit(os.environ["TUSK_OBJECT_URL"])
query = parse_qs(url.query)
s3 = boto3.client(
    "s3",
    endpoint_url=query.get("endpoint", [None])[0],
    region_name=query.get("region", ["us-east-1"])[0],
    config=Config(s3={"addressing_style": "path"}),
)
for attempt in range(60):
    try:
        try:
            s3.head_bucket(Bucket=url.netloc)
        except ClientError as e:
            if e.response["Error"]["Code"] not in ("404", "NoSuchBucket", "NotFound"):
                raise
            s3.create_bucket(Bucket=url.netloc)
        print("bucket", url.netloc, "is there")
        sys.exit(0)
    except Exception as e:
        print("waiting for the object store:", e, flush=True)
        time.sleep(5)
sys.exit(1)
"""


def _exec_probe(period: int, failures: int) -> dict[str, Any]:
    return {
        "exec": {"command": ["python", "-c", PROBE_SCRIPT]},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


# -- the objects --------------------------------------------------------------------------------


def tuskd(v: dict[str, Any]) -> list[Resource]:
    selector = {"app.kubernetes.io/name": "tusk", "app.kubernetes.io/component": "tuskd"}
    env = [
        _env("TUSK_HOME", HOME),
        _env("TUSK_HOST", "0.0.0.0"),
        _env("TUSK_PORT", str(PORT)),
        _secret_env("TUSK_AUTH_TOKEN", "tusk-auth-token", v),
        _env("TUSK_METADATA_URL", v["postgresql.url"]),
        _secret_env("PGPASSWORD", "postgres-password", v),
        _env("TUSK_OBJECT_URL", v["objectStore.url"]),
        *_s3_env(v),
        _env("TUSK_EXECUTOR", v["tuskd.executor"]),
        _env("TUSK_RUNTIME", v["tuskd.runtime"]),
        *_ray_env(v),
    ]
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta("tuskd", "tuskd"),
        "spec": {
            "replicas": v["tuskd.replicas"],
            "selector": {"matchLabels": selector},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": _labels("tuskd")},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": _pod_security(UID),
                    "terminationGracePeriodSeconds": 30,
                    "containers": [
                        {
                            "name": "tuskd",
                            "image": _image(v),
                            "imagePullPolicy": v["image.pullPolicy"],
                            "command": ["tuskd"],
                            "ports": [{"name": "api", "containerPort": PORT, "protocol": "TCP"}],
                            "env": env,
                            "startupProbe": _exec_probe(5, 60),
                            "readinessProbe": _exec_probe(10, 3),
                            "livenessProbe": _exec_probe(20, 3),
                            "resources": _resources_of("tuskd", v),
                            "securityContext": CONTAINER_SECURITY,
                            "volumeMounts": [
                                {"name": "home", "mountPath": HOME},
                                {"name": "tmp", "mountPath": "/tmp"},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "home", "emptyDir": {}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta("tuskd", "tuskd"),
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "api", "port": PORT, "targetPort": "api", "protocol": "TCP"}],
        },
    }
    node_port = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta("tuskd-nodeport", "tuskd"),
        "spec": {
            "type": "NodePort",
            "selector": selector,
            "ports": [
                {
                    "name": "api",
                    "port": PORT,
                    "targetPort": "api",
                    "nodePort": v["service.nodePort"],
                    "protocol": "TCP",
                }
            ],
        },
    }
    return [
        Resource("tuskd-deployment.yaml", deployment),
        Resource("tuskd-service.yaml", service),
        Resource("tuskd-nodeport.yaml", node_port, when="service.nodePortEnabled"),
    ]


def postgresql(v: dict[str, Any]) -> list[Resource]:
    selector = {"app.kubernetes.io/name": "tusk", "app.kubernetes.io/component": "postgresql"}
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta("tusk-postgresql", "postgresql"),
        "spec": {
            "clusterIP": "None",
            "selector": selector,
            "ports": [{"name": "postgres", "port": 5432, "targetPort": "postgres"}],
        },
    }
    pg_ready = {"exec": {"command": ["pg_isready", "-U", "tusk", "-d", "tusk", "-h", "127.0.0.1"]}}
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _meta("tusk-postgresql", "postgresql"),
        "spec": {
            "serviceName": "tusk-postgresql",
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": _labels("postgresql")},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": _pod_security(999),  # the image's postgres user
                    "containers": [
                        {
                            "name": "postgresql",
                            "image": v["postgresql.image"],
                            "ports": [{"name": "postgres", "containerPort": 5432}],
                            "env": [
                                _env("POSTGRES_USER", "tusk"),
                                _env("POSTGRES_DB", "tusk"),
                                _secret_env("POSTGRES_PASSWORD", "postgres-password", v),
                                _env("PGDATA", "/var/lib/postgresql/data/pgdata"),
                            ],
                            "readinessProbe": {**pg_ready, "periodSeconds": 10},
                            "livenessProbe": {**pg_ready, "periodSeconds": 30},
                            "resources": _resources_of("postgresql", v),
                            "securityContext": CONTAINER_SECURITY,
                            "volumeMounts": [
                                {"name": "data", "mountPath": "/var/lib/postgresql/data"},
                                {"name": "run", "mountPath": "/var/run/postgresql"},
                            ],
                        }
                    ],
                    "volumes": [{"name": "run", "emptyDir": {}}],
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": v["postgresql.storage"]}},
                    },
                }
            ],
        },
    }
    when = "postgresql.enabled"
    return [
        Resource("postgresql-service.yaml", service, when),
        Resource("postgresql-statefulset.yaml", statefulset, when),
    ]


def minio(v: dict[str, Any]) -> list[Resource]:
    selector = {"app.kubernetes.io/name": "tusk", "app.kubernetes.io/component": "minio"}
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta("tusk-minio", "minio"),
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": v["minio.storage"]}},
        },
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta("tusk-minio", "minio"),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},  # one pod at a time on the ReadWriteOnce volume
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": _labels("minio")},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": _pod_security(UID),
                    "containers": [
                        {
                            "name": "minio",
                            "image": v["minio.image"],
                            "args": ["server", "/data", "--console-address", ":9001"],
                            "ports": [
                                {"name": "s3", "containerPort": 9000},
                                {"name": "console", "containerPort": 9001},
                            ],
                            "env": [
                                _secret_env("MINIO_ROOT_USER", "s3-access-key", v),
                                _secret_env("MINIO_ROOT_PASSWORD", "s3-secret-key", v),
                            ],
                            "readinessProbe": {
                                "httpGet": {"path": "/minio/health/ready", "port": "s3"},
                                "periodSeconds": 10,
                            },
                            "livenessProbe": {
                                "httpGet": {"path": "/minio/health/live", "port": "s3"},
                                "periodSeconds": 30,
                            },
                            "resources": _resources_of("minio", v),
                            "securityContext": CONTAINER_SECURITY,
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                        }
                    ],
                    "volumes": [
                        {"name": "data", "persistentVolumeClaim": {"claimName": "tusk-minio"}}
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta("tusk-minio", "minio"),
        "spec": {
            "selector": selector,
            "ports": [{"name": "s3", "port": 9000, "targetPort": "s3"}],
        },
    }
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(
            "tusk-minio-bucket",
            "minio",
            annotations={
                # Helm runs it after each install/upgrade; kubectl ignores these.
                "helm.sh/hook": "post-install,post-upgrade",
                "helm.sh/hook-delete-policy": "before-hook-creation",
            },
        ),
        "spec": {
            "backoffLimit": 6,
            "template": {
                "metadata": {"labels": _labels("minio")},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "automountServiceAccountToken": False,
                    "securityContext": _pod_security(UID),
                    "containers": [
                        {
                            "name": "create-bucket",
                            "image": _image(v),
                            "imagePullPolicy": v["image.pullPolicy"],
                            "command": ["python", "-c", BUCKET_SCRIPT],
                            "env": [_env("TUSK_OBJECT_URL", v["objectStore.url"]), *_s3_env(v)],
                            "securityContext": CONTAINER_SECURITY,
                        }
                    ],
                },
            },
        },
    }
    when = "minio.enabled"
    return [
        Resource("minio-pvc.yaml", pvc, when),
        Resource("minio-deployment.yaml", deployment, when),
        Resource("minio-service.yaml", service, when),
        Resource("minio-bucket-job.yaml", job, when),
    ]


def ray_cluster(v: dict[str, Any]) -> list[Resource]:
    def pod(container: dict[str, Any]) -> dict[str, Any]:
        return {
            "metadata": {"labels": _labels("ray")},
            "spec": {
                "securityContext": _pod_security(UID),
                "containers": [
                    {
                        "image": _image(v),
                        "imagePullPolicy": v["image.pullPolicy"],
                        **container,
                        # tasks read and write the object store themselves
                        "env": [*_ray_env(v), *_s3_env(v)],
                        "securityContext": CONTAINER_SECURITY,
                    }
                ],
                "volumes": [
                    {"name": "shm", "emptyDir": {"medium": "Memory"}},  # Ray's object store
                    {"name": "tmp", "emptyDir": {}},  # /tmp/ray and datum scratch dirs
                ],
            },
        }

    mounts = [{"name": "shm", "mountPath": "/dev/shm"}, {"name": "tmp", "mountPath": "/tmp"}]
    workers = v["ray.workers.cpu"], v["ray.workers.memory"]
    cluster = {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": _meta(RAY_CLUSTER, "ray"),
        "spec": {
            "rayVersion": v["ray.version"],
            "enableInTreeAutoscaling": v["ray.autoscaling"],
            # KubeRay >= 1.6 wires the token into its own probes and init containers.
            "authOptions": {"mode": v["ray.authMode"], "secretName": v["secret.name"]},
            "headGroupSpec": {
                # No work on the head: tusk counts the nodes with CPUs as its capacity.
                "rayStartParams": {"num-cpus": "0", "dashboard-host": "0.0.0.0"},
                "template": pod(
                    {
                        "name": "ray-head",
                        "ports": [
                            {"name": "gcs-server", "containerPort": 6379},
                            {"name": "dashboard", "containerPort": 8265},
                            {"name": "client", "containerPort": 10001},
                        ],
                        "resources": _resources_of("ray.head", v),
                        "volumeMounts": mounts,
                    }
                ),
            },
            "workerGroupSpecs": [
                {
                    "groupName": "workers",
                    "replicas": v["ray.workers.replicas"],
                    "minReplicas": v["ray.workers.minReplicas"],
                    "maxReplicas": v["ray.workers.maxReplicas"],
                    "rayStartParams": {"num-cpus": v["ray.workers.cpu"]},
                    "template": pod(
                        {
                            "name": "ray-worker",
                            "resources": {
                                "requests": {"cpu": workers[0], "memory": workers[1]},
                                "limits": {"cpu": workers[0], "memory": workers[1]},
                            },
                            "volumeMounts": mounts,
                        }
                    ),
                }
            ],
        },
    }
    return [Resource("raycluster.yaml", cluster)]


def build(v: dict[str, Any]) -> list[Resource]:
    """Every object of the deployment for the flat values ``v`` (switched-off ones included)."""
    return [*tuskd(v), *postgresql(v), *minio(v), *ray_cluster(v)]


def manifests(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The objects that ``values`` (default: the defaults) switch on."""
    v = {**defaults(), **(values or {})}
    return [r.obj for r in build(v) if r.when is None or v[r.when] is True]


# -- writing ------------------------------------------------------------------------------------

HEADER = "# Generated by deploy/render.py from the description there; do not edit by hand.\n"
_MARKER = re.compile(r"@@([A-Za-z0-9_.]+)@@")


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the scripts) as literal blocks."""


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def _dump(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000)


def _template(default_obj: Any, marked_obj: Any) -> str:
    """``marked_obj`` as YAML with each value marker replaced by Helm syntax."""
    subs: dict[str, str] = {}

    def walk(d: Any, m: Any) -> Any:
        if isinstance(m, dict):
            assert isinstance(d, dict) and d.keys() == m.keys()
            return {k: walk(d[k], m[k]) for k in m}
        if isinstance(m, list):
            assert isinstance(d, list)
            return [walk(a, b) for a, b in zip(d, m, strict=True)]
        if not (isinstance(m, str) and _MARKER.search(m)):
            assert d == m, (d, m)
            return m
        whole = _MARKER.fullmatch(m)
        if whole:
            quote = " | quote" if isinstance(d, str) else ""
            text = f"{{{{ .Values.{whole[1]}{quote} }}}}"
        else:  # markers inside a longer string: a double-quoted YAML string
            assert isinstance(d, str)
            parts = _MARKER.split(m)
            text = '"' + "".join(
                f"{{{{ .Values.{p} }}}}" if i % 2 else json.dumps(p)[1:-1]
                for i, p in enumerate(parts)
            )
            text += '"'
        token = f"__tusk_value_{len(subs)}__"
        subs[token] = text
        return token

    out = _dump(walk(default_obj, marked_obj))
    for token, text in subs.items():
        assert out.count(token) == 1, token  # "__tusk_value_1__" is no part of "..._10__"
        out = out.replace(token, text)
    return out


def values_yaml() -> str:
    tree: dict[str, Any] = {}
    for value in VALUES:
        *parents, leaf = value.path.split(".")
        node = tree
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = value
    lines = [HEADER.rstrip(), "# The Secret is not made by the chart: see docs/deploy.md.", ""]

    def emit(node: dict[str, Any], depth: int) -> None:
        for name, child in node.items():
            if isinstance(child, Value):
                scalar = json.dumps(child.default)
                lines.append("  " * depth + f"{name}: {scalar}  # {child.help}")
            else:
                lines.append("  " * depth + f"{name}:")
                emit(child, depth + 1)

    emit(tree, 0)
    return "\n".join(lines) + "\n"


def chart_yaml() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    chart = {
        "apiVersion": "v2",
        "name": "tusk",
        "description": "tusk (Pachyderm 1.7 in Python): tuskd, PostgreSQL, MinIO and a RayCluster",
        "type": "application",
        "version": project["version"],
        "appVersion": project["version"],
        "kubeVersion": ">=1.27.0-0",
    }
    return HEADER + _dump(chart)


NOTES = """\
tusk is starting in namespace {{ .Release.Namespace }}.

  kubectl -n {{ .Release.Namespace }} port-forward svc/tuskd 30650:30650
  export TUSK_ADDRESS=127.0.0.1:30650 TUSK_AUTH_TOKEN=<the Secret's tusk-auth-token>
  pachctl version
"""


def files() -> dict[Path, str]:
    """Every generated file and its text."""
    v_default, v_marked = defaults(), markers()
    out: dict[Path, str] = {
        CHART / "Chart.yaml": chart_yaml(),
        CHART / "values.yaml": values_yaml(),
        CHART / "templates" / "NOTES.txt": NOTES,
    }
    for plain, marked in zip(build(v_default), build(v_marked), strict=True):
        assert plain.file == marked.file and plain.when == marked.when
        body = _template(plain.obj, marked.obj)
        if plain.when:
            body = f"{{{{- if .Values.{plain.when} }}}}\n{body}{{{{- end }}}}\n"
        out[CHART / "templates" / plain.file] = HEADER + body
    docs = "\n---\n".join(_dump(obj) for obj in manifests())
    out[MANIFESTS] = HEADER + "# The default values of deploy/helm/tusk/values.yaml.\n---\n" + docs
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args(argv)
    wanted = files()
    stale = [p for p, text in wanted.items() if not p.exists() or p.read_text() != text]
    extra = [
        p
        for p in (CHART / "templates").glob("*")
        if p not in wanted and (CHART / "templates").exists()
    ]
    if args.check:
        for p in stale + extra:
            print(f"out of date: {p.relative_to(ROOT)}", file=sys.stderr)
        return 1 if stale or extra else 0
    for p in extra:
        p.unlink()
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(wanted[p])
        print(f"wrote {p.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
