"""``ledgersim gateway``: serve a network over HTTP/JSON, with the web console.

The gateway holds no member's key: callers sign requests, proposals and
transactions themselves (docs/gateway.md). It binds to 127.0.0.1 by default;
it speaks plain HTTP, so put it behind TLS before exposing it further.
"""

from __future__ import annotations

import argparse
import socket
from pathlib import Path
from typing import Any

from sim.errors import InputError

MAX_CONNECTIONS = 64
"""Connections served at once; past it uvicorn answers 503 rather than queueing more."""
KEEP_ALIVE_S = 5
"""An idle kept-alive connection is closed after this many seconds."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "gateway",
        help="serve a network (simulated or live) over HTTP/JSON, with docs and a web console",
    )
    parser.add_argument("--network", type=Path, required=True, metavar="DIR")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port must be 0..65535, got {args.port}")
    try:
        import uvicorn

        from sim.http.app import create_app
        from sim.http.service import NetworkService
    except ImportError as exc:
        raise InputError(
            f"the gateway needs its extra: pip install 'ledgersim[gateway]' ({exc})"
        ) from None
    service = NetworkService(args.network)
    listener = _listen(args.host, args.port)
    port = listener.getsockname()[1]
    print(f"gateway for {args.network} on http://{args.host}:{port}/ (console, /docs)")
    # Bounded connections and idle keep-alives: slow or half-sent requests cannot pile up.
    config = uvicorn.Config(
        create_app(service),
        log_level="warning",
        limit_concurrency=MAX_CONNECTIONS,
        timeout_keep_alive=KEEP_ALIVE_S,
    )
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[listener])
    finally:
        service.close()  # a live network's broker connection
    return 0


def _listen(host: str, port: int) -> socket.socket:
    """Bind before serving, so a port in use or an unknown host is one line and exit 2
    (uvicorn would log its own error and exit 3)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InputError(f"--host/--port: cannot listen on {host}:{port}: {reason}") from None
