"""The roadmap's options and names: ``HttpClientType``, ``ClientSelectionStrategy`` and
``HttpClientOptions``, turned into httpfleet's configuration (the same meaning on every
backend; a backend that cannot honour an option refuses it with ``UnsupportedError``)."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple, Union


class HttpClientType(enum.Enum):
    """Which HTTP client serves the requests."""

    CURL = "curl"
    REQWEST = "reqwest"
    HYPER = "hyper"
    UREQ = "ureq"


class ClientSelectionStrategy(enum.Enum):
    """How a ``MultiClient`` spreads requests over its clients."""

    #: Always the first client.
    SINGLE = "single"
    #: The first client, the next when it fails (connection errors, 5xx).
    FAILOVER = "failover"
    #: Each client in turn.
    ROUND_ROBIN = "round_robin"
    #: A client at random.
    RANDOM = "random"
    #: The first client, and a second one when the first is slow (``hedge_delay``): the first
    #: answer wins.
    HEDGED = "hedged"
    #: The client that has been fastest lately.
    ADAPTIVE = "adaptive"


#: No deadline at all, as far as a request can tell (httpfleet's longest).
_NO_TIMEOUT = "8760h"


@dataclass
class HttpClientOptions:
    """Options of a client, the same on every client type.

    ``timeout`` is the whole request's deadline in seconds, body included (``None``: none).
    ``cert`` is a client certificate: one PEM file holding the certificate and its key, or a
    ``(cert, key)`` pair of PEM files. ``auth`` is a ``(user, password)`` pair for basic auth.
    ``http2`` lets HTTPS connections negotiate HTTP/2 (else HTTP/1.1 only). ``extras`` holds
    any other key of httpfleet's configuration (``{"pool": {"max_idle_per_host": 8}}``,
    ``{"tls": {"ca_file": "ca.pem"}}``, ...), applied last.
    """

    verify_ssl: bool = True
    cert: Optional[Union[str, Tuple[str, str]]] = None
    timeout: Optional[float] = 30.0
    max_redirects: int = 10
    http2: bool = False
    proxy: Optional[str] = None
    auth: Optional[Tuple[str, str]] = None
    headers: Optional[Mapping[str, str]] = None
    ssl_context: Any = None
    extras: Dict[str, Any] = field(default_factory=dict)

    def to_config(self, client_type: HttpClientType) -> Dict[str, Any]:
        """httpfleet's configuration for these options on ``client_type``."""
        if self.ssl_context is not None:
            raise TypeError(
                "ssl_context is not supported: httpfleet does its own TLS on every client type. "
                "Use verify_ssl, cert=(cert, key) and extras={'tls': {'ca_file': ..., "
                "'min_version': '1.3'}} instead"
            )
        tls: Dict[str, Any] = {"verify": self.verify_ssl}
        if isinstance(self.cert, str):
            tls["client_cert"] = self.cert
        elif self.cert is not None:
            tls["client_cert"], tls["client_key"] = self.cert
        config: Dict[str, Any] = {
            "backend": client_type.value,
            "timeout": _NO_TIMEOUT if self.timeout is None else f"{float(self.timeout)}s",
            "max_redirects": self.max_redirects,
            "http_version": "auto" if self.http2 else "http1",
            "tls": tls,
        }
        if self.proxy is not None:
            config["proxy"] = self.proxy
        if self.auth is not None:
            user, password = self.auth
            config["basic_auth"] = {"username": user, "password": password}
        if self.headers:
            config["default_headers"] = dict(self.headers)
        _merge(config, self.extras)
        return config

    def to_json(self, client_type: HttpClientType) -> str:
        """``to_config`` as JSON, as the native core reads it."""
        return json.dumps(self.to_config(client_type))


def _merge(into: Dict[str, Any], extra: Mapping[str, Any]) -> None:
    """Merges ``extra`` into ``into``, tables key by key."""
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
