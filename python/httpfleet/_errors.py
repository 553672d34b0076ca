"""httpfleet's errors: one class per kind of fault, the same whichever backend met it.

Every error carries what the Rust core knows of it: ``kind`` (``"Connect"``, ``"Timeout"``,
...), ``phase`` (for a timeout: ``"Connect"``, ``"Headers"``, ``"Body"`` or ``"Total"``),
``status`` (for a status error), ``backend``, ``url`` (credentials removed) and, for a fleet
request, ``attempts`` (one ``{"member": ..., "outcome": ...}`` per attempt).
"""

from __future__ import annotations

import builtins
from typing import Any, Dict, List, Optional

from . import _native


class HttpfleetError(Exception):
    """Base of every httpfleet error."""

    kind: str = "Error"
    phase: Optional[str] = None
    status: Optional[int] = None
    backend: Optional[str] = None
    url: Optional[str] = None
    attempts: List[Dict[str, Any]]

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.attempts = []


class BuilderError(HttpfleetError, ValueError):
    """The request or the configuration is invalid; nothing was sent."""


class InvalidUrlError(BuilderError):
    """The URL cannot be used (no host, a scheme other than http or https)."""


class UnsupportedError(HttpfleetError):
    """The backend cannot honour the configuration (reported when the client is built)."""


class ConnectError(HttpfleetError, builtins.ConnectionError):
    """The server could not be reached."""


class DnsError(ConnectError):
    """The host name could not be resolved."""


class TlsError(ConnectError):
    """The TLS handshake failed (untrusted certificate, wrong host name, ...)."""


class ProxyError(ConnectError):
    """The proxy refused, failed or could not be reached."""


class Timeout(HttpfleetError, builtins.TimeoutError):
    """The request's deadline passed; ``phase`` says where."""


class ConnectTimeout(Timeout):
    """The deadline passed while connecting."""


class HeadersTimeout(Timeout):
    """The deadline passed while waiting for the response head."""


class BodyTimeout(Timeout):
    """The deadline (or the read timeout) passed while the body was arriving."""


class TotalTimeout(Timeout):
    """The deadline had passed before the request could start."""


class RedirectError(HttpfleetError):
    """Too many redirects, or one that is not allowed."""


class BodyError(HttpfleetError):
    """The body could not be read or decoded."""


class BodyTooLargeError(BodyError):
    """The decoded body went past ``max_response_bytes``."""


class ProtocolError(HttpfleetError):
    """The server broke HTTP."""


class StatusError(HttpfleetError):
    """A 4xx or 5xx status, from ``raise_for_status()``."""


class CanceledError(HttpfleetError):
    """The request was canceled."""


class RateLimitedError(HttpfleetError):
    """A rate limit refused the request before it was sent."""


class RefusedError(HttpfleetError):
    """Every fleet member refused the request (circuit breakers open, retry budget spent)."""


_native.register_errors(
    {
        "Error": HttpfleetError,
        "Builder": BuilderError,
        "InvalidUrl": InvalidUrlError,
        "Unsupported": UnsupportedError,
        "Dns": DnsError,
        "Connect": ConnectError,
        "Tls": TlsError,
        "Proxy": ProxyError,
        "Timeout": Timeout,
        "Timeout.Connect": ConnectTimeout,
        "Timeout.Headers": HeadersTimeout,
        "Timeout.Body": BodyTimeout,
        "Timeout.Total": TotalTimeout,
        "Redirect": RedirectError,
        "Body": BodyError,
        "BodyTooLarge": BodyTooLargeError,
        "Protocol": ProtocolError,
        "Status": StatusError,
        "Canceled": CanceledError,
        "RateLimited": RateLimitedError,
        "Refused": RefusedError,
    }
)
