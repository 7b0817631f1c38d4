"""Secret routes: create, list, inspect, delete. No answer of any of them holds a value."""

from __future__ import annotations

from fastapi import APIRouter, Request

from tusk.api.secrets import CreateSecret, SecretInfo
from tusk.runtime import Engine

router = APIRouter()


def eng(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


@router.post("/secrets", response_model=SecretInfo)
def create_secret(body: CreateSecret, request: Request) -> SecretInfo:
    return eng(request).secrets.create(body.manifest, body.source)


@router.get("/secrets", response_model=list[SecretInfo])
def list_secrets(request: Request) -> list[SecretInfo]:
    return eng(request).secrets.list()


@router.get("/secrets/{name}", response_model=SecretInfo)
def inspect_secret(name: str, request: Request) -> SecretInfo:
    return eng(request).secrets.inspect(name)


@router.delete("/secrets/{name}", response_model=None)
def delete_secret(name: str, request: Request) -> None:
    eng(request).secrets.delete(name)
