"""``ledgersim gateway``: serve a network over HTTP/JSON, with the web console.

The gateway holds no member's key: callers sign requests, proposals and
transactions themselves (docs/gateway.md). It binds to 127.0.0.1 by default;
it speaks plain HTTP, so put it behind TLS before exposing it further.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sim.errors import InputError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "gateway", help="serve a network over HTTP/JSON, with docs and a web console"
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
    print(f"gateway for {args.network} on http://{args.host}:{args.port}/ (console, /docs)")
    uvicorn.run(create_app(service), host=args.host, port=args.port, log_level="warning")
    return 0
