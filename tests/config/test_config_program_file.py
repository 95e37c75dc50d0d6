"""The program file loader: protobuf JSON in, Program out; every mistake named
(docs/configuration.md)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from arbiter.server.api import program_file
from arbiter.server.api.program_file import (
    load_demo_program,
    load_program_file,
    parse_program_json,
    program_to_json,
)
from arbiter.server.engine.errors import ConfigError, ConfigIssue
from arbiter.server.engine.validate import validate_program
from arbiter.v1 import checkout_pb2
from arbiter.v1 import program_pb2 as pb


def small_program(**overrides: Any) -> dict[str, Any]:
    """A valid program file as a dict; `overrides` replace top-level keys."""
    document: dict[str, Any] = {
        "id": "shop",
        "currency": "RUB",
        "time_zone": "Europe/Moscow",
        "point_types": [
            {"id": "bonus", "kind": "STANDARD", "ratio": {"points": 1, "money": 100}},
        ],
        "promotions": [
            {
                "id": "p1",
                "status": "ACTIVE",
                "product_rules": [{"benefits": [{"discount": {"percent_bp": 1000}}]}],
            }
        ],
        "arbitration": {
            "mode": "SEQUENTIAL",
            "children": [
                {"group": {"id": "g1", "mode": "MAX_BENEFIT", "children": [{"promotion": "p1"}]}}
            ],
        },
    }
    document.update(overrides)
    return document


def load_errors(text: str, *, validate: bool = True) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as caught:
        parse_program_json(text, "shop.json", validate=validate)
    return list(caught.value.issues)


def where(issue: ConfigIssue) -> tuple[str, str, str]:
    return (issue.object_kind, issue.object_id, issue.field)


def only_error(document: dict[str, Any]) -> ConfigIssue:
    issues = load_errors(json.dumps(document))
    assert len(issues) == 1, issues
    return issues[0]


def test_small_program_loads() -> None:
    program = parse_program_json(json.dumps(small_program()))
    assert program.arbitration.mode == pb.ARBITRATION_MODE_SEQUENTIAL
    assert program.arbitration.children[0].group.mode == pb.ARBITRATION_MODE_MAX_BENEFIT
    assert program.point_types[0].kind == pb.POINT_KIND_STANDARD
    assert program.promotions[0].status == pb.PROMOTION_STATUS_ACTIVE


def test_short_prefixed_lowercase_and_numeric_enum_values_are_one_value() -> None:
    spellings = ["MAX_BENEFIT", "ARBITRATION_MODE_MAX_BENEFIT", "max_benefit", 4]
    programs = []
    for spelling in spellings:
        document = small_program()
        document["arbitration"]["mode"] = spelling
        programs.append(parse_program_json(json.dumps(document)))
    assert all(p == programs[0] for p in programs)
    assert programs[0].arbitration.mode == pb.ARBITRATION_MODE_MAX_BENEFIT


def test_repeated_enums_are_normalised() -> None:
    document = small_program()
    document["promotions"][0]["availability"] = {
        "weekdays": ["MONDAY", "WEEKDAY_FRIDAY", "sunday"],
        "months": [1, 12],
    }
    program = parse_program_json(json.dumps(document))
    assert list(program.promotions[0].availability.weekdays) == [
        pb.WEEKDAY_MONDAY,
        pb.WEEKDAY_FRIDAY,
        pb.WEEKDAY_SUNDAY,
    ]


def test_camel_case_and_snake_case_names() -> None:
    snake = parse_program_json(json.dumps(small_program()))
    document = small_program(timeZone="Europe/Moscow")
    del document["time_zone"]
    document["pointTypes"] = document.pop("point_types")
    document["promotions"][0]["productRules"] = [{"benefits": [{"discount": {"percentBp": 1000}}]}]
    del document["promotions"][0]["product_rules"]
    assert parse_program_json(json.dumps(document)) == snake


def test_int64_as_strings_and_integral_floats() -> None:
    document = small_program()
    document["point_types"][0]["ratio"] = {"points": "1", "money": 100.0}
    program = parse_program_json(json.dumps(document))
    assert program.point_types[0].ratio.money == 100


def test_null_means_default() -> None:
    document = small_program(description=None)
    document["promotions"][0]["period"] = None
    program = parse_program_json(json.dumps(document))
    assert not program.promotions[0].HasField("period")


# ---------------------------------------------------------------------------------- errors


def test_bad_json_names_line_and_column() -> None:
    text = '{\n  "id": "shop",\n  "name": "x",,\n}'
    (issue,) = load_errors(text)
    assert where(issue) == ("program", "", "")
    assert "shop.json" in issue.message
    assert "line 3, column" in issue.message


def test_duplicate_key_in_one_object() -> None:
    (issue,) = load_errors('{"id": "shop", "id": "other"}')
    assert "'id' appears twice" in issue.message


def test_document_must_be_an_object() -> None:
    (issue,) = load_errors("[1, 2]")
    assert where(issue) == ("program", "", "")
    assert "expected an object" in issue.message


def test_unknown_top_level_field() -> None:
    issue = only_error(small_program(colour="red"))
    assert where(issue) == ("program", "shop", "colour")
    assert "unknown field 'colour'" in issue.message


def test_unknown_field_deep_inside_a_promotion_suggests_the_name() -> None:
    document = small_program()
    document["promotions"][0]["product_rules"][0]["benefits"][0]["discount"] = {"percnt_bp": 5}
    issue = only_error(document)
    assert where(issue) == ("promotion", "p1", "product_rules[0].benefits[0].discount.percnt_bp")
    assert "did you mean 'percent_bp'" in issue.message


def test_object_without_an_id_is_named_by_its_position() -> None:
    document = small_program()
    document["point_types"].append({"name": "x", "knd": "STANDARD"})
    issue = only_error(document)
    assert where(issue) == ("program", "shop", "point_types[1].knd")


def test_unknown_enum_value_in_the_main_arbitration() -> None:
    document = small_program()
    document["arbitration"]["mode"] = "BEST"
    issue = only_error(document)
    assert where(issue) == ("program", "shop", "arbitration.mode")
    assert "MAX_BENEFIT" in issue.message  # lists the values it accepts


def test_unknown_enum_value_in_a_nested_group() -> None:
    document = small_program()
    document["arbitration"]["children"][0]["group"]["mode"] = "MAXIMUM"
    issue = only_error(document)
    assert where(issue) == ("group", "g1", "mode")


def test_unknown_enum_number() -> None:
    document = small_program()
    document["point_types"][0]["kind"] = 9
    issue = only_error(document)
    assert where(issue) == ("point_type", "bonus", "kind")


def test_unknown_repeated_enum_value() -> None:
    document = small_program()
    document["promotions"][0]["availability"] = {"weekdays": ["MONDAY", "FUNDAY"]}
    issue = only_error(document)
    assert where(issue) == ("promotion", "p1", "availability.weekdays[1]")


@pytest.mark.parametrize(
    ("change", "where_", "fragment"),
    [
        (
            lambda d: d["promotions"][0]["product_rules"][0]["benefits"][0]["discount"].update(
                percent_bp="ten"
            ),
            ("promotion", "p1", "product_rules[0].benefits[0].discount.percent_bp"),
            "expected an integer",
        ),
        (
            lambda d: d["promotions"][0]["product_rules"][0]["benefits"][0]["discount"].update(
                percent_bp=2**31
            ),
            ("promotion", "p1", "product_rules[0].benefits[0].discount.percent_bp"),
            "out of range",
        ),
        (
            lambda d: d["point_types"][0].update(active="yes"),
            ("point_type", "bonus", "active"),
            "expected true or false",
        ),
        (
            lambda d: d["point_types"][0].update(name=5),
            ("point_type", "bonus", "name"),
            "expected a string",
        ),
        (
            lambda d: d.update(promotions={"id": "p1"}),
            ("program", "shop", "promotions"),
            "expected a list",
        ),
        (
            lambda d: d["point_types"][0].update(ratio=[1, 100]),
            ("point_type", "bonus", "ratio"),
            "expected an object",
        ),
        (
            lambda d: d["point_types"][0].update(deactivate_at="next tuesday"),
            ("point_type", "bonus", "deactivate_at"),
            "RFC 3339",
        ),
        (
            lambda d: d["point_types"][0].update(ratio={"points": 1.5, "money": 100}),
            ("point_type", "bonus", "ratio.points"),
            "expected an integer",
        ),
        (
            lambda d: d.update(member_segments=[None]),
            ("program", "shop", "member_segments[0]"),
            "null is not allowed",
        ),
    ],
)
def test_wrong_types(change: Any, where_: tuple[str, str, str], fragment: str) -> None:
    document = small_program()
    change(document)
    issue = only_error(document)
    assert where(issue) == where_
    assert fragment in issue.message


def test_oneof_given_twice() -> None:
    document = small_program()
    document["promotions"][0]["product_rules"][0]["benefits"][0]["discount"] = {
        "percent_bp": 1000,
        "amount": 500,
    }
    issue = only_error(document)
    assert where(issue) == ("promotion", "p1", "product_rules[0].benefits[0].discount.amount")


def test_benefit_oneof_given_twice() -> None:
    document = small_program()
    document["promotions"][0]["product_rules"][0]["benefits"][0]["text"] = {"template": "hi"}
    issue = only_error(document)
    assert where(issue) == ("promotion", "p1", "product_rules[0].benefits[0].text")


def test_field_given_in_both_spellings() -> None:
    issue = only_error(small_program(timeZone="UTC"))
    assert where(issue) == ("program", "shop", "time_zone")
    assert "given twice" in issue.message


def test_every_parse_error_is_reported_together() -> None:
    document = small_program(colour="red")
    document["point_types"][0]["kind"] = "GOLDEN"
    document["promotions"][0]["status"] = "LIVE"
    document["arbitration"]["children"][0]["group"]["mode"] = 17
    issues = load_errors(json.dumps(document))
    assert [where(i) for i in issues] == [
        ("point_type", "bonus", "kind"),
        ("promotion", "p1", "status"),
        ("group", "g1", "mode"),
        ("program", "shop", "colour"),
    ]


def test_parse_then_validate() -> None:
    document = small_program()
    document["promotions"][0]["product_rules"][0]["benefits"][0]["discount"] = {"percent_bp": 12000}
    text = json.dumps(document)
    (issue,) = load_errors(text)
    assert where(issue) == ("promotion", "p1", "product_rules[0].benefits[0].discount.percent_bp")
    # A draft may be imported while invalid: parsing alone succeeds.
    program = parse_program_json(text, validate=False)
    assert program.promotions[0].product_rules[0].benefits[0].discount.percent_bp == 12000


def test_parse_errors_come_before_validation() -> None:
    document = small_program(colour="red")
    document["promotions"][0]["product_rules"][0]["benefits"][0]["discount"] = {"percent_bp": 12000}
    assert [where(i) for i in load_errors(json.dumps(document))] == [("program", "shop", "colour")]


# ------------------------------------------------------------------------------------ files


def test_load_program_file(tmp_path: Path) -> None:
    path = tmp_path / "shop.json"
    path.write_text(json.dumps(small_program()), encoding="utf-8")
    assert load_program_file(path).id == "shop"
    assert load_program_file(str(path)).id == "shop"


def test_load_program_file_with_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "shop.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(small_program()).encode())
    assert load_program_file(path).id == "shop"


def test_load_program_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "shop.json"
    path.write_bytes(b'{"id": "\xff"}')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_program_file(path)


def test_load_program_file_too_large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(program_file, "MAX_PROGRAM_FILE_BYTES", 10)
    path = tmp_path / "shop.json"
    path.write_text(json.dumps(small_program()), encoding="utf-8")
    with pytest.raises(ConfigError, match="larger than 10 bytes"):
        load_program_file(path)


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_program_file(tmp_path / "nope.json")


def test_bad_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_program_file(path)
    assert str(path) in caught.value.issues[0].message


# ------------------------------------------------------------------------------ round trip


def test_round_trip() -> None:
    program = parse_program_json(json.dumps(small_program()))
    text = program_to_json(program)
    assert text.endswith("}\n")
    assert parse_program_json(text) == program
    assert program_to_json(parse_program_json(text)) == text


def test_output_is_plain_protobuf_json() -> None:
    program = load_demo_program()
    text = program_to_json(program)
    assert '"mode": "ARBITRATION_MODE_SEQUENTIAL"' in text
    assert '"min_balance": 10000' in text  # int64 unquoted where safe
    assert "🎁" in text  # not escaped
    # Any protobuf JSON reader takes it.
    assert json_format.Parse(text, pb.Program()) == program


# ------------------------------------------------------------------------------------ demo


def test_demo_program_loads_and_validates() -> None:
    program = load_demo_program()
    validate_program(program)
    assert program.id == "demo"
    assert program.currency == "RUB"
    assert program.time_zone == "Europe/Moscow"
    kinds = {t.id: t.kind for t in program.point_types}
    assert kinds == {"bonus": pb.POINT_KIND_STANDARD, "qualification": pb.POINT_KIND_QUALIFICATION}
    bonus = program.point_types[0]
    assert (bonus.ratio.points, bonus.ratio.money) == (1, 100)
    assert bonus.initial_balance > 0
    tiers = [(t.id, t.min_balance) for t in program.tier_groups[0].tiers]
    assert tiers == [("bronze", 0), ("silver", 10000), ("gold", 50000)]
    best = program.arbitration.children[3].group
    assert best.mode == pb.ARBITRATION_MODE_MAX_BENEFIT
    assert [c.promotion for c in best.children] == ["birthday", "pay-with-points"]
    statuses = {p.id: p.status for p in program.promotions}
    assert set(statuses.values()) == {pb.PROMOTION_STATUS_ACTIVE}


def test_demo_program_is_package_data() -> None:
    demo = resources.files("arbiter.server").joinpath("demo")
    assert demo.joinpath("demo_program.json").is_file()
    assert demo.joinpath("example_order.json").is_file()


def test_example_order_is_a_calculate_order_request_for_the_demo() -> None:
    program = load_demo_program()
    text = resources.files("arbiter.server").joinpath("demo/example_order.json").read_text("utf-8")
    request = json_format.Parse(text, checkout_pb2.CalculateOrderRequest())
    assert request.program == program.id
    point_types = {t.id for t in program.point_types}
    assert {b.point_type for b in request.member_context.balances} <= point_types
    assert {r.point_type for r in request.order.redeem} <= point_types
    assert set(request.member_context.segments) <= {s.id for s in program.member_segments}
    assert 2 <= len(request.order.lines) <= 3
    codes = {c.code.upper() for pool in program.promo_code_pools for c in pool.codes}
    assert {c.upper() for c in request.order.promo_codes} <= codes
