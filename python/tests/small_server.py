"""A keep-alive HTTP/1.1 server answering every GET with a small JSON body (`/big/N`: N MiB;
`/half/N`: half of N KiB, then a stall), run as its own process by the tests (so that its threads and sockets are not counted as theirs). Prints its
URL, then serves until killed."""

import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Small(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path.startswith("/big/"):
            return self.big(int(self.path[len("/big/") :]))
        if self.path.startswith("/half/"):
            return self.half(int(self.path[len("/half/") :]))
        body = b'{"ok":true}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def big(self, mib: int) -> None:
        """`mib` MiB of zeros, written as fast as the client takes them."""
        self.send_response(200)
        self.send_header("content-length", str(mib << 20))
        self.end_headers()
        block = bytes(64 << 10)
        try:
            for _ in range(mib * 16):
                self.wfile.write(block)
        except OSError:
            pass

    def half(self, kib: int) -> None:
        """Declares `kib` KiB, sends half of them, then stalls (and closes after 10 s)."""
        self.send_response(200)
        self.send_header("content-length", str(kib << 10))
        self.end_headers()
        self.wfile.write(bytes(kib << 9))
        self.wfile.flush()
        time.sleep(10)
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    # socketserver's backlog of 5 drops a burst's connections (retried a second later).
    request_queue_size = 128
    daemon_threads = True


if __name__ == "__main__":
    server = Server(("127.0.0.1", 0), Small)
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()
