"""The roadmap's ``benchmark_clients``: httpfleet on each client type against httpx, aiohttp and
curl_cffi, on a loopback server, interleaved.

Rows: a small GET and a 1 MB body read as a stream, each one request at a time and with 32 in
flight. Each round runs every client once per row, in a new random order, each sample on a new
client (new connections) after an untimed warm-up request per connection; a row's figure is
the median over rounds of the time per request, and its ratio is to the fastest of httpx,
aiohttp and curl_cffi. ``hyper (A/A)`` is the hyper client measured twice, as a control of the
noise between two identical runs.

    python bench/benchmark_clients.py --url http://127.0.0.1:PORT [--rounds 15]

(``httpfleet serve`` prints such a URL: its ``/small`` and ``/bytes1m`` are what is fetched.)
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from typing import Any, Awaitable, Callable, Dict, List, Tuple

import aiohttp
import httpx
from curl_cffi.requests import AsyncSession

import httpfleet

Fetch = Callable[[str, bool], Awaitable[int]]


def _httpx_style(client: Any) -> Fetch:
    """The fetch of a client with httpx's API (`get`, `stream`, `aiter_bytes`): httpx and
    httpfleet, which keeps the roadmap's (httpx-like) protocol."""

    async def fetch(url: str, stream: bool) -> int:
        if not stream:
            return len((await client.get(url)).content)
        n = 0
        async with client.stream("GET", url) as r:
            async for piece in r.aiter_bytes():
                n += len(piece)
        return n

    return fetch


async def httpfleet_client(kind: httpfleet.HttpClientType) -> Tuple[Fetch, Callable[[], Awaitable[None]]]:
    client = httpfleet.HttpClient(kind, httpfleet.HttpClientOptions(timeout=30))
    return _httpx_style(client), client.close


async def httpx_client() -> Tuple[Fetch, Callable[[], Awaitable[None]]]:
    client = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=64))
    return _httpx_style(client), client.aclose


async def aiohttp_client() -> Tuple[Fetch, Callable[[], Awaitable[None]]]:
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))

    async def fetch(url: str, stream: bool) -> int:
        async with session.get(url) as r:
            if not stream:
                return len(await r.read())
            n = 0
            async for piece in r.content.iter_chunked(65536):
                n += len(piece)
            return n

    return fetch, session.close


async def curl_cffi_client() -> Tuple[Fetch, Callable[[], Awaitable[None]]]:
    session = AsyncSession(max_clients=64)

    async def fetch(url: str, stream: bool) -> int:
        if not stream:
            return len((await session.get(url)).content)
        n = 0
        r = await session.get(url, stream=True)
        async for piece in r.aiter_content():
            n += len(piece)
        await r.aclose()
        return n

    return fetch, session.close


ROWS = [
    ("small GET, sequential", "/small", False, 1),
    ("small GET, 32 in flight", "/small", False, 32),
    ("1 MB streamed, sequential", "/bytes1m", True, 1),
    ("1 MB streamed, 32 in flight", "/bytes1m", True, 32),
]


async def run_once(fetch: Fetch, url: str, stream: bool, inflight: int, requests: int) -> float:
    """Seconds per request for ``requests`` requests, ``inflight`` at a time."""
    started = time.perf_counter()
    if inflight == 1:
        for _ in range(requests):
            await fetch(url, stream)
    else:
        sem = asyncio.Semaphore(inflight)

        async def one() -> None:
            async with sem:
                await fetch(url, stream)

        await asyncio.gather(*(one() for _ in range(requests)))
    return (time.perf_counter() - started) / requests


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--small", type=int, default=400, help="requests per small-GET sample")
    ap.add_argument("--large", type=int, default=40, help="requests per 1 MB sample")
    args = ap.parse_args()
    base = args.url.rstrip("/")
    makers: Dict[str, Callable[[], Awaitable[Tuple[Fetch, Callable[[], Awaitable[None]]]]]] = {
        f"httpfleet {t.value}": (lambda t=t: httpfleet_client(t)) for t in httpfleet.HttpClientType
    }
    makers["hyper (A/A)"] = lambda: httpfleet_client(httpfleet.HttpClientType.HYPER)
    makers["httpx"] = httpx_client
    makers["aiohttp"] = aiohttp_client
    makers["curl_cffi"] = curl_cffi_client
    # Every sample on a new client, so on new connections: on a loopback connection the rate of
    # a large body can stay at one of two levels (about 3x apart) for the connection's life,
    # whichever client holds it. A new client per sample makes that a draw of each sample,
    # which the median over rounds sets aside, not a bias of a client's whole row.
    samples: Dict[Tuple[str, str], List[float]] = {}
    for _ in range(args.rounds):
        for row, path, stream, inflight in ROWS:
            order = list(makers.items())
            random.shuffle(order)
            n = args.large if stream else args.small
            for name, make in order:
                fetch, close = await make()
                # Warm-up, not timed: the client's connections.
                await run_once(fetch, base + path, stream, inflight, inflight)
                t = await run_once(fetch, base + path, stream, inflight, n)
                await close()
                samples.setdefault((row, name), []).append(t)
    clients = list(makers)
    others = ("httpx", "aiohttp", "curl_cffi")
    print(f"| row | {' | '.join(clients)} |")
    print(f"|---|{'---|' * len(clients)}")
    for row, *_ in ROWS:
        med = {name: statistics.median(samples[(row, name)]) for name in clients}
        best = min(med[o] for o in others)
        cells = [f"{med[n] * 1e6:.0f} µs ({med[n] / best:.2f})" for n in clients]
        print(f"| {row} | {' | '.join(cells)} |")


if __name__ == "__main__":
    asyncio.run(main())
