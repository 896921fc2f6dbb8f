"""Errors of the proxy, each carrying the HTTP status and Prometheus ``errorType`` it maps to.

Tree::

    ProxyError (Exception)            status, error_type
    ├── BadRequest                    400 bad_data: unparsable parameters or PromQL
    ├── Unauthenticated               401 unauthorized: no or bad credentials
    ├── Forbidden                     403 forbidden: outside the tenant's policy, or no tenant
    ├── NotFound                      404 not_found: an endpoint the proxy does not serve
    ├── MethodNotAllowed              405 bad_data
    ├── Unavailable                   503 unavailable: no healthy backend, or queue full
    └── BackendError                  502 / 504 / the backend's own status

``render_error`` turns any of them into Prometheus' envelope
``{"status":"error","errorType":…,"error":…}`` (prom-label-proxy does the same).
"""

from __future__ import annotations

import json

__all__ = [
    "BackendError",
    "BadRequest",
    "Forbidden",
    "MethodNotAllowed",
    "NotFound",
    "ProxyError",
    "Unauthenticated",
    "Unavailable",
    "render_error",
]


class ProxyError(Exception):
    """Base of every error the proxy answers with; ``message`` is shown to the client."""

    status: int = 500
    error_type: str = "internal"

    def __init__(self, message: str, *, status: int | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.retry_after_s = retry_after_s


class BadRequest(ProxyError):
    status = 400
    error_type = "bad_data"


class Unauthenticated(ProxyError):
    status = 401
    error_type = "unauthorized"


class Forbidden(ProxyError):
    status = 403
    error_type = "forbidden"


class NotFound(ProxyError):
    status = 404
    error_type = "not_found"


class MethodNotAllowed(ProxyError):
    status = 405
    error_type = "bad_data"


class Unavailable(ProxyError):
    status = 503
    error_type = "unavailable"


class BackendError(ProxyError):
    status = 502
    error_type = "server_error"


def render_error(error: ProxyError) -> bytes:
    """The Prometheus error envelope for ``error``, as JSON bytes."""
    body = {"status": "error", "errorType": error.error_type, "error": error.message}
    return json.dumps(body, ensure_ascii=False).encode("utf-8")
