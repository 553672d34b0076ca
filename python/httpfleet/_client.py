"""The roadmap's clients: ``HttpClient`` (async), ``MultiClient`` (a fleet of them), the
``HttpClientFactory``, and ``Client``, the same methods without asyncio."""

from __future__ import annotations

import contextlib
import json as _json
from typing import (
    Any,
    AsyncIterator,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)
from urllib.parse import urlencode

from . import _bridge, _native
from ._options import ClientSelectionStrategy, HttpClientOptions, HttpClientType
from ._response import HttpResponse, Response

Params = Optional[Union[Mapping[str, Any], Sequence[Tuple[str, Any]]]]
Headers = Optional[Mapping[str, str]]
Data = Optional[Union[Mapping[str, Any], Sequence[Tuple[str, Any]], str, bytes]]

#: The client type when none is named.
DEFAULT_CLIENT_TYPE = HttpClientType.HYPER


def _pairs(items: Params) -> List[Tuple[str, str]]:
    if not items:
        return []
    pairs = items.items() if isinstance(items, Mapping) else items
    out: List[Tuple[str, str]] = []
    for k, v in pairs:
        if isinstance(v, (list, tuple)):
            out.extend((str(k), _text(x)) for x in v)
        else:
            out.append((str(k), _text(v)))
    return out


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _parts(
    *,
    params: Params = None,
    headers: Headers = None,
    data: Data = None,
    json: Any = None,
    content: Optional[bytes] = None,
    timeout: Optional[float] = None,
    follow_redirects: Optional[bool] = None,
    max_redirects: Optional[int] = None,
) -> Dict[str, Any]:
    """The native request's parts: query pairs, headers, the body and its type, options."""
    header_list = [(k, v) for k, v in (headers or {}).items()]
    named = {k.lower() for k, _ in header_list}
    body: Optional[bytes] = content
    kind = None
    if json is not None:
        body, kind = _json.dumps(json, separators=(",", ":")).encode(), "application/json"
    elif isinstance(data, (bytes, bytearray, memoryview)):
        body = bytes(data)
    elif isinstance(data, str):
        body = data.encode()
    elif data is not None:
        body = urlencode(_pairs(data)).encode()
        kind = "application/x-www-form-urlencoded"
    if kind is not None and "content-type" not in named:
        header_list.append(("content-type", kind))
    return {
        "headers": header_list,
        "params": _pairs(params),
        "body": body,
        "timeout": timeout,
        "follow_redirects": follow_redirects,
        "max_redirects": max_redirects,
    }


class HttpClient:
    """An async HTTP client on one client type, or a fleet of them (``MultiClient``).

    Use it as ``async with``; requests take ``params``, ``headers``, ``timeout`` (seconds, the
    whole request body included), ``follow_redirects`` and, for bodies, ``data`` (a form, text or
    bytes) or ``json``. A failed request raises a subclass of ``HttpfleetError``.
    """

    def __init__(
        self,
        client_type: Optional[HttpClientType] = None,
        options: Optional[HttpClientOptions] = None,
    ) -> None:
        self.client_type = client_type or DEFAULT_CLIENT_TYPE
        self.options = options or HttpClientOptions()
        self._native = _native.NativeClient(self.options.to_json(self.client_type), False)
        self._closed = False

    async def __aenter__(self) -> "HttpClient":
        """The client itself."""
        return self

    async def __aexit__(self, *exc: Any) -> None:
        """Closes the client."""
        await self.close()

    async def close(self) -> None:
        """Closes the client: later requests raise ``RuntimeError``."""
        self._closed = True

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Params = None,
        headers: Headers = None,
        data: Data = None,
        json: Any = None,
        content: Optional[bytes] = None,
        timeout: Optional[float] = None,
        follow_redirects: Optional[bool] = None,
        max_redirects: Optional[int] = None,
    ) -> HttpResponse:
        """Sends a request and reads its body whole."""
        if self._closed:
            raise RuntimeError("the client is closed")
        parts = _parts(
            params=params,
            headers=headers,
            data=data,
            json=json,
            content=content,
            timeout=timeout,
            follow_redirects=follow_redirects,
            max_redirects=max_redirects,
        )
        native = await _bridge.run(
            lambda done, future: self._native.send(method, url, parts, False, done, future)
        )
        return HttpResponse(native)

    @contextlib.asynccontextmanager
    async def stream(
        self, method: str, url: str, **kwargs: Any
    ) -> AsyncIterator[HttpResponse]:
        """Sends a request and yields its response once the head has arrived; read the body
        with ``aiter_bytes()`` or ``aread()``. What is left unread is dropped on exit."""
        if self._closed:
            raise RuntimeError("the client is closed")
        parts = _parts(**kwargs)
        resp = HttpResponse(
            await _bridge.run(
                lambda done, future: self._native.send(method, url, parts, True, done, future)
            )
        )
        try:
            yield resp
        finally:
            await resp.aclose()

    async def get(self, url: str, **kwargs: Any) -> HttpResponse:
        """A GET request (see ``request``)."""
        return await self.request("GET", url, **kwargs)

    async def head(self, url: str, **kwargs: Any) -> HttpResponse:
        """A HEAD request (see ``request``)."""
        return await self.request("HEAD", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> HttpResponse:
        """A DELETE request (see ``request``)."""
        return await self.request("DELETE", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> HttpResponse:
        """A POST request (see ``request``)."""
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> HttpResponse:
        """A PUT request (see ``request``)."""
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> HttpResponse:
        """A PATCH request (see ``request``)."""
        return await self.request("PATCH", url, **kwargs)


def _fleet(
    client_types: Sequence[HttpClientType],
    strategy: ClientSelectionStrategy,
    options: Optional[HttpClientOptions],
    options_by_type: Optional[Mapping[HttpClientType, HttpClientOptions]],
    blocking: bool,
    hedge_delay: Optional[float],
) -> "_native.NativeClient":
    if not client_types:
        raise ValueError("a MultiClient needs at least one client type")
    policy = options or HttpClientOptions()
    members = [
        (options_by_type or {}).get(t, policy).to_json(t) for t in client_types
    ]
    return _native.NativeClient.fleet(
        policy.to_json(client_types[0]), members, strategy.value, blocking, hedge_delay
    )


class MultiClient(HttpClient):
    """Several clients as one: requests spread by ``strategy`` (``FAILOVER`` by default),
    each client type with its own options from ``options_by_type`` (else ``options``).
    ``hedge_delay``: how long ``HEDGED`` waits before asking a second client, in seconds."""

    def __init__(
        self,
        client_types: Sequence[HttpClientType],
        strategy: ClientSelectionStrategy = ClientSelectionStrategy.FAILOVER,
        options_by_type: Optional[Mapping[HttpClientType, HttpClientOptions]] = None,
        *,
        options: Optional[HttpClientOptions] = None,
        hedge_delay: Optional[float] = None,
    ) -> None:
        self.client_types = list(client_types)
        self.strategy = strategy
        self.client_type = self.client_types[0] if self.client_types else DEFAULT_CLIENT_TYPE
        self.options = options or HttpClientOptions()
        self._native = _fleet(
            self.client_types, strategy, options, options_by_type, False, hedge_delay
        )
        self._closed = False


class HttpClientFactory:
    """Makes clients by type."""

    @staticmethod
    def create_client(
        client_type: Optional[HttpClientType] = None,
        options: Optional[HttpClientOptions] = None,
    ) -> HttpClient:
        """A client of ``client_type`` (hyper when ``None``) with ``options``."""
        return HttpClient(client_type, options)

    @staticmethod
    def create_multi_client(
        client_types: Sequence[HttpClientType],
        strategy: ClientSelectionStrategy = ClientSelectionStrategy.FAILOVER,
        options_by_type: Optional[Mapping[HttpClientType, HttpClientOptions]] = None,
    ) -> MultiClient:
        """A ``MultiClient`` over ``client_types``."""
        return MultiClient(client_types, strategy, options_by_type)


class Client:
    """``HttpClient``'s methods without asyncio: each call blocks (the GIL released while it
    waits). ``client_types`` of several makes it a fleet, as ``MultiClient``."""

    def __init__(
        self,
        client_type: Optional[HttpClientType] = None,
        options: Optional[HttpClientOptions] = None,
        *,
        client_types: Optional[Sequence[HttpClientType]] = None,
        strategy: ClientSelectionStrategy = ClientSelectionStrategy.FAILOVER,
        options_by_type: Optional[Mapping[HttpClientType, HttpClientOptions]] = None,
        hedge_delay: Optional[float] = None,
    ) -> None:
        self.client_type = client_type or DEFAULT_CLIENT_TYPE
        self.options = options or HttpClientOptions()
        if client_types:
            self._native = _fleet(
                list(client_types), strategy, options, options_by_type, True, hedge_delay
            )
        else:
            self._native = _native.NativeClient(self.options.to_json(self.client_type), True)
        self._closed = False

    def __enter__(self) -> "Client":
        """The client itself."""
        return self

    def __exit__(self, *exc: Any) -> None:
        """Closes the client."""
        self.close()

    def close(self) -> None:
        """Closes the client: later requests raise ``RuntimeError``."""
        self._closed = True

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Params = None,
        headers: Headers = None,
        data: Data = None,
        json: Any = None,
        content: Optional[bytes] = None,
        timeout: Optional[float] = None,
        follow_redirects: Optional[bool] = None,
        max_redirects: Optional[int] = None,
    ) -> Response:
        """Sends a request and reads its body whole."""
        if self._closed:
            raise RuntimeError("the client is closed")
        parts = _parts(
            params=params,
            headers=headers,
            data=data,
            json=json,
            content=content,
            timeout=timeout,
            follow_redirects=follow_redirects,
            max_redirects=max_redirects,
        )
        return Response(self._native.send_blocking(method, url, parts, False))

    @contextlib.contextmanager
    def stream(self, method: str, url: str, **kwargs: Any) -> Iterator[Response]:
        """Sends a request and yields its response once the head has arrived; read the body
        with ``iter_bytes()`` or ``read()``. What is left unread is dropped on exit."""
        if self._closed:
            raise RuntimeError("the client is closed")
        parts = _parts(**kwargs)
        resp = Response(self._native.send_blocking(method, url, parts, True))
        try:
            yield resp
        finally:
            resp.close()

    def get(self, url: str, **kwargs: Any) -> Response:
        """A GET request (see ``request``)."""
        return self.request("GET", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> Response:
        """A HEAD request (see ``request``)."""
        return self.request("HEAD", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Response:
        """A DELETE request (see ``request``)."""
        return self.request("DELETE", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Response:
        """A POST request (see ``request``)."""
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> Response:
        """A PUT request (see ``request``)."""
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> Response:
        """A PATCH request (see ``request``)."""
        return self.request("PATCH", url, **kwargs)
