"""The event loop `arbiter serve` runs on: `--event-loop` / ARBITER_EVENT_LOOP (docs/api.md)."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from arbiter.server.app.runtime import EVENT_LOOPS, event_loop_factory, run
from arbiter.server.app.settings import SettingsError, settings_from_args

HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None


async def _loop_module() -> str:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def test_auto_is_the_default_and_means_uvloop_where_installed() -> None:
    assert settings_from_args(argv=[], env={}).event_loop == "auto"
    assert run(_loop_module()) == ("uvloop" if HAS_UVLOOP else "asyncio")


def test_asyncio_is_the_standard_loop() -> None:
    assert event_loop_factory("asyncio") is None
    assert run(_loop_module(), "asyncio") == "asyncio"


@pytest.mark.skipif(not HAS_UVLOOP, reason="uvloop is not installed here")
def test_uvloop_asked_for_runs_on_uvloop() -> None:
    assert run(_loop_module(), "uvloop") == "uvloop"


def test_flag_wins_over_environment() -> None:
    env = {"ARBITER_EVENT_LOOP": "uvloop" if HAS_UVLOOP else "auto"}
    assert settings_from_args(argv=[], env=env).event_loop == env["ARBITER_EVENT_LOOP"]
    chosen = settings_from_args(argv=["--event-loop", "asyncio"], env=env)
    assert chosen.event_loop == "asyncio"


@pytest.mark.parametrize("name", ["tokio", "UVLOOP", " asyncio"])
def test_an_unknown_loop_is_refused_naming_the_setting(name: str) -> None:
    with pytest.raises(SettingsError, match="event loop") as caught:
        settings_from_args(argv=["--event-loop", name], env={})
    assert repr(name) in str(caught.value)
    for known in EVENT_LOOPS:
        assert known in str(caught.value)
    with pytest.raises(SettingsError, match="event loop"):
        settings_from_args(argv=[], env={"ARBITER_EVENT_LOOP": name})


def test_uvloop_asked_for_but_missing_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "uvloop" else real_find_spec(name)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(SettingsError, match="uvloop is not installed"):
        settings_from_args(argv=["--event-loop", "uvloop"], env={})
    # `auto` falls back to asyncio's loop instead.
    assert settings_from_args(argv=[], env={}).event_loop == "auto"
    assert event_loop_factory("auto") is None
