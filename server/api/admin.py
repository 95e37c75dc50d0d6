"""AdminService: every RPC answers UNIMPLEMENTED until drafts, versions and keys land."""

from __future__ import annotations

from arbiter.server.api.keys import ApiKeyRpcs
from arbiter.v1 import admin_pb2_grpc

__all__ = ["AdminService"]


class AdminService(ApiKeyRpcs, admin_pb2_grpc.AdminServiceServicer):
    """The generated base raises NotImplementedError for each RPC: UNIMPLEMENTED on the wire."""
