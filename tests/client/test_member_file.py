"""The member CSV the `arbiter member enroll --file` command reads (client/_files.py): checked
whole first, then read again row by row as it is sent, and refused when it changed between."""

from __future__ import annotations

import io
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from arbiter.client._files import FileProblem, MemberRow, read_member_csv


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_rows_are_read_again_as_they_are_sent(tmp_path: Path) -> None:
    members = read_member_csv(write(
        tmp_path / "m.csv",
        'member_id,registered_at\na-1,2026-02-01T12:00:00Z\n\n"b,2",\n',
    ))
    assert members.rows == 2
    expected = [
        MemberRow("a-1", datetime(2026, 2, 1, 12, tzinfo=UTC), 2),
        MemberRow("b,2", None, 4),
    ]
    assert list(members) == expected
    assert list(members) == expected  # a second reading reads the file again


def test_a_file_changed_after_its_check_is_refused_before_a_row_is_read(tmp_path: Path) -> None:
    path = write(tmp_path / "m.csv", "member_id\na-1\n")
    members = read_member_csv(path)
    write(path, "member_id\na-1\na-1\n")
    with pytest.raises(FileProblem, match="changed since it was checked"):
        iter(members)
    os.utime(path, ns=(0, 0))
    with pytest.raises(FileProblem, match="changed since it was checked"):
        iter(members)


def test_a_member_given_twice_names_both_lines(tmp_path: Path) -> None:
    lines = ["member_id"] + [f"m-{i}" for i in range(1000)] + ["m-7"]
    with pytest.raises(FileProblem, match=r"line 1002: member 'm-7' again \(first on line 9\)"):
        read_member_csv(write(tmp_path / "m.csv", "\n".join(lines)))


def test_a_file_that_is_not_utf8_names_the_line_read_before(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_bytes(b"member_id\nok\n\xff\xfe\n")
    with pytest.raises(FileProblem, match="not UTF-8 text"):
        read_member_csv(path)


def test_standard_input_is_held_and_read_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("member_id\nx-1\nx-2\nx-1\n"))
    with pytest.raises(FileProblem, match="line 4: member 'x-1' again"):
        read_member_csv(Path("-"))
    monkeypatch.setattr(sys, "stdin", io.StringIO("member_id\nx-1\nx-2\n"))
    members = read_member_csv(Path("-"))
    assert [row.member_id for row in members] == ["x-1", "x-2"]
    assert [row.member_id for row in members] == ["x-1", "x-2"]


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileProblem, match="no such file"):
        read_member_csv(tmp_path / "absent.csv")
