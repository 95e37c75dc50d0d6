"""The repository stands alone: it cites its own docs, never a document a user cannot see.

The calculation's rules are docs/rules.md, the contract's semantics docs/contract.md, the design
docs/design.md. These tests read every tracked file (binary files aside) and fail on a citation
of a document outside the repository, on a rule number that docs/rules.md does not define, and
on a link into the reference docs whose anchor does not exist.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "docs" / "rules.md"
RULE_COUNT = 23

# Built from pieces so that this file does not cite what it forbids.
_OUTSIDE_WORDS = ("SP" + "EC", "ARCHI" + "TECTURE")
OUTSIDE_CITATION = re.compile(
    r"\b(?:" + "|".join(_OUTSIDE_WORDS) + r")\b"  # the internal documents, by name
    r"|(?i:\bspec(?:ification)?\s+(?:sections?\s+)?\d)"  # a spec's section by number
    r"|\u00a7\s*\d"  # section signs with a number
    r"|/work/" + "shared"
)


# "rule 6", "rules 6, 7, 11 and 23", "rules 8-10", "rule 6(b)", "Rule 16".
RULE_CITATION = re.compile(
    r"\b[Rr]ules?\s+(\d+(?:\([a-c]\))?(?:\s*(?:,|-|and|or)\s*\d+(?:\([a-c]\))?)*)"
)
RULE_ANCHOR = re.compile(r'<a id="rule-(\d+)"></a>')
DOC_LINK = re.compile(r"\]\(((?:docs/)?(?:rules|contract|design)\.md)#([^)\s]+)\)")
ANY_ANCHOR = re.compile(r'<a id="([^"]+)"></a>')


def tracked_files() -> list[Path]:
    """Every file git tracks; without git, every file under the root but hidden and built ones."""
    git = shutil.which("git")
    if git is not None and (ROOT / ".git").exists():
        out = subprocess.run(
            [git, "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True
        ).stdout
        return [ROOT / name for name in out.decode().split("\0") if name]
    skip = {"__pycache__", "build", "_native"}
    return [
        p
        for p in ROOT.rglob("*")
        if p.is_file()
        and not any(part.startswith(".") or part in skip for part in p.relative_to(ROOT).parts)
        and not p.name.endswith(".egg-info")
    ]


def text_files() -> dict[str, str]:
    """Tracked files that are text (a NUL byte or invalid UTF-8 marks a binary one)."""
    texts: dict[str, str] = {}
    for path in tracked_files():
        if not path.is_file():
            continue  # deleted in the work tree, not yet committed
        data = path.read_bytes()
        if b"\0" in data:
            continue
        try:
            texts[path.relative_to(ROOT).as_posix()] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
    return texts


def cited_rules(text: str) -> set[int]:
    """Rule numbers cited in `text`; a range `8-10` cites each number in it."""
    numbers: set[int] = set()
    for match in RULE_CITATION.finditer(text):
        spec = re.sub(r"\([a-c]\)", "", match.group(1))
        for part in re.split(r"\s*(?:,|and|or)\s*", spec):
            if "-" in part:
                low, high = (int(x) for x in part.split("-"))
                numbers.update(range(low, high + 1))
            elif part.strip():
                numbers.add(int(part))
    return numbers


def test_the_patterns_catch_what_they_must() -> None:
    word, arch = _OUTSIDE_WORDS
    for bad in (
        f"see {word} 9.4",
        f"({word} 11 rule 6)",
        f"{word}.md",
        f"{arch}.md",
        f"{arch}: the hot path",
        "the spec section " + "11",
        "\u00a72",
        "/work/" + "shared/seeds",
    ):
        assert OUTSIDE_CITATION.search(bad), bad
    for fine in ("PERIOD_UNIT_UNSPECIFIED", "importlib.util.find_spec(name)", "the XDG spec"):
        assert not OUTSIDE_CITATION.search(fine), fine
    assert cited_rules("rules 6, 7, 11 and 23; rule 6(b); Rule 16; rules 8-10") == {
        6, 7, 8, 9, 10, 11, 16, 23,
    }


def test_no_file_cites_a_document_outside_the_repository() -> None:
    texts = text_files()
    assert "docs/rules.md" in texts and "README.md" in texts
    offenders = [
        f"{name}:{number}: {line.strip()}"
        for name, text in sorted(texts.items())
        for number, line in enumerate(text.splitlines(), 1)
        if OUTSIDE_CITATION.search(line)
    ]
    assert not offenders, "cite docs/rules.md, docs/contract.md or docs/design.md instead:\n" + (
        "\n".join(offenders)
    )



def test_rules_md_defines_rules_1_to_23_in_order() -> None:
    anchors = [int(n) for n in RULE_ANCHOR.findall(RULES.read_text(encoding="utf-8"))]
    assert anchors == list(range(1, RULE_COUNT + 1))


def test_every_cited_rule_number_is_a_rule_of_rules_md() -> None:
    defined = {int(n) for n in RULE_ANCHOR.findall(RULES.read_text(encoding="utf-8"))}
    unknown = [
        f"{name}: rule {n}"
        for name, text in sorted(text_files().items())
        for n in sorted(cited_rules(text) - defined)
    ]
    assert not unknown, "\n".join(unknown)


def test_links_into_the_reference_docs_name_existing_anchors() -> None:
    docs = ROOT / "docs"
    anchors = {
        name: set(ANY_ANCHOR.findall((docs / name).read_text(encoding="utf-8")))
        for name in ("rules.md", "contract.md", "design.md")
    }
    broken = [
        f"{name}: {target}#{anchor}"
        for name, text in sorted(text_files().items())
        if name.endswith(".md")
        for target, anchor in DOC_LINK.findall(text)
        if anchor not in anchors[target.removeprefix("docs/")]
    ]
    assert not broken, "\n".join(broken)
