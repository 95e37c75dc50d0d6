"""AdminService's CreateApiKey and RevokeApiKey, as a mixin of the servicer (docs/api.md)."""

from __future__ import annotations

import logging
from typing import Any

from arbiter.server.api.auth import ApiKeys, caller_name
from arbiter.v1 import admin_pb2

__all__ = ["ApiKeyRpcs"]

logger = logging.getLogger("arbiter.auth")


class ApiKeyRpcs:
    """Mixed into AdminService; the server sets `api_keys` once it has built the key table."""

    api_keys: ApiKeys | None = None

    def _keys(self) -> ApiKeys:
        if self.api_keys is None or not self.api_keys.stored:
            raise NotImplementedError("API keys need PostgreSQL storage")
        return self.api_keys

    async def CreateApiKey(
        self, request: admin_pb2.CreateApiKeyRequest, context: Any
    ) -> admin_pb2.CreateApiKeyResponse:
        key = await self._keys().create(request.name, request.role)
        logger.info(
            "API key %r (role %s) created by %r", request.name, request.role, caller_name(context)
        )
        return admin_pb2.CreateApiKeyResponse(key=key)

    async def RevokeApiKey(
        self, request: admin_pb2.RevokeApiKeyRequest, context: Any
    ) -> admin_pb2.RevokeApiKeyResponse:
        revoked = await self._keys().revoke(request.key)
        logger.info("API key %r revoked by %r", revoked.name, caller_name(context))
        return admin_pb2.RevokeApiKeyResponse()
