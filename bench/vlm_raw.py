"""The raw llama-cpp-python multimodal baseline for ``bench/vlm.py``, in a fresh process of its own.

It imports nothing but llama-cpp-python, numpy and ``llm_raw``'s sampling loop, and drives libmtmd as
llama-cpp-python's own ``MTMDChatHandler`` does (text chunks through ``Llama.eval``, the image through
libmtmd), with the encode and the image decode called separately so the encode can be timed. Reads a JSON job on stdin
(``model``, ``mmproj``, ``threads``, ``n_ctx``, ``prompt`` with one media marker, ``image`` as a ``.npy``
path of RGB pixels, ``decode_tokens``, ``repeats``) and prints one JSON line: per repeat, image encode ms,
time to first token ms (tokenize to first sampled token), decode tokens/s and the tokens generated, greedy
(to ``decode_tokens`` or the end of generation, as the SDK stops), from a cold cache.
"""

from __future__ import annotations

import ctypes
import json
import sys
import time
from typing import Any

import llama_cpp
import llama_cpp.mtmd_cpp as mtmd
import numpy as np
from llm_raw import sample


def run(llm: Any, ctx: Any, text: bytes, rgb: np.ndarray, max_tokens: int) -> tuple[float, float, float, int, int]:
    """(encode ms, time to first token ms, decode tokens/s, image tokens, tokens) of one cold request."""
    llm.reset()
    llm._ctx.kv_cache_clear()
    started = time.perf_counter()
    data = (ctypes.c_uint8 * rgb.size).from_buffer_copy(rgb.tobytes())
    bitmap = mtmd.mtmd_bitmap_init(rgb.shape[1], rgb.shape[0], data)
    inp = mtmd.mtmd_input_text()
    inp.text, inp.text_len, inp.add_special, inp.parse_special = text, len(text), True, True
    chunks = mtmd.mtmd_input_chunks_init()
    bitmaps = (mtmd.mtmd_bitmap_p_ctypes * 1)(bitmap)
    if mtmd.mtmd_tokenize(ctx, chunks, ctypes.byref(inp), bitmaps, 1) != 0:
        raise SystemExit("mtmd_tokenize failed")
    encode_s, image_tokens = 0.0, 0
    for i in range(mtmd.mtmd_input_chunks_size(chunks)):
        chunk = mtmd.mtmd_input_chunks_get(chunks, i)
        if mtmd.mtmd_input_chunk_get_type(chunk) == mtmd.MTMD_INPUT_CHUNK_TYPE_TEXT:
            count = ctypes.c_size_t()
            pointer = mtmd.mtmd_input_chunk_get_tokens_text(chunk, ctypes.byref(count))
            llm.eval([pointer[j] for j in range(count.value)])
            continue
        t0 = time.perf_counter()
        if mtmd.mtmd_encode_chunk(ctx, chunk) != 0:
            raise SystemExit("mtmd_encode_chunk failed")
        encode_s += time.perf_counter() - t0
        image_tokens += mtmd.mtmd_input_chunk_get_n_tokens(chunk)
        end = llama_cpp.llama_pos(0)
        if mtmd.mtmd_helper_decode_image_chunk(ctx, llm._ctx.ctx, chunk, mtmd.mtmd_get_output_embd(ctx), llm.n_tokens,
                                               0, llm.n_batch, ctypes.byref(end),
                                               mtmd.mtmd_helper_post_decode_callback(), None) != 0:
            raise SystemExit("mtmd_helper_decode_image_chunk failed")
        llm.n_tokens = end.value
    mtmd.mtmd_input_chunks_free(chunks)
    mtmd.mtmd_bitmap_free(bitmap)
    first, decode, count = sample(llm, llm.input_ids[: llm.n_tokens].tolist(), max_tokens, until_end=True)
    return encode_s * 1000, (first - started) * 1000, decode, image_tokens, count


def main() -> None:
    job = json.loads(sys.stdin.read())
    llm = llama_cpp.Llama(model_path=job["model"], n_ctx=job["n_ctx"], n_threads=job["threads"],
                          n_threads_batch=job["threads"], n_batch=512, n_ubatch=512, verbose=False)
    silent = llama_cpp.llama_log_callback(lambda _level, _text, _data: None)
    mtmd.mtmd_log_set(silent, None)
    mtmd.mtmd_helper_log_set(silent, None)
    params = mtmd.mtmd_context_params_default()
    params.use_gpu, params.print_timings, params.n_threads, params.warmup = False, False, job["threads"], False
    ctx = mtmd.mtmd_init_from_file(job["mmproj"].encode(), llm.model, params)
    if not ctx:
        raise SystemExit("mtmd_init_from_file failed")
    rgb = np.load(job["image"])
    out: dict[str, list[float]] = {"image_encode_ms": [], "ttft_ms": [], "decode_tokens_per_s": [], "image_tokens": [],
                                   "completion_tokens": []}
    for _ in range(job["repeats"]):
        figures = run(llm, ctx, job["prompt"].encode(), rgb, job["decode_tokens"])
        for key, value in zip(out, figures, strict=True):
            out[key].append(value)
    mtmd.mtmd_free(ctx)
    llm.close()
    print(json.dumps({**out, "llama_cpp_python": llama_cpp.__version__}))


if __name__ == "__main__":
    main()
