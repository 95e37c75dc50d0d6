"""Text templates (SPEC 5.1, rule 16): placeholders rendered with the calculation's final values."""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["PLACEHOLDER", "format_money", "render_template"]

PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


def format_money(minor: int) -> str:
    """1234.50 for 123450 minor units (two decimals: SPEC 1)."""
    sign = "-" if minor < 0 else ""
    minor = abs(minor)
    return f"{sign}{minor // 100}.{minor % 100:02d}"


def render_template(template: str, value_of: Callable[[str], str | None]) -> str:
    """Replace every {name} by value_of(name) (left as written where that is None); names are
    checked at compile time."""

    def replace(m: re.Match[str]) -> str:
        value = value_of(m.group(1))
        return m.group(0) if value is None else value

    return PLACEHOLDER.sub(replace, template)
