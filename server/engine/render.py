"""Text templates (rule 16): placeholders rendered with the calculation's final values."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

__all__ = ["PLACEHOLDER", "format_money", "render_template"]

PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


def format_money(minor: int) -> str:
    """1234.50 for 123450 minor units (two decimals: docs/rules.md)."""
    sign = "-" if minor < 0 else ""
    minor = abs(minor)
    return f"{sign}{minor // 100}.{minor % 100:02d}"


@lru_cache(maxsize=4096)
def _parts(template: str) -> tuple[str, ...]:
    """Literal text and placeholder names alternating (the names at odd positions)."""
    return tuple(PLACEHOLDER.split(template))


def render_template(template: str, value_of: Callable[[str], str | None]) -> str:
    """Replace every {name} by value_of(name) (left as written where that is None); names are
    checked at compile time. A template is split once (cached), then joined per calculation."""
    parts = _parts(template)
    if len(parts) == 1:
        return template
    out = list(parts)
    for i in range(1, len(out), 2):
        value = value_of(out[i])
        out[i] = "{" + out[i] + "}" if value is None else value
    return "".join(out)
