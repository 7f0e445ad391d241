"""A real HTTP server (on 127.0.0.1 unless told another local address), in a thread, that answers
from a script and records what it was sent, including how many requests it was handling at once."""

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# A hanging reply gives up after this long even if the test forgot to close the server.
HANG_LIMIT = 30.0


@dataclass
class Reply:
    """One scripted answer: a status, a JSON (or raw) body, headers, and how slow it is."""

    status: int = 200
    json: Any = None
    body: bytes | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    latency: float = 0.0
    hang: bool = False  # never answer: the client's read timeout must fire
    # Seconds between the body's bytes: every read gets data, so no read timeout ever fires and
    # only something that interrupts the reader (a time limit) ends the request early.
    trickle: float = 0.0


@dataclass
class Recorded:
    """A request the server received."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    client: str = ""  # the address the request came from
    received_at: float = field(default_factory=time.monotonic)

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


Script = Reply | Callable[[Recorded], Reply]


class ScriptedServer:
    """Answers each request with the next scripted reply, or `default(request)` when the script
    is empty. Start it with `start()` (or use it as a context manager); `close()` stops it."""

    def __init__(self, host: str = "127.0.0.1"):
        self.host = host
        self.requests: list[Recorded] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._script: deque[Script] = deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting ------------------------------------------------------------------------------

    def script(self, *replies: Script) -> "ScriptedServer":
        """Queue replies for the next requests, in order."""
        with self._lock:
            self._script.extend(replies)
        return self

    def default(self, request: Recorded) -> Reply:
        return Reply(404, json={"error": {"message": f"No route for {request.method} {request.path}"}})

    def route(self, request: Recorded) -> Reply:
        """The reply for a request: the next scripted one, else the default."""
        with self._lock:
            scripted = self._script.popleft() if self._script else None
        if scripted is None:
            return self.default(request)
        return scripted(request) if callable(scripted) else scripted

    # -- life cycle -----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "ScriptedServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server._handle(self)

            do_POST = do_PUT = do_DELETE = do_GET

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer((self.host, 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # -- serving --------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        request = Recorded(
            method=handler.command,
            path=handler.path,
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=body,
            client=handler.client_address[0],
        )
        with self._lock:
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        answering = True
        try:
            reply = self.route(request)
            if reply.hang:
                self._closing.wait(HANG_LIMIT)
                return
            if reply.latency:
                self._closing.wait(reply.latency)
            # No longer in flight once the answer starts: the client may send its next request
            # as soon as it has read this one, and must not be counted twice.
            self._done(request)
            answering = False
            self._write(handler, reply)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout); nothing to answer
        finally:
            if answering:
                self._done(request)

    def _done(self, request: Recorded) -> None:
        with self._lock:
            self.in_flight -= 1

    def _write(self, handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        if reply.body is not None:
            data = reply.body.encode() if isinstance(reply.body, str) else reply.body
            content_type = "text/plain; charset=utf-8"
        else:
            data = json.dumps(reply.json).encode()
            content_type = "application/json"
        handler.send_response(reply.status)
        headers = {"Content-Type": content_type, "Content-Length": str(len(data)), **reply.headers}
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        if not reply.trickle:
            handler.wfile.write(data)
            return
        for i in range(len(data)):
            handler.wfile.write(data[i : i + 1])
            handler.wfile.flush()
            if self._closing.wait(reply.trickle):
                return
