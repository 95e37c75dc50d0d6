"""Text templates (SPEC 5.1, rule 16): placeholders rendered with the calculation's final values."""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["PLACEHOLDER", "format_money", "render_template"]

PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


def format_money(minor: int) -> str:
    """1234.50 for 123450 minor units (two decimals: SPEC 1)."""
    sign = "-" if minor < 0 else ""
    minor = abs(minor)
    return f"{sign}{minor // 100}.{minor % 100:02d}"


def render_template(template: str, values: Mapping[str, str]) -> str:
    """Replace every {name} by values[name]; names are checked at compile time."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)
