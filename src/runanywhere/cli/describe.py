"""``runanywhere describe``: ask a vision-language model about an image, or about a video every few seconds."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from rich.console import Console

from ..core.errors import InvalidInputError
from ..features.text import GenerationOptions
from ..features.vlm import VLM, VLMResult
from ..media.video import VideoCapture


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    describe = sub.add_parser("describe", help="describe an image (or a video every N seconds) with a vision model")
    describe.add_argument("image", nargs="?", help="image file (omit with --video)")
    describe.add_argument("prompt", nargs="?", default="Describe this image.", help="what to ask about it")
    describe.add_argument("--model", required=True,
                          help="catalog id of a vision-language model (e.g. smolvlm-256m-instruct-q8_0) or .gguf path")
    describe.add_argument("--mmproj", help="the projector .gguf (with a model given by path)")
    describe.add_argument("--video", help="a video file: describe one frame every --every seconds")
    describe.add_argument("--every", type=float, default=2.0, help="seconds between described frames (--video)")
    describe.add_argument("--max-side", type=int, default=512, help="images are shrunk to this longer side")
    describe.add_argument("--max-tokens", type=int, default=128)
    describe.add_argument("--temperature", type=float, default=0.2)
    describe.add_argument("--ctx", type=int, default=4096, help="context length")
    describe.add_argument("--threads", type=int)
    describe.add_argument("--json", action="store_true", help="print each result with its metrics as JSON")
    describe.set_defaults(func=_describe)


def _describe(args: argparse.Namespace) -> int:
    if args.video and args.image and args.prompt == "Describe this image.":
        args.image, args.prompt = None, args.image  # `describe --video FILE "prompt"`: the one positional is the prompt
    if (args.image is None) == (args.video is None):
        raise InvalidInputError("give an image file or --video FILE (one of them)")
    options = GenerationOptions(max_tokens=args.max_tokens, temperature=args.temperature, threads=args.threads)
    VLM.max_image_side = args.max_side
    VLM.load_model(args.model, args.mmproj, n_ctx=args.ctx, n_threads=args.threads)
    console = Console(stderr=True)
    try:
        if args.image is not None:
            _print(VLM.process(args.image, args.prompt, options), args.json, console, None)
        else:
            with VideoCapture(args.video) as video:
                for described in video.describe_every(args.every, args.prompt, model=VLM, options=options):
                    _print(described.result, args.json, console, described.time_s)
    finally:
        VLM.unload()
    return 0


def _print(result: VLMResult, as_json: bool, console: Console, time_s: float | None) -> None:
    if as_json:
        out: dict[str, Any] = {**asdict(result), "prompt_tokens": result.prompt_tokens,
                               "completion_tokens": result.completion_tokens}
        if time_s is not None:
            out["time_s"] = time_s
        print(json.dumps(out), flush=True)
        return
    prefix = f"[{time_s:6.1f} s] " if time_s is not None else ""
    sys.stdout.write(f"{prefix}{result.text.strip()}\n")
    sys.stdout.flush()
    ttft = f"{result.time_to_first_token_ms:.0f} ms" if result.time_to_first_token_ms is not None else "-"
    console.print(f"[dim]{result.images} image(s) · {result.image_tokens} image tokens · encode "
                  f"{result.image_encode_ms:.0f} ms · first token {ttft} · {result.output_tokens} tokens[/]")
