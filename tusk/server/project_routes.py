"""Project routes: create, list, inspect, delete (Pachyderm 2.x projects)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from tusk.api.models import CreateProject, ProjectInfo
from tusk.runtime import Engine

router = APIRouter()


def eng(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


@router.post("/projects", response_model=ProjectInfo)
def create_project(body: CreateProject, request: Request) -> ProjectInfo:
    return eng(request).projects.create(body.name, body.description, update=body.update)


@router.get("/projects", response_model=list[ProjectInfo])
def list_projects(request: Request) -> list[ProjectInfo]:
    return eng(request).projects.list()


@router.get("/projects/{name}", response_model=ProjectInfo)
def inspect_project(name: str, request: Request) -> ProjectInfo:
    return eng(request).projects.inspect(name)


@router.delete("/projects/{name}", response_model=None)
def delete_project(name: str, request: Request, force: bool = False) -> None:
    eng(request).projects.delete(name, force=force)
