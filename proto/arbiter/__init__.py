"""Arbiter: a loyalty and promotion calculation server (arbiter.server, arbiter.client, arbiter.v1)."""

__version__ = "0.1.0"
