"""api room: gRPC servicers and the translation between protobuf and engine types.

Thin: translate, call, translate back; no business rule lives here. Domain errors become status
codes in one place, `errors`.
"""

from arbiter.server import native as _native

# Before any module of the package: the compiled ones shadow the sources only if current.
_native.activate(__name__, __path__)

from arbiter.server.api.admin import AdminService
from arbiter.server.api.admission import Admission, Overloaded
from arbiter.server.api.checkout import (
    REQUEST_READING,
    RESPONSE_ENCODING,
    CheckoutService,
    Clock,
    utc_now,
)
from arbiter.server.api.errors import STATUS_BY_ERROR, guard, status_for
from arbiter.server.api.member import MemberService
from arbiter.server.api.translate import order_from_proto, result_to_proto

__all__ = [
    "REQUEST_READING",
    "RESPONSE_ENCODING",
    "STATUS_BY_ERROR",
    "AdminService",
    "Admission",
    "CheckoutService",
    "Clock",
    "MemberService",
    "Overloaded",
    "guard",
    "order_from_proto",
    "result_to_proto",
    "status_for",
    "utc_now",
]
