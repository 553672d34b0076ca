"""Responses: ``HttpResponse`` (async), ``Response`` (blocking) and their ``Headers``."""

from __future__ import annotations

import json as _json
from typing import Any, AsyncIterator, Iterator, List, Mapping, Optional, Tuple

from . import _bridge, _native
from ._errors import StatusError


class Headers(Mapping[str, str]):
    """Response headers: names without case, every value of a name kept.

    ``headers["set-cookie"]`` is the first value (``KeyError`` when there is none);
    ``headers.get_list("set-cookie")`` gives them all; iteration yields each name once.
    """

    __slots__ = ("_lines",)

    def __init__(self, lines: List[Tuple[str, str]]) -> None:
        self._lines = lines

    def get_list(self, name: str) -> List[str]:
        """Every value of ``name``, in order."""
        key = name.lower()
        return [v for n, v in self._lines if n == key]

    def items_all(self) -> List[Tuple[str, str]]:
        """Every header line as ``(name, value)``, in order, names in lower case."""
        return list(self._lines)

    def __getitem__(self, name: str) -> str:
        key = name.lower()
        for n, v in self._lines:
            if n == key:
                return v
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        seen = set()
        for n, _ in self._lines:
            if n not in seen:
                seen.add(n)
                yield n

    def __len__(self) -> int:
        return len({n for n, _ in self._lines})

    def __repr__(self) -> str:
        return f"Headers({self._lines!r})"


class _Head:
    """What both kinds of response share: the head, and the body once read."""

    def __init__(self, native: _native.NativeResponse) -> None:
        self._native = native
        self._content: Optional[bytes] = native.content
        #: The status code.
        self.status_code: int = native.status
        #: The headers.
        self.headers = Headers(native.headers)
        #: The final URL, after redirects.
        self.url: str = native.url
        #: ``"HTTP/1.1"`` or ``"HTTP/2"``.
        self.http_version: str = native.http_version
        #: The backend that served it.
        self.backend: str = native.backend
        #: Attempts a fleet made for it (1 outside a fleet).
        self.attempts: int = native.attempts
        #: The fleet member that served it, if any.
        self.member: Optional[str] = native.member

    @property
    def content(self) -> bytes:
        """The body. A streamed response has it only once read to its end."""
        if self._content is None:
            raise RuntimeError("the body of a streamed response is not read yet")
        return self._content

    @property
    def is_success(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status_code < 300

    def raise_for_status(self) -> None:
        """Raises ``StatusError`` for a 4xx or 5xx status."""
        if self.status_code >= 400:
            err = StatusError(f"HTTP {self.status_code} from {self.url}")
            err.kind, err.status, err.backend, err.url = (
                "Status",
                self.status_code,
                self.backend,
                self.url,
            )
            raise err

    def _decode(self) -> str:
        charset = "utf-8"
        for part in self.headers.get("content-type", "").split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                charset = value.strip('"')
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} [{self.status_code}] {self.url}>"


class HttpResponse(_Head):
    """A response to an async request: the head at once, the body read whole by the
    request (``content``) or, from ``HttpClient.stream``, as it arrives (``aiter_bytes``)."""

    async def aread(self) -> bytes:
        """Reads the rest of the body and returns it whole."""
        if self._content is None:
            self._content = b"".join([piece async for piece in self._pieces()])
        return self._content

    async def text(self) -> str:
        """The body as text, in its declared charset (UTF-8 when it names none)."""
        await self.aread()
        return self._decode()

    async def json(self) -> Any:
        """The body parsed as JSON."""
        return _json.loads(await self.aread())

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body's pieces as they arrive (the whole body at once when already read)."""
        if self._content is not None:
            if self._content:
                yield self._content
            return
        async for piece in self._pieces():
            yield piece

    async def _pieces(self) -> AsyncIterator[bytes]:
        # What the core has read ahead is taken at once; the loop waits only when it has none.
        while True:
            piece = self._native.take_ready()
            if piece == b"":
                piece = await _bridge.run(self._native.next_chunk)
            if piece is None:
                return
            if piece:
                yield piece

    async def aclose(self) -> None:
        """Drops the rest of the body (its connection is closed, not reused)."""
        self._native.close()


class Response(_Head):
    """A response to a blocking request (``Client``)."""

    def read(self) -> bytes:
        """Reads the rest of the body and returns it whole."""
        if self._content is None:
            self._content = b"".join(self._pieces())
        return self._content

    def text(self) -> str:
        """The body as text, in its declared charset (UTF-8 when it names none)."""
        self.read()
        return self._decode()

    def json(self) -> Any:
        """The body parsed as JSON."""
        return _json.loads(self.read())

    def iter_bytes(self) -> Iterator[bytes]:
        """The body's pieces as they arrive (the whole body at once when already read)."""
        if self._content is not None:
            if self._content:
                yield self._content
            return
        yield from self._pieces()

    def _pieces(self) -> Iterator[bytes]:
        while True:
            piece = self._native.next_chunk_blocking()
            if piece is None:
                return
            yield piece

    def close(self) -> None:
        """Drops the rest of the body (its connection is closed, not reused)."""
        self._native.close()
