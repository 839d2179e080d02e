"""Vision-language speed through runanywhere's ``VisionLanguageModel`` vs raw llama-cpp-python + libmtmd.

The language model is SmolLM2-135M (from its package); the projector is written by ``tests/tinyvlm.py``
with random weights in the shape of a CLIP ViT-B/16 at 224 px (768 wide, 12 blocks, 196 image tokens):
speed depends on shape, not on weight values. The same RGB pixels (a real photograph, shrunk to 320 px) and
the same prompt text (one media marker, sent raw) go to both sides, greedy, from a cold cache:

* image encode ms: the vision tower (``mtmd_encode_chunk``) alone;
* time to first token: from the request (image given as pixels) to the first sampled token;
* decode tokens/s: tokens after the first over the time after it.

The raw baseline runs first, in a fresh process of its own (``bench/vlm_raw.py``, as ``bench/llm.py`` does,
because an OpenMP llama.cpp slows down once a second OS thread has driven it). Medians are reported with
ratios oriented so that 1.0 is parity and higher is better for the SDK (target >= 0.95). Results go to
``bench/results/vlm.json``. Run: ``.venv/bin/python bench/vlm.py [--threads N]`` (``--smoke``: a 16-token
projector and one repeat, seconds).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import header, parse_args, run_raw, scratch_library, write_report
from tests.tinyvlm import write_tiny_mmproj

from runanywhere import EventBus, GenerationOptions, VisionLanguageModel
from runanywhere.core.capabilities import physical_cores
from runanywhere.media.images import load_image

N_CTX = 2048
PROMPT = "<|im_start|>user\n<__media__>\nDescribe this image in detail.<|im_end|>\n<|im_start|>assistant\n"


@dataclass(frozen=True)
class Plan:
    """How much to measure, and the projector's shape."""

    repeats: int
    decode_tokens: int
    projector: dict[str, int]
    name: str


FULL = Plan(repeats=5, decode_tokens=64, name="vit-b16-224",
            projector={"image_size": 224, "patch_size": 16, "width": 768, "blocks": 12, "heads": 12})
SMOKE = Plan(repeats=1, decode_tokens=4, name="tiny-56", projector={"image_size": 56, "patch_size": 14})


def photograph() -> Any:
    """A real photograph (matplotlib's sample JPEG) as RGB pixels, 320 px on its longer side."""
    import matplotlib

    return load_image(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg", max_side=320)


def raw_baseline(model: Path, mmproj: Path, image: Path, threads: int, plan: Plan) -> dict[str, Any]:
    """Raw llama-cpp-python + libmtmd in a fresh process (``vlm_raw.py``): per repeat, its figures."""
    return run_raw("vlm_raw.py", {"model": str(model), "mmproj": str(mmproj), "image": str(image), "threads": threads,
                                  "n_ctx": N_CTX, "prompt": PROMPT, "decode_tokens": plan.decode_tokens,
                                  "repeats": plan.repeats})


def sdk_runs(model: Path, mmproj: Path, pixels: Any, threads: int, plan: Plan) -> dict[str, list[float]]:
    """The same requests through ``VisionLanguageModel.process`` (worker thread, cancellable steps)."""
    vlm = VisionLanguageModel(scratch_library(), events=EventBus())
    vlm.load_model(model, mmproj, n_ctx=N_CTX, n_threads=threads)
    options = GenerationOptions(temperature=0.0, max_tokens=plan.decode_tokens, raw=True)
    out: dict[str, list[float]] = {"image_encode_ms": [], "ttft_ms": [], "decode_tokens_per_s": [],
                                   "image_tokens": [], "completion_tokens": []}
    try:
        for _ in range(plan.repeats):
            result = vlm.process(pixels, PROMPT, options)
            out["image_encode_ms"].append(result.image_encode_ms)
            out["ttft_ms"].append(result.time_to_first_token_ms or 0.0)
            out["decode_tokens_per_s"].append(result.decode_tokens_per_second or 0.0)
            out["image_tokens"].append(result.image_tokens)
            out["completion_tokens"].append(result.completion_tokens)
    finally:
        vlm.unload()
    return out


def compare(raw: dict[str, Any], sdk: dict[str, list[float]]) -> dict[str, Any]:
    """Medians of both sides and their ratios (1.0 = parity; above 1 the SDK is faster)."""
    med = {f"{side}_{key}": statistics.median(values[key]) for side, values in (("raw", raw), ("sdk", sdk))
           for key in ("image_encode_ms", "ttft_ms", "decode_tokens_per_s")}
    return {**med, "image_tokens": int(sdk["image_tokens"][0]),
            "raw_completion_tokens": int(statistics.median(raw["completion_tokens"])),
            "sdk_completion_tokens": int(statistics.median(sdk["completion_tokens"])),
            "image_encode_ratio": med["raw_image_encode_ms"] / med["sdk_image_encode_ms"],
            "ttft_ratio": med["raw_ttft_ms"] / med["sdk_ttft_ms"],
            "decode_ratio": med["sdk_decode_tokens_per_s"] / med["raw_decode_tokens_per_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description="VLM image encode, first token and decode: SDK vs raw")
    parser.add_argument("--threads", type=int, help="threads per model (default: physical cores; smoke: 1)")
    args = parse_args(parser.description or "", parser)
    plan = SMOKE if args.smoke else FULL
    threads = args.threads or (1 if args.smoke else physical_cores())
    model = scratch_library().pull("smollm2-135m-instruct-q4_1").main_file
    with tempfile.TemporaryDirectory(prefix="bench-vlm-") as tmp:
        started = time.perf_counter()
        mmproj = write_tiny_mmproj(Path(tmp) / f"mmproj-{plan.name}.gguf", **plan.projector)
        print(f"wrote the {plan.name} projector ({mmproj.stat().st_size / 1e6:.0f} MB) in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        pixels = photograph()
        image = Path(tmp) / "photo.npy"
        import numpy as np

        np.save(image, pixels)
        raw = raw_baseline(model, mmproj, image, threads, plan)
        sdk = sdk_runs(model, mmproj, pixels, threads, plan)
    if raw["image_tokens"] != sdk["image_tokens"]:
        raise SystemExit(f"raw and SDK saw different image tokens: {raw['image_tokens']} vs {sdk['image_tokens']}")
    figures = {"model": "smollm2-135m-q4_1", "projector": plan.name, "image_px": list(pixels.shape[:2]),
               "threads": threads, "repeats": plan.repeats, "decode_tokens": plan.decode_tokens,
               "raw_baseline": "fresh process", **compare(raw, sdk)}
    print(json.dumps(figures, indent=1), flush=True)
    report = {**header("vlm", args.smoke), "llama_cpp_python": raw["llama_cpp_python"], "results": figures,
              "raw_runs": raw, "sdk_runs": sdk}
    write_report(args.results, "vlm", report)


if __name__ == "__main__":
    main()
