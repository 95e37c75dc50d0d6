"""Text templates (rule 16): one grammar, split once, rendered with final values.

`{name}` is a placeholder; `{{` and `}}` write a literal brace; any other brace is an error
(docs/configuration.md). The validator checks a template with `split_template`, the compiler
stores it split (`template_parts`), and the report renders those parts: one grammar for all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

__all__ = ["TemplatePart", "format_money", "render_template", "split_template", "template_parts"]


def format_money(minor: int) -> str:
    """1234.50 for 123450 minor units (two decimals: docs/rules.md)."""
    sign = "-" if minor < 0 else ""
    minor = abs(minor)
    return f"{sign}{minor // 100}.{minor % 100:02d}"


class TemplatePart(NamedTuple):
    """A piece of a text template: literal text, or a placeholder's name (without braces)."""

    text: str
    placeholder: bool


def split_template(template: str) -> list[TemplatePart]:
    """Split a template into literal text and placeholders; ValueError on unbalanced braces.

    `{name}` is a placeholder; `{{` and `}}` are a literal brace; a lone brace is an error.
    """
    parts: list[TemplatePart] = []
    literal: list[str] = []
    i = 0
    while i < len(template):
        ch = template[i]
        if ch == "{":
            if template.startswith("{{", i):
                literal.append("{")
                i += 2
                continue
            close = template.find("}", i + 1)
            opened_again = template.find("{", i + 1)
            if close < 0 or 0 <= opened_again < close:
                raise ValueError(
                    f"the '{{' at position {i} is never closed (write '{{{{' for a brace)"
                )
            if literal:
                parts.append(TemplatePart("".join(literal), False))
                literal = []
            parts.append(TemplatePart(template[i + 1 : close], True))
            i = close + 1
        elif ch == "}":
            if template.startswith("}}", i):
                literal.append("}")
                i += 2
                continue
            raise ValueError(f"the '}}' at position {i} closes nothing (write '}}}}' for a brace)")
        else:
            literal.append(ch)
            i += 1
    if literal:
        parts.append(TemplatePart("".join(literal), False))
    return parts


def template_parts(template: str) -> tuple[str, ...]:
    """A (valid) template as literal text and placeholder names alternating, the names at odd
    positions (a literal may be empty): the form the compiled program keeps."""
    out: list[str] = [""]
    for part in split_template(template):
        if part.placeholder:
            out.append(part.text)
            out.append("")
        else:
            out[-1] += part.text
    return tuple(out)


def render_template(parts: tuple[str, ...], value_of: Callable[[str], str | None]) -> str:
    """The template split by `template_parts`, every placeholder replaced by value_of(name)
    (written back as `{name}` where that is None: names are checked at compile time)."""
    if len(parts) == 1:
        return parts[0]
    out = list(parts)
    for i in range(1, len(out), 2):
        value = value_of(out[i])
        out[i] = "{" + out[i] + "}" if value is None else value
    return "".join(out)
