"""The compile of an Apply: the GIL switch interval it shortens and the cyclic GC it pauses come
back, whatever happens; what was alive when it ended is frozen."""

from __future__ import annotations

import gc
import sys
import threading

import pytest

from arbiter.server.engine import CompiledProgram, ConfigError, ConfigIssue, compile_program
from arbiter.server.state import config
from arbiter.v1 import program_pb2


def test_the_switch_interval_is_short_while_compiling_and_restored_after() -> None:
    normal = sys.getswitchinterval()
    seen: list[float] = []

    def compile(program: program_pb2.Program) -> CompiledProgram:
        seen.append(sys.getswitchinterval())
        return compile_program(program)

    gc_during: list[bool] = []

    def compile_and_look(program: program_pb2.Program) -> CompiledProgram:
        gc_during.append(gc.isenabled())
        return compile(program)

    frozen = gc.get_freeze_count()
    compiled = config._yielding(compile_and_look, program_pb2.Program(id="p"))
    assert seen == [config._COMPILE_SWITCH_INTERVAL_S]
    assert gc_during == [False]
    assert sys.getswitchinterval() == normal
    assert gc.isenabled()
    assert gc.get_freeze_count() > frozen
    assert compiled is not None


def test_the_switch_interval_is_restored_after_a_failed_compile() -> None:
    normal = sys.getswitchinterval()

    def failing(program: program_pb2.Program) -> CompiledProgram:
        raise ConfigError([ConfigIssue("program", program.id, "id", "bad")])

    with pytest.raises(ConfigError):
        config._yielding(failing, program_pb2.Program(id="p"))
    assert sys.getswitchinterval() == normal
    assert gc.isenabled()


def test_overlapping_compiles_restore_the_interval_when_the_last_ends() -> None:
    normal = sys.getswitchinterval()
    first_inside = threading.Event()
    release_first = threading.Event()
    during_second: list[float] = []

    def slow(program: program_pb2.Program) -> CompiledProgram:
        first_inside.set()
        assert release_first.wait(10)
        return compile_program(program)

    def quick(program: program_pb2.Program) -> CompiledProgram:
        return compile_program(program)

    thread = threading.Thread(target=config._yielding, args=(slow, program_pb2.Program(id="a")))
    thread.start()
    assert first_inside.wait(10)
    config._yielding(quick, program_pb2.Program(id="b"))
    during_second.append(sys.getswitchinterval())  # the first still compiles
    release_first.set()
    thread.join(10)
    assert during_second == [config._COMPILE_SWITCH_INTERVAL_S]
    assert sys.getswitchinterval() == normal


def test_a_compiled_program_holds_no_reference_cycles() -> None:
    """What makes freezing it safe: a replaced version is freed by reference counting alone."""
    from bench.workloads import sized_workload

    program, _ = sized_workload(300)
    compiled = compile_program(program)
    gc.collect()  # the compile's own garbage
    assert compiled.point_type_ids
    del compiled
    assert gc.collect() == 0

