"""``runanywhere run|chat|embed``: language models from the shell."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from rich.console import Console

from ..features.embeddings import Embeddings
from ..features.text import GenerationOptions, GenerationResult, TextGeneration
from . import MODEL_HELP


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser("run", help="answer one prompt with a language model (streamed)")
    run.add_argument("model", nargs="?", help=MODEL_HELP.format(what=".gguf", kind="language"))
    run.add_argument("prompt", help="the prompt")
    _generation_flags(run)
    run.add_argument("--json", action="store_true", help="print the result with its metrics as JSON")
    run.set_defaults(func=_run)

    chat = sub.add_parser("chat", help="multi-turn chat in the terminal (streamed); empty line or Ctrl-D ends")
    chat.add_argument("model", nargs="?", help=MODEL_HELP.format(what=".gguf", kind="language"))
    _generation_flags(chat)
    chat.set_defaults(func=_chat)

    embed = sub.add_parser("embed", help="print embedding vectors of texts as JSON")
    embed.add_argument("texts", nargs="+", metavar="TEXT")
    embed.add_argument("--model", help=MODEL_HELP.format(what="model", kind="embedding"))
    embed.add_argument("--similarity", action="store_true", help="print the cosine similarity matrix instead")
    embed.set_defaults(func=_embed)


def _generation_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--system", help="system prompt")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--ctx", type=int, default=4096, help="context length")


def _options(args: argparse.Namespace) -> GenerationOptions:
    return GenerationOptions(max_tokens=args.max_tokens, temperature=args.temperature, seed=args.seed,
                             system_prompt=args.system, threads=args.threads)


def _metrics(result: GenerationResult) -> str:
    ttft = f"{result.time_to_first_token_ms:.0f} ms" if result.time_to_first_token_ms is not None else "-"
    speed = f"{result.decode_tokens_per_second:.1f} tok/s" if result.decode_tokens_per_second else "-"
    return f"{result.output_tokens} tokens · first token {ttft} · {speed} · {result.finish_reason}"


def _stream(prompt: Any, options: GenerationOptions, console: Console) -> GenerationResult:
    stream = TextGeneration.generate_stream(prompt, options)
    try:
        for event in stream:
            sys.stdout.write(event.text)
            sys.stdout.flush()
    except KeyboardInterrupt:
        stream.cancel()
    sys.stdout.write("\n")
    result = stream.result
    console.print(f"[dim]{_metrics(result)}[/]")
    return result


def _run(args: argparse.Namespace) -> int:
    TextGeneration.load_model(args.model, n_ctx=args.ctx, n_threads=args.threads)
    try:
        if args.json:
            result = TextGeneration.generate(args.prompt, _options(args))
            print(json.dumps({**asdict(result), "tokens_per_second": result.tokens_per_second}, indent=2))
        else:
            _stream(args.prompt, _options(args), Console(stderr=True))
    finally:
        TextGeneration.unload()
    return 0


def _chat(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    TextGeneration.load_model(args.model, n_ctx=args.ctx, n_threads=args.threads)
    console.print(f"[bold]{TextGeneration.loaded_model}[/] ready. Empty line or Ctrl-D to quit.")
    messages: list[dict[str, str]] = []
    options = _options(args)
    try:
        while True:
            try:
                line = input("> " if sys.stdin.isatty() else "")
            except EOFError:
                break
            if not line.strip():
                break
            messages.append({"role": "user", "content": line})
            result = _stream(messages, options, console)
            messages.append({"role": "assistant", "content": result.text})
    finally:
        TextGeneration.unload()
    return 0


def _embed(args: argparse.Namespace) -> int:
    model_id = Embeddings.load_model(args.model)
    try:
        vectors = Embeddings.embed_batch(args.texts)
    finally:
        Embeddings.unload()
    if args.similarity:
        print(json.dumps((vectors @ vectors.T).round(4).tolist()))
    else:
        print(json.dumps({"model": args.model or model_id, "dimension": int(vectors.shape[1]),
                          "embeddings": vectors.round(6).tolist()}))
    return 0
