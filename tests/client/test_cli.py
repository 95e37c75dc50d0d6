"""The `arbiter` command against a real server (a subprocess each): every client command, its
tables in a pipe, its JSON, and what a user gets wrong (a bad file, an unknown program or member,
a server that is down): a clear message, exit 1 or 2, never a traceback."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.client.conftest import DEMO_ORDER, DEMO_PROGRAM, Server, free_port, run_arbiter

# Enough rows to cross several progress updates and the ledger's chunks; 100,000 are measured
# outside CI (docs/cli.md).
CSV_MEMBERS = 2_000


def _rows(out: str) -> list[list[str]]:
    """A piped table: tab-separated, the header first."""
    return [line.split("\t") for line in out.splitlines() if line and not line.startswith("# ")]


def _section(out: str, title: str) -> list[list[str]]:
    """One titled table of a command that prints several."""
    lines = out.split(f"# {title}\n", 1)[1].split("\n\n", 1)[0]
    return _rows(lines)


# --- the client imports only the contract --------------------------------------------------------


def _modules_after(code: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def test_importing_the_command_line_loads_no_server_module() -> None:
    modules = _modules_after("import arbiter.client.cli")
    assert "arbiter.client.cli" in modules
    assert "arbiter.v1.admin_pb2" in modules
    assert not {m for m in modules if m.startswith("arbiter.server")}


def test_a_client_command_loads_no_server_module_and_serve_does() -> None:
    client = _modules_after(
        "from arbiter.client.cli import main\n"
        "try:\n    main(['program', 'list', '--help'])\nexcept SystemExit:\n    pass"
    )
    assert not {m for m in client if m.startswith("arbiter.server")}
    serve = _modules_after(
        "from arbiter.client.cli import main\n"
        "try:\n    main(['serve', '--help'])\nexcept SystemExit:\n    pass"
    )
    assert "arbiter.server.app.settings" in serve


# --- programs ------------------------------------------------------------------------------------


def test_program_list_and_get(server: Server) -> None:
    assert _rows(server.ok("program", "list")) == [
        ["program", "name", "version"],
        ["demo", "Demo store loyalty", "1"],
    ]
    fields = dict(_rows(server.ok("program", "get", "demo"))[1:])
    assert fields["applied version"] == "1"
    assert fields["promotions"] == "6"
    assert fields["draft has changes"] == "no"
    as_json = json.loads(server.ok("program", "get", "demo", "--json"))
    assert as_json["version"] == "1"
    assert as_json["program"]["id"] == "demo"


def test_program_tree_draws_modes_limits_and_statuses(server: Server) -> None:
    out = server.ok("program", "tree", "demo")
    assert "\x1b" not in out  # a pipe gets no escape codes
    lines = out.splitlines()
    assert lines[0] == "main arbitration  SEQUENTIAL  limits: max discount 50%"
    group = next(line for line in lines if "group best-deal" in line)
    assert "MAX_BENEFIT" in group
    birthday = next(line for line in lines if " birthday " in line)
    # A child of best-deal: drawn one level deeper than the group.
    assert birthday.index("birthday") > group.index("group")
    assert "DISCOUNT  ACTIVE" in birthday
    tree = json.loads(server.ok("program", "tree", "demo", "--json"))
    assert tree["mode"] == "ARBITRATION_MODE_SEQUENTIAL"


def test_export_edit_import_diff_test_apply(server: Server, tmp_path: Path) -> None:
    exported = tmp_path / "demo.json"
    server.ok("program", "export", "demo", "--draft", "-o", str(exported))
    program = json.loads(exported.read_text(encoding="utf-8"))
    birthday = next(p for p in program["promotions"] if p["id"] == "birthday")
    rule = birthday["product_rules"][0]["benefits"][0]
    assert rule["discount"]["percent_bp"] == 2000
    rule["discount"]["percent_bp"] = 2500
    exported.write_text(json.dumps(program), encoding="utf-8")

    assert "has no changes" in server.ok("program", "diff", "demo")
    server.ok("program", "import", str(exported))
    diff = _rows(server.ok("program", "diff", "demo"))
    assert diff[0] == ["object", "id", "change", "fields"]
    assert diff[1][:3] == ["promotion", "birthday", "changed"]
    assert "product_rules" in diff[1][3]

    applied = json.loads(server.ok("test", str(DEMO_ORDER), "--json"))
    draft = json.loads(server.ok("test", str(DEMO_ORDER), "--draft", "--json"))
    assert applied["result"]["program_version"] == "1"
    assert draft["result"]["program_version"] == "0"
    assert int(draft["result"]["totals"]["discount"]) > int(applied["result"]["totals"]["discount"])

    server.ok("program", "revert", "demo")
    assert "has no changes" in server.ok("program", "diff", "demo")
    server.ok("program", "import", str(exported))
    assert server.ok("program", "apply", "demo").strip() == "demo: version 2 is applied"
    assert dict(_rows(server.ok("program", "get", "demo"))[1:])["applied version"] == "2"
    # Back to the demo as shipped (version 3), for the other tests of this module.
    server.ok("program", "import", str(DEMO_PROGRAM))
    server.ok("program", "apply", "demo")


def test_import_of_a_file_with_short_enum_names(server: Server) -> None:
    # The shipped program file writes "STANDARD", not "POINT_KIND_STANDARD".
    assert '"kind": "STANDARD"' in DEMO_PROGRAM.read_text(encoding="utf-8")
    server.ok("program", "import", str(DEMO_PROGRAM))
    assert "has no changes" in server.ok("program", "diff", "demo")


def test_a_malformed_program_file_is_named_and_nothing_is_sent(
    server: Server, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"id": "demo",\n  "promotions": [\n', encoding="utf-8")
    done = server.arbiter("program", "import", str(bad))
    assert done.code == 2
    assert done.err.startswith(f"arbiter program import: {bad}: invalid JSON at line 3"), done.err
    assert "Traceback" not in done.err
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"id": "demo", "promotoins": []}', encoding="utf-8")
    done = server.arbiter("program", "import", str(wrong))
    assert done.code == 2
    assert "promotoins" in done.err and "Traceback" not in done.err
    missing = server.arbiter("program", "import", str(tmp_path / "nope.json"))
    assert (missing.code, "no such file" in missing.err) == (2, True)
    assert "has no changes" in server.ok("program", "diff", "demo")


def test_an_unknown_program_is_a_clear_error(server: Server) -> None:
    for args in (
        ("program", "get", "nope"),
        ("program", "tree", "nope"),
        ("program", "apply", "nope"),
        ("program", "diff", "nope"),
        ("member", "get", "alice", "--program", "nope"),
        ("test", str(DEMO_ORDER), "--program", "nope"),
    ):
        done = server.arbiter(*args)
        assert done.code == 1, (args, done)
        assert "NOT_FOUND" in done.err and "nope" in done.err, (args, done.err)
        assert "Traceback" not in done.err
        assert done.out == ""


def test_a_server_that_is_down(tmp_path: Path) -> None:
    target = f"127.0.0.1:{free_port()}"
    for args in (
        ("program", "list"),
        ("member", "get", "alice", "--program", "demo"),
        ("test", str(DEMO_ORDER)),
        ("health",),
    ):
        done = run_arbiter(*args, "--target", target)
        assert done.code == 1, (args, done)
        assert f"UNAVAILABLE: cannot reach the server at {target}" in done.err, done.err
        assert "Traceback" not in done.err
        assert done.out == ""


def test_usage_errors_exit_2() -> None:
    assert run_arbiter("program").code == 2
    assert run_arbiter("transaction", "give", "alice", "5", "--point-type", "bonus").code == 2
    assert run_arbiter("program", "list", "--bogus").code == 2


# --- test mode -----------------------------------------------------------------------------------


def test_test_prints_tables_and_the_trace_as_a_tree(server: Server) -> None:
    out = server.ok("test", str(DEMO_ORDER))
    totals = dict(_section(out, "Totals")[1:])
    assert totals["total"] == "59,787.00"
    assert totals["discount"] == "28,396.00"
    lines = _section(out, "Lines")
    assert lines[0][:5] == ["line", "base price", "discount", "paid with points", "final price"]
    assert lines[1][:5] == ["1", "100,000.00", "28,000.00", "13,500.00", "58,500.00"]
    benefits = _section(out, "Benefits")
    assert ["1", "birthday", "DISCOUNT", "discount", "18,000.00"] in [b[:5] for b in benefits]
    points = {row[0]: row for row in _section(out, "Points")[1:]}
    assert points["bonus"][1:4] == ["50000", "13797", "2989"]
    trace = out.split("Decision trace\n", 1)[1].splitlines()
    assert trace[0].startswith("└── main arbitration")
    best = next(line for line in trace if "group best-deal" in line)
    assert "APPLIED" in best and "chosen: birthday, pay-with-points" in best
    birthday = next(line for line in trace if line.lstrip("│ ├└─").startswith("birthday "))
    assert birthday.index("birthday") > best.index("group")


def test_test_as_an_enrolled_member(server: Server) -> None:
    server.ok("member", "enroll", "tess")
    response = json.loads(server.ok("test", str(DEMO_ORDER), "--member", "tess", "--json"))
    bonus = next(b for b in response["balances"] if b["point_type"] == "bonus")
    assert bonus["before"] == "100"  # the demo's initial balance, not the file's context
    assert response["trace"][0]["kind"] == "TRACE_NODE_KIND_GROUP"


def test_a_malformed_order_file(server: Server, tmp_path: Path) -> None:
    bad = tmp_path / "order.json"
    bad.write_text('{"order": {"lines": [{"quantity": "many"}]}}', encoding="utf-8")
    done = server.arbiter("test", str(bad))
    assert done.code == 2
    assert "quantity" in done.err and "Traceback" not in done.err


# --- members -------------------------------------------------------------------------------------


def test_member_enroll_get_transactions_expiring_remove(server: Server) -> None:
    out = server.ok("member", "enroll", "mia", "--registered-at", "2026-03-01T09:00:00+03:00")
    assert out.startswith("mia enrolled (2026-03-01T06:00:00Z)")
    again = server.ok("member", "enroll", "mia")
    assert again.startswith("mia was enrolled already")

    tx = dict(
        _rows(
            server.ok(
                "transaction",
                "accrue",
                "mia",
                "500",
                "--point-type",
                "bonus",
                "--external-id",
                "gift-1",
                "--comment",
                "goodwill",
            )
        )[1:]
    )
    assert (tx["balance before"], tx["value"], tx["balance after"]) == ("100", "500", "600")
    tx = dict(_rows(server.ok("transaction", "deduct", "mia", "50", "--point-type", "bonus"))[1:])
    assert tx["balance after"] == "550"
    tx = dict(_rows(server.ok("trigger", "app-install", "mia", "200", "--point-type", "bonus"))[1:])
    assert (tx["value"], tx["balance after"]) == ("200", "750")

    out = server.ok("member", "get", "mia")
    balances = {row[0]: row for row in _section(out, "Balances")[1:]}
    assert balances["bonus"][1] == "750"
    assert _section(out, "Tiers")[1][:2] == ["status", "bronze"]

    rows = _rows(server.ok("member", "transactions", "mia"))
    assert rows[0][:6] == ["time", "type", "point type", "before", "value", "after"]
    assert [(r[1], r[4], r[6]) for r in rows[1:]] == [
        ("ACCRUAL", "100", "ENROLLMENT mia"),
        ("ACCRUAL", "500", "MANUAL"),
        ("REDEMPTION", "-50", "MANUAL"),
        ("ACCRUAL", "200", "TRIGGER_PROMOTION app-install"),
    ]
    assert rows[2][7:] == ["gift-1", "goodwill"]
    assert rows[3][7].startswith("cli-")  # each run without --external-id posts anew
    limited = json.loads(server.ok("member", "transactions", "mia", "--limit", "2", "--json"))
    assert len(limited["transactions"]) == 2

    expiring = json.loads(server.ok("member", "expiring", "mia", "--within-days", "400", "--json"))
    assert sum(int(lot["points"]) for lot in expiring["lots"]) > 0

    assert server.ok("member", "remove", "mia").strip() == "mia removed from demo"
    gone = server.arbiter("member", "get", "mia")
    assert gone.code == 1 and "NOT_FOUND" in gone.err


def test_a_refused_deduction_names_the_reason(server: Server) -> None:
    server.ok("member", "enroll", "poor")
    done = server.arbiter("transaction", "deduct", "poor", "1000000", "--point-type", "bonus")
    assert done.code == 1
    assert done.err.startswith("arbiter transaction: ") and "Traceback" not in done.err


def test_enroll_a_csv_file_then_export(server: Server, tmp_path: Path) -> None:
    members = tmp_path / "members.csv"
    lines = ["member_id,registered_at"]
    lines += [f"csv-{i:05d},2026-02-01T12:00:00Z" for i in range(CSV_MEMBERS)]
    members.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = server.arbiter("member", "enroll", "--file", str(members))
    assert done.code == 0, done.err
    fields = dict(_rows(done.out)[1:])
    assert fields == {
        "rows": str(CSV_MEMBERS),
        "enrolled": str(CSV_MEMBERS),
        "already enrolled": "0",
    }
    assert "members/s" in done.err
    again = dict(_rows(server.ok("member", "enroll", "--file", str(members)))[1:])
    assert again["already enrolled"] == str(CSV_MEMBERS)

    exported = tmp_path / "export.csv"
    server.ok("member", "export", "-o", str(exported))
    table = list(csv.DictReader(io.StringIO(exported.read_text(encoding="utf-8"))))
    ours = [row for row in table if row["member_id"].startswith("csv-")]
    assert len(ours) == CSV_MEMBERS
    assert ours[0]["registered_at"] == "2026-02-01T12:00:00Z"
    assert ours[0]["bonus"] == "100"
    # The export reads back as an enrollment file.
    back = dict(_rows(server.ok("member", "enroll", "--file", str(exported)))[1:])
    assert back["enrolled"] == "0"
    lines_json = server.ok("member", "export", "--json").splitlines()
    assert len(lines_json) == len(table)
    assert {"member_id", "balances"} <= set(json.loads(lines_json[0]))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("id,name\nx,y\n", "line 1: the header row has no 'member_id' column"),
        ('member_id\nok-1\n"broken\n', "line 3"),
        ("member_id,registered_at\nbad-1,yesterday\n", "line 2: registered_at 'yesterday'"),
        ("member_id,registered_at\nbad-2,2026-01-01T00:00:00\n", "line 2: registered_at"),
        ("member_id\nbad-3\nbad-3\n", "line 3: member 'bad-3' again (first on line 2)"),
        ("", "empty file"),
    ],
)
def test_a_malformed_member_file_enrolls_nobody(
    server: Server, tmp_path: Path, content: str, message: str
) -> None:
    members = tmp_path / "members.csv"
    members.write_text(content, encoding="utf-8")
    done = server.arbiter("member", "enroll", "--file", str(members))
    assert done.code == 2, done
    assert message in done.err, done.err
    assert "Traceback" not in done.err
    for member in ("ok-1", "bad-1", "bad-2", "bad-3"):
        assert server.arbiter("member", "get", member).code == 1


# --- keys ----------------------------------------------------------------------------------------


def test_keys_create_and_revoke(server: Server) -> None:
    key = server.ok("keys", "create", "app", "cli-test-app").strip()
    assert key.startswith("arb_") and "\n" not in key
    # With auth off every caller is the admin; the key is still a key: --key sends it.
    assert server.ok("program", "list", "--key", key).startswith("program\t")
    assert server.ok("keys", "revoke", key).strip() == "the key is revoked"
    unknown = server.arbiter("keys", "revoke", "arb_never-issued")
    assert unknown.code == 1 and "NOT_FOUND" in unknown.err
    taken = server.arbiter("keys", "create", "pos", "admin")
    assert taken.code == 1 and "Traceback" not in taken.err
