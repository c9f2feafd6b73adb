"""A small HTTP load generator, the fallback when ``wrk`` is not installed.

Run as its own process (``python loadgen.py URL ...``); it prints one JSON
line with the counts. It forks ``--processes`` workers, and each worker
drives its share of the ``--connections`` with one ``selectors`` loop over
non-blocking sockets: a pre-built request, a minimal response parser
(status line, ``Content-Length``, ``Connection: close``), keep-alive when the
server allows it and a fresh connection when it does not (gunicorn's sync
workers close after every response, as wrk also sees).

Why this is not the bottleneck: no ``http.client`` or ``requests`` objects
and no thread switching per request, only a few syscalls and a bytes search,
some tens of microseconds per request against the hundreds a Flask app
under gunicorn spends. The harness measures the generator's own CPU time
and reports it next to the rate, so the claim is checked on every run.
"""

from __future__ import annotations

import argparse
import errno
import json
import multiprocessing
import selectors
import socket
import sys
import time
from urllib.parse import urlsplit

_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE


def build_request(url: str, method: str, headers: dict[str, str], body: bytes) -> bytes:
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method in {"POST", "PUT", "PATCH"}:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Conn:
    __slots__ = ("inbuf", "need", "pending", "sent_at", "sock")

    def __init__(self, sock: socket.socket, request: bytes) -> None:
        self.sock = sock
        self.pending = memoryview(request)
        self.inbuf = bytearray()
        self.need = -1  # total bytes of the current response, once the head is parsed
        self.sent_at = 0.0


def _response_done(conn: _Conn) -> tuple[bool, int, bool] | None:
    """``(complete, status, close)`` when a whole response is buffered, else None."""
    buf = conn.inbuf
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end]).lower()
    status = int(head[9:12])
    close = b"\r\nconnection: close" in head or head.startswith(b"http/1.0")
    marker = head.find(b"\r\ncontent-length:")
    if marker >= 0:
        stop = head.find(b"\r\n", marker + 2)
        length = int(head[marker + 17 : stop if stop >= 0 else None])
        if len(buf) >= end + 4 + length:
            return True, status, close
        return None
    if b"\r\ntransfer-encoding: chunked" in head:
        if buf.endswith(b"0\r\n\r\n"):
            return True, status, close
        return None
    return None  # no length: the body ends when the server closes


def worker(url: str, request: bytes, connections: int, start_at: float, stop_at: float) -> dict:
    """Drive ``connections`` sockets from ``start_at`` to ``stop_at`` (``time.time()``)."""
    parts = urlsplit(url)
    addr = (parts.hostname, parts.port or 80)
    sel = selectors.DefaultSelector()
    done = errors = bad_status = 0
    latencies: list[float] = []

    def open_conn() -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        code = sock.connect_ex(addr)
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            raise OSError(code, "connect failed")
        sel.register(sock, _WRITE, _Conn(sock, request))

    def reopen(conn: _Conn) -> None:
        sel.unregister(conn.sock)
        conn.sock.close()
        open_conn()

    while time.time() < start_at:
        time.sleep(0.001)
    for _ in range(connections):
        open_conn()

    while True:
        now = time.time()
        if now >= stop_at:
            break
        for key, events in sel.select(timeout=min(0.05, stop_at - now)):
            conn: _Conn = key.data
            try:
                if events & _WRITE:
                    if not conn.sent_at:
                        conn.sent_at = time.perf_counter()
                    sent = conn.sock.send(conn.pending)
                    conn.pending = conn.pending[sent:]
                    if not conn.pending:
                        sel.modify(conn.sock, _READ, conn)
                    continue
                data = conn.sock.recv(262144)
            except OSError:
                errors += 1
                reopen(conn)
                continue
            if not data:
                head_seen = conn.inbuf.find(b"\r\n\r\n") >= 0
                if conn.inbuf and head_seen and b"content-length:" not in conn.inbuf.lower():
                    result: tuple[bool, int, bool] | None = (True, int(conn.inbuf[9:12]), True)
                else:
                    errors += 1
                    reopen(conn)
                    continue
            else:
                conn.inbuf += data
                result = _response_done(conn)
                if result is None:
                    continue
            _, status, close = result
            if time.time() <= stop_at:
                done += 1
                latencies.append(time.perf_counter() - conn.sent_at)
                if not 200 <= status < 400:
                    bad_status += 1
            if close or not data:
                reopen(conn)
            else:
                conn.inbuf.clear()
                conn.pending = memoryview(request)
                conn.sent_at = 0.0
                sel.modify(conn.sock, _WRITE, conn)
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    sel.close()
    return {"requests": done, "errors": errors, "bad_status": bad_status, "latencies": latencies}


def run(
    url: str,
    *,
    seconds: float,
    connections: int,
    processes: int,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> dict:
    processes = max(1, min(processes, connections))
    request = build_request(url, method, headers or {}, body)
    shares = [connections // processes + (i < connections % processes) for i in range(processes)]
    start_at = time.time() + 0.3  # every worker forked and waiting before the clock starts
    stop_at = start_at + seconds
    method_name = "fork" if sys.platform.startswith("linux") else "spawn"
    with multiprocessing.get_context(method_name).Pool(processes) as pool:
        parts = pool.starmap(worker, [(url, request, n, start_at, stop_at) for n in shares])
    latencies = sorted(lat for part in parts for lat in part["latencies"])

    def pct(p: float) -> float | None:
        if not latencies:
            return None
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    total = sum(part["requests"] for part in parts)
    return {
        "requests": total,
        "seconds": seconds,
        "rps": total / seconds,
        "errors": sum(part["errors"] for part in parts),
        "bad_status": sum(part["bad_status"] for part in parts),
        "latency_p50_ms": pct(0.50),
        "latency_p99_ms": pct(0.99),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    parser.add_argument("--body-file", help="file whose bytes are sent as the request body")
    args = parser.parse_args(argv)
    headers = dict(h.split(":", 1) for h in args.header)
    headers = {name.strip(): value.strip() for name, value in headers.items()}
    body = b""
    if args.body_file:
        with open(args.body_file, "rb") as fh:
            body = fh.read()
    result = run(
        args.url,
        seconds=args.seconds,
        connections=args.connections,
        processes=args.processes,
        method=args.method.upper(),
        headers=headers,
        body=body,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
