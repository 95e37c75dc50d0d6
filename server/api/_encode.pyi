# The compiled encoder's interface (server/api/_encode.pyx).
from arbiter.server.engine import CalculationResult

def encode_response(result: CalculationResult, program_version: int) -> bytes: ...
def _check_layout() -> None: ...

_LAYOUT: dict[str, dict[str, tuple[int, int]]]
