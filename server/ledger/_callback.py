"""Errors of the caller's callbacks (the calculation, the outbox sender) pass through the
ledger untouched: they must never be mistaken for a storage failure."""

from __future__ import annotations

__all__ = ["CallbackFailed"]


class CallbackFailed(Exception):
    """Carries an exception raised by a callback up to the ledger's edge, which re-raises it."""

    def __init__(self, error: Exception) -> None:
        super().__init__(repr(error))
        self.error = error
