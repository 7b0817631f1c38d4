"""The small services: version, health, admin, and the enterprise features tusk does not have
(auth, identity, license, enterprise), which answer as an unactivated pachd does."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import betterproto
import grpc
from betterproto.lib.google.protobuf import Empty
from pachyderm_sdk.api import admin, auth, enterprise, identity, license, version

from tusk import __version__
from tusk.api.host import machine_identity
from tusk.grpc.base import AUTH_NOT_ACTIVATED, Service
from tusk.runtime import Engine

# The Pachyderm API level tusk serves: the official clients of this release work against it.
API_VERSION = (2, 12, 2)


def method_names(stub_class: type, service: str) -> list[str]:
    """The methods a client stub of ``service`` calls, read from the stub itself."""

    class Recorder:
        def __init__(self) -> None:
            self.paths: list[str] = []

        def record(self, path: str, **_kw: Any) -> None:
            self.paths.append(path)

        unary_unary = unary_stream = stream_unary = stream_stream = record

    rec = Recorder()
    stub_class(rec)
    prefix = f"/{service}/"
    return [p[len(prefix) :] for p in rec.paths if p.startswith(prefix)]


def build_version(token: str | None) -> Service:
    svc = Service("versionpb_v2.API", token)

    @svc.unary("GetVersion", Empty)
    def get_version(_req: Empty, _ctx: Any) -> version.Version:
        major, minor, micro = API_VERSION
        return version.Version(
            major=major,
            minor=minor,
            micro=micro,
            additional=f"-tusk.{__version__}",
            platform="tusk",
        )

    return svc


@dataclass(eq=False, repr=False)
class HealthCheckRequest(betterproto.Message):
    service: str = betterproto.string_field(1)


@dataclass(eq=False, repr=False)
class HealthCheckResponse(betterproto.Message):
    status: int = betterproto.enum_field(1)  # 1: SERVING


def build_health(token: str | None) -> Service:
    svc = Service("grpc.health.v1.Health", None)  # probes carry no token

    @svc.unary("Check", HealthCheckRequest)
    def check(_req: HealthCheckRequest, _ctx: Any) -> HealthCheckResponse:
        return HealthCheckResponse(status=1)

    return svc


def build_admin(engine: Engine, token: str | None) -> Service:
    svc = Service("admin_v2.API", token)
    cluster = hashlib.sha256(f"{machine_identity()}:{engine.settings.home}".encode()).hexdigest()

    @svc.unary("InspectCluster", admin.InspectClusterRequest)
    def inspect_cluster(_req: admin.InspectClusterRequest, _ctx: Any) -> admin.ClusterInfo:
        return admin.ClusterInfo(id=cluster[:32], deployment_id=cluster[32:48], warnings_ok=True)

    return svc


def build_enterprise(token: str | None) -> list[Service]:
    """auth, identity, license and enterprise: not activated, as on a community pachd."""
    out = []
    for stub, name in (
        (auth.ApiStub, "auth_v2.API"),
        (identity.ApiStub, "identity_v2.API"),
        (license.ApiStub, "license_v2.API"),
    ):
        svc = Service(name, None)
        svc.refuse(method_names(stub, name), AUTH_NOT_ACTIVATED, grpc.StatusCode.UNIMPLEMENTED)
        out.append(svc)
    ent = Service("enterprise_v2.API", token)
    ent.refuse(
        method_names(enterprise.ApiStub, "enterprise_v2.API"),
        "enterprise features are not activated on this server",
        grpc.StatusCode.UNIMPLEMENTED,
    )

    @ent.unary("GetState", enterprise.GetStateRequest)
    def get_state(_req: enterprise.GetStateRequest, _ctx: Any) -> enterprise.GetStateResponse:
        return enterprise.GetStateResponse(state=enterprise.State.NONE)

    out.append(ent)
    return out
