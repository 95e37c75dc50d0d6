"""MemberService: every RPC answers UNIMPLEMENTED until the ledger lands."""

from __future__ import annotations

from arbiter.v1 import member_pb2_grpc

__all__ = ["MemberService"]


class MemberService(member_pb2_grpc.MemberServiceServicer):
    """The generated base raises NotImplementedError for each RPC: UNIMPLEMENTED on the wire."""
