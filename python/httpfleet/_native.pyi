"""The native core (Rust): used by the package's Python modules, not by applications."""

from typing import Any, Dict, List, Optional, Tuple

__version__: str

def register_errors(classes: Dict[str, type]) -> None: ...

class NativeResponse:
    status: int
    url: str
    http_version: str
    backend: str
    attempts: int
    member: Optional[str]
    headers: List[Tuple[str, str]]
    @property
    def content(self) -> Optional[bytes]: ...
    def take_ready(self) -> Optional[bytes]: ...
    def next_chunk(self, completions: "Completions", future: Any) -> "Running": ...
    def next_chunk_blocking(self) -> Optional[bytes]: ...
    def close(self) -> None: ...

class NativeClient:
    def __init__(self, config_json: str, blocking: bool) -> None: ...
    @staticmethod
    def fleet(
        config_json: str,
        members: List[str],
        strategy: str,
        blocking: bool,
        hedge_delay: Optional[float] = None,
    ) -> "NativeClient": ...
    def send(
        self,
        method: str,
        url: str,
        parts: Dict[str, Any],
        stream: bool,
        completions: "Completions",
        future: Any,
    ) -> "Running": ...
    def send_blocking(
        self, method: str, url: str, parts: Dict[str, Any], stream: bool
    ) -> NativeResponse: ...

class Completions:
    """One event loop's finished operations, and the socket that wakes it."""
    def __init__(self) -> None: ...
    def fileno(self) -> int: ...
    def drain(self) -> None: ...

class Running:
    """A native operation in progress."""
    def abort(self) -> None: ...
