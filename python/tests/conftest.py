"""Servers on loopback for the tests: httpbin (started by scripts/interop.sh, its URL in
HTTPFLEET_HTTPBIN_URL), a small keep-alive server for request loops (small_server.py, its own
process), and a server that accepts connections and never answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from typing import Iterator, List

import pytest


@pytest.fixture(scope="session")
def httpbin() -> str:
    url = os.environ.get("HTTPFLEET_HTTPBIN_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("HTTPFLEET_HTTPBIN_URL is not set: the interop servers are not running")
        pytest.skip("HTTPFLEET_HTTPBIN_URL is not set (run scripts/python.sh)")
    return url.rstrip("/")


@pytest.fixture(scope="session")
def small_server() -> Iterator[str]:
    """tests/small_server.py in its own process: its URL."""
    script = os.path.join(os.path.dirname(__file__), "small_server.py")
    proc = subprocess.Popen([sys.executable, script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    yield url
    proc.kill()
    proc.wait()


class Stall:
    """Accepts connections, reads what comes, never answers; counts the connections its
    clients closed."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.closed = threading.Semaphore(0)
        self._conns: List[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    def _drain(self, conn: socket.socket) -> None:
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass
        self.closed.release()

    def close(self) -> None:
        self.sock.close()
        for c in self._conns:
            c.close()


@pytest.fixture()
def stall() -> Iterator[Stall]:
    s = Stall()
    yield s
    s.close()
