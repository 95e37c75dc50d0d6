"""Program -> CompiledProgram: everything order-independent, computed once at apply time."""

from __future__ import annotations

from dataclasses import dataclass

from arbiter.v1 import program_pb2


@dataclass(frozen=True, slots=True)
class CompiledProgram:
    """An immutable compiled program (placeholder while the engine is written)."""

    id: str
    time_zone: str
    point_type_ids: frozenset[str]
    source: program_pb2.Program


def compile_program(program: program_pb2.Program) -> CompiledProgram:
    """Validate and compile `program`; raises ConfigError naming every bad object and field."""
    raise NotImplementedError("engine under construction")
