"""The Python client library and the `arbiter` command line."""

from arbiter.client._client import DEFAULT_TARGET, ArbiterClient

__all__ = ["DEFAULT_TARGET", "ArbiterClient"]
