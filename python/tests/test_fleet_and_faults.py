"""The roadmap's failover MultiClient with one member down, and the faults that made the
roadmap: a stalled server, cancellation, and many requests over many event loops."""

from __future__ import annotations

import asyncio
import builtins
import gc
import os
import threading
import time
from typing import Dict

import pytest

import httpfleet
from httpfleet import (
    Client,
    ClientSelectionStrategy,
    HttpClientOptions,
    HttpClientType,
    MultiClient,
)

ALL_TYPES = list(httpfleet.HttpClientType)

#: A proxy nobody listens on: every request of a member behind it fails to connect.
DOWN = HttpClientOptions(proxy="http://127.0.0.1:9")


@pytest.mark.parametrize("first", ALL_TYPES, ids=lambda t: t.name)
async def test_failover_serves_from_the_next_member_when_one_is_down(first, httpbin):
    second = HttpClientType.HYPER if first != HttpClientType.HYPER else HttpClientType.CURL
    fleet = MultiClient(
        [first, second],
        strategy=ClientSelectionStrategy.FAILOVER,
        options_by_type={first: DOWN},
    )
    async with fleet:
        resp = await fleet.get(f"{httpbin}/json")
        assert resp.status_code == 200
        assert "slideshow" in await resp.json()
        assert resp.backend == second.value
        assert resp.attempts == 2


def test_a_fleet_whose_members_are_all_down_says_what_each_attempt_met():
    with Client(
        client_types=[HttpClientType.CURL, HttpClientType.UREQ],
        options_by_type={t: DOWN for t in (HttpClientType.CURL, HttpClientType.UREQ)},
    ) as fleet:
        with pytest.raises(httpfleet.HttpfleetError) as err:
            fleet.get("http://127.0.0.1:1/")
    attempts = err.value.attempts
    assert [a["member"] for a in attempts[:2]] == ["curl", "ureq"], attempts
    assert all(a["outcome"] == "proxy error" for a in attempts), attempts
    assert err.value.kind == "Proxy"


@pytest.mark.parametrize("client_type", ALL_TYPES, ids=lambda t: t.name)
async def test_a_stalled_server_ends_in_a_timeout_inside_the_deadline(client_type, stall):
    async with httpfleet.HttpClient(client_type) as client:
        started = time.monotonic()
        with pytest.raises(httpfleet.HeadersTimeout) as err:
            await client.get(stall.url, timeout=0.5)
        took = time.monotonic() - started
    assert 0.45 < took < 1.5, took
    assert isinstance(err.value, builtins.TimeoutError)
    assert (err.value.kind, err.value.phase, err.value.backend) == (
        "Timeout",
        "Headers",
        client_type.value,
    )
    with Client(client_type) as sync:
        started = time.monotonic()
        with pytest.raises(httpfleet.Timeout):
            sync.get(stall.url, timeout=0.5)
        assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("client_type", ALL_TYPES, ids=lambda t: t.name)
async def test_cancelling_the_task_cancels_the_request(client_type, stall):
    # ureq cannot be interrupted mid-read: its request ends at its own deadline.
    deadline = 2.0 if client_type == HttpClientType.UREQ else 30.0
    async with httpfleet.HttpClient(client_type) as client:
        task = asyncio.ensure_future(client.get(stall.url, timeout=deadline))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # The request's connection is closed, not left waiting for a 30 s deadline.
    assert await asyncio.to_thread(stall.closed.acquire, timeout=3)


@pytest.mark.parametrize("client_type", ALL_TYPES, ids=lambda t: t.name)
def test_the_end_of_its_event_loop_drops_a_request_still_running(client_type, stall):
    # ureq cannot be interrupted mid-read: its request ends at its own deadline.
    deadline = 2.0 if client_type == HttpClientType.UREQ else 30.0
    loop = asyncio.new_event_loop()

    async def start() -> "asyncio.Task[httpfleet.HttpResponse]":
        client = httpfleet.HttpClient(client_type)
        task = asyncio.ensure_future(client.get(stall.url, timeout=deadline))
        await asyncio.sleep(0.3)
        return task

    task = loop.run_until_complete(start())
    # Neither awaited nor cancelled: the loop simply ends, and is collected.
    loop.close()
    del task, loop
    gc.collect()
    # The request's connection is closed, not left waiting for a 30 s deadline.
    assert stall.closed.acquire(timeout=3)


async def test_a_pending_request_blocks_neither_the_loop_nor_other_threads(stall):
    async with httpfleet.HttpClient(HttpClientType.CURL) as client:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.ensure_future(tick())
        with pytest.raises(httpfleet.Timeout):
            await client.get(stall.url, timeout=0.5)
        ticker.cancel()
    assert ticks >= 25, ticks
    # A blocking request waits without the GIL: this thread keeps counting meanwhile.
    counted = 0
    done = threading.Event()

    def wait() -> None:
        with Client(HttpClientType.UREQ) as sync, pytest.raises(httpfleet.Timeout):
            sync.get(stall.url, timeout=0.5)
        done.set()

    threading.Thread(target=wait).start()
    while not done.is_set():
        counted += 1
    assert counted > 100_000, counted


def _resident_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize("client_type", ALL_TYPES, ids=lambda t: t.name)
async def test_a_slow_reader_of_a_stream_holds_memory_to_the_read_ahead_window(
    client_type, small_server
):
    options = HttpClientOptions(timeout=60, extras={"max_response_bytes": 1 << 30})
    async with httpfleet.HttpClient(client_type, options) as client:
        async with client.stream("GET", f"{small_server}/big/256") as resp:
            pieces = resp.aiter_bytes()
            read = len(await pieces.__anext__())
            before = _resident_kib()
            await asyncio.sleep(1.0)  # 256 MiB would have arrived by now, unheld
            grown = _resident_kib() - before
            async for piece in pieces:
                read += len(piece)
    assert read == 256 << 20
    assert grown < 16 << 10, f"resident memory grew {grown} KiB while the reader slept"


@pytest.mark.parametrize("client_type", ALL_TYPES, ids=lambda t: t.name)
async def test_a_body_that_stalls_midway_gives_its_pieces_then_a_body_timeout(
    client_type, small_server
):
    async with httpfleet.HttpClient(client_type) as client:
        read = 0
        started = time.monotonic()
        with pytest.raises(httpfleet.BodyTimeout) as err:
            async with client.stream("GET", f"{small_server}/half/256", timeout=1.0) as resp:
                async for piece in resp.aiter_bytes():
                    read += len(piece)
        took = time.monotonic() - started
    assert read == 128 << 10
    assert 0.9 < took < 2.5, took
    assert isinstance(err.value, builtins.TimeoutError)
    assert err.value.backend == client_type.value


def _descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def _threads() -> Dict[str, int]:
    """The process's threads, native ones included, by name."""
    names: Dict[str, int] = {}
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/comm") as f:
            name = f.read().strip()
        names[name] = names.get(name, 0) + 1
    return names


def test_ten_thousand_requests_over_many_event_loops_leave_nothing_behind(small_server):
    clients = {t: httpfleet.HttpClient(t) for t in ALL_TYPES}

    async def burst(client: httpfleet.HttpClient, n: int) -> None:
        results = await asyncio.gather(*(client.get(small_server) for _ in range(n)))
        assert all(r.status_code == 200 for r in results)
        assert asyncio.all_tasks() == {asyncio.current_task()}

    def cycles(count: int) -> None:
        for _ in range(count):
            for client in clients.values():
                asyncio.run(burst(client, 25))

    # Warmed up: tokio's runtime, the transfer threads a burst of 25 needs (curl, ureq) and
    # every connection pool at their steady size.
    cycles(6)
    before = _threads(), _descriptors()
    cycles(94)  # 94 loops x 4 clients x 25 = 9,400 requests, 10,000 in all
    after = _threads(), _descriptors()
    # Threads (tokio's, the transfer threads) and pooled connections stay as they were: a
    # connection may be replaced, a thread come and go, never one per loop or per request.
    assert sum(after[0].values()) <= sum(before[0].values()) + 2, (before, after)
    assert after[1] <= before[1] + 4, (before, after)
