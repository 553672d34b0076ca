"""httpfleet for Python: one HTTP client protocol over libcurl, reqwest, hyper and ureq (Rust),
and fleets of them that fail over, hedge and break circuits, with deadlines that hold.

    import asyncio, httpfleet

    async def main():
        async with httpfleet.HttpClientFactory.create_client(httpfleet.HttpClientType.CURL) as c:
            r = await c.get("https://example.com/", params={"q": "1"}, timeout=5)
            print(r.status_code, await r.json())

    asyncio.run(main())
"""

from ._errors import (
    BodyError,
    BodyTimeout,
    BodyTooLargeError,
    BuilderError,
    CanceledError,
    ConnectError,
    ConnectTimeout,
    DnsError,
    HeadersTimeout,
    HttpfleetError,
    InvalidUrlError,
    ProtocolError,
    ProxyError,
    RateLimitedError,
    RedirectError,
    RefusedError,
    StatusError,
    Timeout,
    TlsError,
    TotalTimeout,
    UnsupportedError,
)
from ._client import Client, HttpClient, HttpClientFactory, MultiClient
from ._native import __version__
from ._options import ClientSelectionStrategy, HttpClientOptions, HttpClientType
from ._response import Headers, HttpResponse, Response

__all__ = [
    "BodyError",
    "BodyTimeout",
    "BodyTooLargeError",
    "BuilderError",
    "CanceledError",
    "Client",
    "ClientSelectionStrategy",
    "ConnectError",
    "ConnectTimeout",
    "DnsError",
    "Headers",
    "HeadersTimeout",
    "HttpClient",
    "HttpClientFactory",
    "HttpClientOptions",
    "HttpClientType",
    "HttpResponse",
    "HttpfleetError",
    "InvalidUrlError",
    "MultiClient",
    "ProtocolError",
    "ProxyError",
    "RateLimitedError",
    "RedirectError",
    "RefusedError",
    "Response",
    "StatusError",
    "Timeout",
    "TlsError",
    "TotalTimeout",
    "UnsupportedError",
    "__version__",
]
