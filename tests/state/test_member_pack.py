"""The member cache's packed entries (server/state/members.py): what is packed unpacks to the
same member, and what does not fit the packed form is refused (then held as it is)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from arbiter.server.engine import MemberState
from arbiter.server.state.members import (
    _Entry,
    _key,
    _Names,
    _pack,
    _unpack,
    pack_portable,
    unpack_portable,
)

NAMES = st.sampled_from(["bonus", "qual", "extra", "levels", "gold", "silver", "Бонус", "🎁"])
POINTS = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, 1, -1, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1]),
)
STAMPS = st.one_of(
    st.none(),
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(9000, 1, 1),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=3))]),
    ),
)


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(
    member_id=st.text(min_size=1, max_size=40),
    balances=st.dictionaries(NAMES, POINTS, max_size=5),
    tiers=st.dictionaries(NAMES, NAMES, max_size=3),
    stale_at=STAMPS,
)
def test_a_packed_entry_unpacks_to_the_same_member(
    member_id: str, balances: dict[str, int], tiers: dict[str, str], stale_at: datetime | None
) -> None:
    names = _Names()
    entry = _Entry(MemberState(member_id, balances, tiers, frozenset()), {}, stale_at)
    packed = _pack(member_id, entry, names)
    assert packed is not None
    again = _unpack(member_id, packed, names.names)
    assert again.state == entry.state
    assert list(again.state.balances.items()) == list(balances.items())  # order kept
    assert list(again.state.tiers.items()) == list(tiers.items())
    assert dict(again.pool_uses) == {}
    assert again.stale_at == stale_at


def test_names_keep_their_index_as_the_table_grows() -> None:
    names = _Names()
    first = _Entry(MemberState("m-1", {"bonus": 10}, {"levels": "gold"}), {}, None)
    packed = _pack("m-1", first, names)
    assert packed is not None
    # Another member adds names: the first member's entry still reads the same.
    _pack("m-2", _Entry(MemberState("m-2", {"extra": 5, "qual": 7}), {}, None), names)
    assert _unpack("m-1", packed, names.names).state == first.state


def test_a_typical_member_packs_into_a_small_bytes_object() -> None:
    entry = _Entry(
        MemberState("m-1", {"bonus": 15_000, "qual": 700}, {"levels": "silver"}), {}, None
    )
    packed = _pack("m-1", entry, _Names())
    assert packed is not None
    assert len(packed) == 2 + 2 * 5 + 2


def test_entries_that_do_not_fit_are_kept_as_they_are() -> None:
    names = _Names()
    state = MemberState("m-1", {"bonus": 1})
    # Pool uses, segments, another member's state, a naive instant, a full name table.
    assert _pack("m-1", _Entry(state, {"pool1": 2}, None), names) is None
    segmented = state._replace(segments=frozenset({"vip"}))
    assert _pack("m-1", _Entry(segmented, {}, None), names) is None
    assert _pack("m-2", _Entry(state, {}, None), names) is None
    assert _pack("m-1", _Entry(state, {}, datetime(2030, 1, 1)), names) is None
    for i in range(300):
        names.of(f"type{i}")
    assert _pack("m-1", _Entry(MemberState("m-1", {"fresh": 1}), {}, None), names) is None


def test_the_key_is_the_ids_utf8() -> None:
    assert _key("m-1") == b"m-1"
    assert _key("Ёж🎁") == "Ёж🎁".encode()


def test_a_canonical_uuid_is_keyed_by_its_16_bytes() -> None:
    member_id = "0f8e2c1a-9b7d-4e6f-a5c3-b2d1e0f9a8b7"
    assert _key(member_id) == bytes.fromhex(member_id.replace("-", "")) + b"\xff"
    # Not canonical: upper case, braces, spaces or hyphens misplaced keep their UTF-8.
    for other in (
        member_id.upper(),
        "0F8e2c1a-9b7d-4e6f-a5c3-b2d1e0f9a8b7",
        "0f8e2c1a-9b7d-4e6f-a5c3-b2d1e0f9a8b",
        "0f8e2c1a-9b7d-4e6f-a5c3-b2d1e0f9a8b7 ",
        "0f8e2c1a-9b7d-4e6f-a5c3-b2d1e 0f9a8b",
        "0f8e2c1a9-b7d-4e6f-a5c3-b2d1e0f9a8b7",
        "0f8e2c1a-9b7d-4e6f-a5c3-b2d1e0f9a8-7",
        "0f8e2c1a-9b7d-4e6f-a5c3-b2d1e0f9a8bg",
    ):
        assert _key(other) == other.encode(), other


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(st.lists(st.one_of(st.uuids().map(str), st.text(min_size=1, max_size=40)),
                min_size=2, max_size=2, unique=True))
def test_two_ids_never_share_a_key(ids: list[str]) -> None:
    # A UUID's key ends with 0xFF, which no UTF-8 has: it cannot equal another id's UTF-8.
    first, second = ids
    assert _key(first) != _key(second)
    for member_id in ids:
        assert _key(member_id).endswith(b"\xff") == _canonical_uuid(member_id)


def _canonical_uuid(text: str) -> bool:
    try:
        return str(UUID(text)) == text
    except ValueError:
        return False


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    member_id=st.text(min_size=1, max_size=40),
    balances=st.dictionaries(NAMES, POINTS, max_size=5),
    tiers=st.dictionaries(NAMES, NAMES, max_size=3),
    stale_at=STAMPS,
)
def test_a_portable_entry_carries_its_own_names(
    member_id: str, balances: dict[str, int], tiers: dict[str, str], stale_at: datetime | None
) -> None:
    # The Redis form (docs/replicas.md): unpacked by a process whose name table differs.
    entry = _Entry(MemberState(member_id, balances, tiers, frozenset()), {}, stale_at)
    body = pack_portable(member_id, entry)
    assert body is not None
    again = unpack_portable(member_id, body)
    assert again.state == entry.state
    assert list(again.state.tiers.items()) == list(tiers.items())
    assert again.stale_at == stale_at


def test_entries_with_pool_uses_have_no_portable_form() -> None:
    entry = _Entry(MemberState("m-1", {"bonus": 10}), {"pool-1": 1}, None)
    assert pack_portable("m-1", entry) is None
