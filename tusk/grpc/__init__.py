"""Pachyderm 2.x's gRPC API, served by tuskd for the official clients (pachyderm_sdk,
python_pachyderm): a thin adapter over the same typed services as the HTTP routes.

The message schemas are pachyderm-sdk's betterproto classes; methods are registered with grpcio
generic handlers, so no Pachyderm .proto or generated file is part of tusk.
"""
