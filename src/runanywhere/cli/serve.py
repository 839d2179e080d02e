"""``runanywhere serve``: the OpenAI-compatible HTTP server on this machine (127.0.0.1 by default)."""

from __future__ import annotations

import argparse
import os


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="serve the OpenAI-compatible API (chat, embeddings, audio, models)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; any other "
                                                          "needs an API key)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--api-key", default=os.environ.get("RUNANYWHERE_API_KEY"),
                       help="require 'Authorization: Bearer KEY' (default: $RUNANYWHERE_API_KEY)")
    serve.add_argument("--models", nargs="+", default=[], metavar="ID",
                       help="catalog models to load at start (others load on their first request)")
    serve.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                       help="another Host header name to accept on loopback")
    serve.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                       help="another origin browsers may call from (default: same origin only)")
    serve.add_argument("--allow-remote-images", action="store_true",
                       help="fetch https image URLs in chat requests (public addresses only; default: data: URLs)")
    serve.add_argument("--ctx", type=int, default=4096, help="context length of chat models (per conversation)")
    serve.add_argument("--max-sequences", type=int, default=None, metavar="N",
                       help="chat generations run at once per model by continuous batching (default: chosen from "
                            "the CPU and --ctx; 1: one at a time)")
    serve.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ..server import ServerConfig, create_app

    config = ServerConfig(host=args.host, port=args.port, api_key=args.api_key, models=tuple(args.models),
                          allowed_hosts=tuple(args.allowed_host), cors_origins=tuple(args.cors_origin),
                          n_ctx=args.ctx, max_sequences=args.max_sequences,
                          remote_images=args.allow_remote_images)
    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level="info")
    return 0
