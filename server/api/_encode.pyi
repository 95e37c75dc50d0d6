# The compiled encoder's interface (server/api/_encode.pyx).
from collections.abc import Sequence

from arbiter.server.engine import CalculationResult, CompiledProgram
from arbiter.server.engine.types import LineInput

def encode_packed(
    result: CalculationResult,
    program_version: int,
    rows: bytes,
    line_results: bytes,
    program: CompiledProgram,
    lines: Sequence[LineInput],
) -> bytes: ...
def encode_response(result: CalculationResult, program_version: int) -> bytes: ...
def _check_layout() -> None: ...

_LAYOUT: dict[str, dict[str, tuple[int, int]]]
