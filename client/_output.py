"""What the `arbiter` command prints: rich tables and trees on a terminal, plain text in a pipe.

On a terminal, tables and trees are drawn by rich, in colour. When stdout is not a terminal
(a pipe, a file) a table is tab-separated lines (a header row, then one row per line; a title,
when the command prints several tables, on a line of its own starting with `# `), a tree is
indented text, and nothing carries escape codes or is wrapped to a width. `--json` prints the
server's answers as protobuf JSON (proto field names) instead, whatever stdout is. Progress
bars go to stderr, and only when stderr is a terminal.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from google.protobuf import json_format
from google.protobuf.message import Message
from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

__all__ = ["Output", "enum_name", "message_json", "money", "program_file_json"]

# Wide enough that a piped tree is never wrapped.
_PLAIN_WIDTH = 10_000


def money(minor_units: int) -> str:
    """Minor units (kopecks) as currency units with two decimals: 1234567 -> "12,345.67"."""
    sign = "-" if minor_units < 0 else ""
    units, cents = divmod(abs(minor_units), 100)
    return f"{sign}{units:,}.{cents:02d}"


def _utf8_stream(stream: TextIO) -> TextIO:
    """`stream`, re-encoded as UTF-8 when it is a real file (texts hold emoji and Cyrillic)."""
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        with contextlib.suppress(ValueError, OSError):
            reconfigure(encoding="utf-8", errors="replace")
    return stream


class Output:
    """The command's stdout (and its stderr for progress and notes)."""

    def __init__(self, *, json_mode: bool, stdout: TextIO | None = None) -> None:
        self.json_mode = json_mode
        self.stream = _utf8_stream(stdout if stdout is not None else sys.stdout)
        self.terminal = self.stream.isatty()
        self.console = (
            Console(file=self.stream, highlight=False)
            if self.terminal
            else Console(
                file=self.stream,
                width=_PLAIN_WIDTH,
                color_system=None,
                highlight=False,
                force_terminal=False,
                soft_wrap=True,
            )
        )
        self.err_console = Console(file=_utf8_stream(sys.stderr), highlight=False)
        self._tables = 0

    # --- JSON ----------------------------------------------------------------------------------

    def message(self, message: Message) -> None:
        """One protobuf message as indented JSON."""
        self.write(message_json(message, indent=2) + "\n")

    def json_line(self, message: Message) -> None:
        """One protobuf message as one line of JSON (streams: one line per message)."""
        self.write(message_json(message, indent=None) + "\n")

    def write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    # --- tables, trees, lines ------------------------------------------------------------------

    def table(
        self,
        columns: Sequence[str],
        rows: Iterable[Sequence[object]],
        *,
        title: str | None = None,
        right: Iterable[int] = (),
    ) -> None:
        """A table; `right` names the columns (by index) aligned right (numbers)."""
        cells = [["" if cell is None else str(cell) for cell in row] for row in rows]
        if not self.terminal:
            if self._tables:
                self.stream.write("\n")
            if title:
                self.stream.write(f"# {title}\n")
            self.stream.write("\t".join(columns) + "\n")
            for row in cells:
                self.stream.write("\t".join(cell.replace("\t", " ") for cell in row) + "\n")
            self.stream.flush()
            self._tables += 1
            return
        right_aligned = set(right)
        table = Table(title=title, title_justify="left", title_style="bold")
        for index, column in enumerate(columns):
            table.add_column(column, justify="right" if index in right_aligned else "left")
        for row in cells:
            table.add_row(*(Text(cell) for cell in row))
        self.console.print(table)
        self._tables += 1

    def fields(self, pairs: Sequence[tuple[str, object]], *, title: str | None = None) -> None:
        """A two-column table of names and values."""
        self.table(["field", "value"], pairs, title=title)

    def tree(self, tree: Tree) -> None:
        if self._tables and not self.terminal:
            self.stream.write("\n")
        self.console.print(tree)
        self._tables += 1

    def line(self, text: str, style: str | None = None) -> None:
        """A line of plain text (never read as rich markup)."""
        self.console.print(Text(text, style=style or ""))

    def note(self, text: str) -> None:
        """A remark for the person, on stderr (never in the way of piped output)."""
        self.err_console.print(Text(text, style="dim"))


def message_json(message: Message, *, indent: int | None) -> str:
    text: str = json_format.MessageToJson(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
        ensure_ascii=False,
        indent=indent,
    )
    return text


def program_file_json(message: Message) -> str:
    """A program as a program file: indented, proto field names, defaults left out, int64
    values that fit a double as plain numbers (the form `arbiter serve --program` reads)."""
    text: str = json_format.MessageToJson(
        message,
        preserving_proto_field_name=True,
        indent=2,
        ensure_ascii=False,
        unquote_int64_if_possible=True,
    )
    return text + "\n"


def enum_name(enum: Any, number: int, prefix: str) -> str:
    """An enum value's name without its prefix: ARBITRATION_MODE_MAX_BENEFIT -> MAX_BENEFIT."""
    try:
        name: str = enum.Name(number)
    except ValueError:
        return str(number)
    return name.removeprefix(prefix)
