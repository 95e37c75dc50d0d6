"""Types of the typed core (core.pyx), for mypy."""

from arbiter.server.engine.compile import CNode
from arbiter.server.engine.single import Entry, Single, State

def max_benefit(
    single: Single, node: CNode, s: State, children: list[tuple[CNode, list[Entry]]]
) -> list[Entry] | None: ...
