"""The key of the command line: `--key`, else ARBITER_API_KEY, against a server with auth on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.client.conftest import DEMO_PROGRAM, Server, start_server

ADMIN_KEY = "cli-test-bootstrap-admin-key"


@pytest.fixture(scope="module")
def server(pg_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The demo served with auth on: the bootstrap admin key configured."""
    yield from start_server(
        pg_dsn,
        tmp_path_factory.mktemp("auth"),
        "--program",
        str(DEMO_PROGRAM),
        env={"ARBITER_ADMIN_KEY": ADMIN_KEY},
    )


def test_without_a_key_the_server_says_who_is_missing(server: Server) -> None:
    done = server.arbiter("program", "list")
    assert done.code == 1
    assert done.err.startswith("arbiter program list: UNAUTHENTICATED"), done.err


def test_the_key_from_the_flag_or_the_environment(server: Server) -> None:
    assert server.arbiter("program", "list", "--key", ADMIN_KEY).code == 0
    assert server.arbiter("program", "list", ARBITER_API_KEY=ADMIN_KEY).code == 0
    # The flag wins over the environment.
    wrong = server.arbiter("program", "list", "--key", "arb_wrong", ARBITER_API_KEY=ADMIN_KEY)
    assert wrong.code == 1 and "UNAUTHENTICATED" in wrong.err


def test_a_created_key_has_its_role_and_a_revoked_one_is_refused(server: Server) -> None:
    created = server.arbiter("keys", "create", "pos", "till-1", "--key", ADMIN_KEY)
    assert created.code == 0, created.err
    pos_key = created.out.strip()
    denied = server.arbiter("program", "list", "--key", pos_key)
    assert denied.code == 1 and "PERMISSION_DENIED" in denied.err
    assert server.arbiter("member", "enroll", "till-member", "--key", ADMIN_KEY).code == 0
    # A pos key may not list the programs, so it names its program.
    unnamed = server.arbiter("member", "get", "till-member", "--key", pos_key)
    assert unnamed.code == 2
    assert "give --program (or ARBITER_PROGRAM): this key may not list the programs" in unnamed.err
    named = server.arbiter("member", "get", "till-member", "--key", pos_key, "--program", "demo")
    assert named.code == 0, named.err
    assert (
        server.arbiter(
            "member", "get", "till-member", ARBITER_API_KEY=pos_key, ARBITER_PROGRAM="demo"
        ).code
        == 0
    )
    assert server.arbiter("keys", "revoke", pos_key, "--key", ADMIN_KEY).code == 0
    refused = server.arbiter("member", "get", "till-member", "--key", pos_key, "--program", "demo")
    assert refused.code == 1 and "UNAUTHENTICATED" in refused.err
