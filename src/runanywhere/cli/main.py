"""Entry point of the ``runanywhere`` command: one sub-command per module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from ..core.errors import SDKError
from . import describe, doctor, jobs, llm, models, serve, speech_stt, speech_tts, speech_vad, voice


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runanywhere", description="On-device AI: models, doctor, ...")
    parser.add_argument("--version", action="version", version=f"runanywhere {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (doctor, models, llm, describe, speech_tts, speech_stt, speech_vad, voice, serve, jobs):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (SDKError, OSError) as exc:  # bad input, files and environment: one line (the traceback with --debug)
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
