"""Arbiter: a loyalty and promotion calculation server.

The installed namespace: arbiter.server, arbiter.client and arbiter.v1 (generated stubs).
"""

__version__ = "0.1.0"
