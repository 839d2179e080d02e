"""Vision-language models on llama.cpp's multimodal library (libmtmd), driven through llama-cpp-python's bindings.

:class:`LlamaVisionEngine` is a :class:`LlamaEngine` (the language model: template, tokens, sampling) plus the
projector (``mmproj``) loaded into an mtmd context. :meth:`LlamaVisionEngine.evaluate` puts a rendered prompt
with media markers and its images into the KV cache step by step (text chunks, then per image: encode with the
vision tower, then decode its embeddings into the language model), so each step is timed and a cancel stops
the image encoding (an eval callback of the vision graph checks it every few nodes) or the prefill (the llama
abort callback), not only the decode. Sampling then continues with :meth:`LlamaEngine.generate`.
"""

from __future__ import annotations

import contextlib
import ctypes
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.cancel import CancelToken
from ..core.engines import WEIGHTS
from ..core.errors import CancelledError, ContextLengthError, GenerationError, InvalidInputError, ModelFormatError
from . import require_engine
from .base import ModelFiles, VisionPrompt
from .llamacpp import LlamaEngine, check_gguf

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

MMPROJ = "mmproj"
"""The role of a vision model's projector file in its catalog entry."""
_CHECK_EVERY_NODES = 16
"""How many vision-graph nodes run between two cancellation checks during image encoding."""
_MISMATCH = re.compile(r"n_embd = (\d+)\) and mmproj \(n_embd = (\d+)")


def open_llama_vision(files: ModelFiles, *, mmproj: str | None = None, **options: Any) -> LlamaVisionEngine:
    """The vision-language factory: the ``weights`` GGUF and its ``mmproj`` projector (or the one given)."""
    return LlamaVisionEngine(files.file(WEIGHTS), Path(mmproj) if mmproj else files.file(MMPROJ), **options)


class _MtmdLog:
    """libmtmd's log, kept off the console; what it writes while a projector loads explains a failure."""

    def __init__(self, llama_cpp: Any, mtmd: Any) -> None:
        self._lines: list[str] | None = None
        self._lock = threading.Lock()
        self._callback = llama_cpp.llama_log_callback(self._write)  # kept alive: libmtmd holds the pointer
        mtmd.mtmd_log_set(self._callback, None)
        mtmd.mtmd_helper_log_set(self._callback, None)

    def _write(self, _level: int, text: bytes | None, _data: Any) -> None:
        if self._lines is not None and text:
            self._lines.append(text.decode("utf-8", "replace"))

    @contextlib.contextmanager
    def capture(self) -> Iterator[list[str]]:
        """Collect what libmtmd writes inside (one load at a time)."""
        with self._lock:
            lines: list[str] = []
            self._lines = lines
            try:
                yield lines
            finally:
                self._lines = None


_logs: list[_MtmdLog] = []


def _mtmd_log(llama_cpp: Any, mtmd: Any) -> _MtmdLog:
    if not _logs:
        _logs.append(_MtmdLog(llama_cpp, mtmd))
    return _logs[0]


class LlamaVisionEngine(LlamaEngine):
    """A GGUF language model and its vision projector, loaded together."""

    def __init__(self, path: Path, mmproj: Path, *, n_ctx: int = 4096, n_threads: int | None = None,
                 n_batch: int = 512) -> None:
        check_gguf(mmproj)
        super().__init__(path, n_ctx=n_ctx, n_threads=n_threads, n_batch=n_batch)
        self.mmproj = mmproj
        self._mtmd_lib = require_engine("llama_cpp.mtmd_cpp")
        self._mtmd: Any = None
        self._nodes = 0
        self._eval_cb = self._lib.ggml_backend_sched_eval_callback(self._on_vision_node)
        try:
            self._mtmd = self._init_mtmd(n_threads or int(self.llm.n_threads))
        except BaseException:
            self.close()
            raise

    def _init_mtmd(self, n_threads: int) -> Any:
        mtmd = self._mtmd_lib
        params = mtmd.mtmd_context_params_default()
        params.use_gpu = False
        params.print_timings = False
        params.n_threads = n_threads
        params.warmup = False
        params.cb_eval = self._eval_cb
        with _mtmd_log(self._lib, mtmd).capture() as log:
            ctx = mtmd.mtmd_init_from_file(str(self.mmproj).encode(), self.llm.model, params)
        if not ctx:
            raise self._load_error("".join(log))
        if not mtmd.mtmd_support_vision(ctx):
            mtmd.mtmd_free(ctx)
            raise ModelFormatError(f"{self.mmproj.name} has no vision encoder (an audio-only projector?)")
        return ctx

    def _load_error(self, log: str) -> ModelFormatError:
        """Why libmtmd refused the projector, from what it logged."""
        mismatch = _MISMATCH.search(log)
        if mismatch is not None:
            n_embd, width = int(mismatch.group(1)), int(mismatch.group(2))
            return ModelFormatError(
                f"the projector {self.mmproj.name} outputs {width}-wide embeddings but the language model "
                f"{self.path.name} is {n_embd} wide: use the mmproj file made for this model",
                details={"projection_dim": width, "n_embd": n_embd})
        errors = [line.strip() for line in log.splitlines() if "error" in line.lower()]
        return ModelFormatError(
            f"llama.cpp could not load the projector {self.mmproj.name} next to {self.path.name}"
            f"{': ' + errors[-1] if errors else ''}; use the model's own mmproj file",
            details={"log": errors[-5:]})

    @property
    def media_marker(self) -> str:
        """The text that stands for one image in a prompt."""
        return str(self._mtmd_lib.mtmd_default_marker().decode("utf-8"))

    def _on_vision_node(self, _tensor: Any, ask: bool, _data: Any) -> bool:
        """The vision graph's eval callback: every few nodes it asks to stop, and stops when cancelled."""
        if ask:
            self._nodes += 1
            return self._nodes % _CHECK_EVERY_NODES == 0
        return not self._abort_flag

    # ------------------------------------------------------------- evaluation
    def evaluate(self, text: str, images: Sequence[NDArray[np.uint8]], cancel: CancelToken,
                 on_stage: Callable[[str], None], *, add_special: bool = True,
                 n_threads: int | None = None) -> VisionPrompt:
        """Put ``text`` (one media marker per image) and the RGB images into a fresh KV cache.

        ``on_stage`` is told ``"image_encode"`` before each image is encoded and ``"prefill"`` before
        the language model takes each piece. Cancelling stops the step in progress (CancelledError).
        ``add_special`` adds the model's BOS token (off when the rendered chat already starts with it);
        ``n_threads`` sets the language model's threads from here on (the vision tower keeps its own).
        """
        marker = self.media_marker
        if text.count(marker) != len(images):
            raise InvalidInputError(f"the prompt holds {text.count(marker)} image markers for {len(images)} images")
        mtmd = self._mtmd_lib
        if n_threads:
            self._lib.llama_set_n_threads(self.llm._ctx.ctx, n_threads, n_threads)
        chunks = self._tokenize(text, images, add_special)
        try:
            self.llm.reset()
            self.llm._ctx.kv_cache_clear()
            total = int(mtmd.mtmd_helper_get_n_tokens(chunks))
            if total >= self.n_ctx:
                raise ContextLengthError(
                    f"the prompt with its images is {total} tokens but the context holds {self.n_ctx}; use "
                    "fewer or smaller images or load the model with a larger n_ctx",
                    details={"prompt_tokens": total, "n_ctx": self.n_ctx})
            encode_s, image_tokens = 0.0, 0
            with self._aborting(cancel):
                for i in range(int(mtmd.mtmd_input_chunks_size(chunks))):
                    chunk = mtmd.mtmd_input_chunks_get(chunks, i)
                    if mtmd.mtmd_input_chunk_get_type(chunk) == mtmd.MTMD_INPUT_CHUNK_TYPE_TEXT:
                        on_stage("prefill")
                        self._eval_text(chunk, cancel)
                    else:
                        on_stage("image_encode")
                        encode_s += self._eval_image(chunk, cancel, on_stage)
                        image_tokens += int(mtmd.mtmd_input_chunk_get_n_tokens(chunk))
        finally:
            mtmd.mtmd_input_chunks_free(chunks)
        tokens = [int(t) for t in self.llm.input_ids[: self.llm.n_tokens]]
        return VisionPrompt(tokens, total, image_tokens, encode_s * 1000)

    def _tokenize(self, text: str, images: Sequence[NDArray[np.uint8]], add_special: bool) -> Any:
        mtmd = self._mtmd_lib
        bitmaps = []
        try:
            for rgb in images:
                height, width = rgb.shape[:2]
                data = (ctypes.c_uint8 * rgb.size).from_buffer_copy(rgb.tobytes())
                bitmaps.append(mtmd.mtmd_bitmap_init(width, height, data))
            encoded = text.encode("utf-8")
            inp = mtmd.mtmd_input_text()
            inp.text, inp.text_len, inp.add_special, inp.parse_special = encoded, len(encoded), add_special, True
            chunks = mtmd.mtmd_input_chunks_init()
            array = (mtmd.mtmd_bitmap_p_ctypes * max(1, len(bitmaps)))(*bitmaps)
            code = mtmd.mtmd_tokenize(self._mtmd, chunks, ctypes.byref(inp), array, len(bitmaps))
            if code != 0:
                mtmd.mtmd_input_chunks_free(chunks)
                raise GenerationError(f"libmtmd could not tokenize the prompt with its images (code {code})")
            return chunks
        finally:
            for bitmap in bitmaps:
                mtmd.mtmd_bitmap_free(bitmap)

    def _eval_text(self, chunk: Any, cancel: CancelToken) -> None:
        count = ctypes.c_size_t()
        pointer = self._mtmd_lib.mtmd_input_chunk_get_tokens_text(chunk, ctypes.byref(count))
        try:
            self.llm.eval([pointer[j] for j in range(count.value)])
        except RuntimeError as exc:
            self._failed(cancel, "prefill", exc)

    def _eval_image(self, chunk: Any, cancel: CancelToken, on_stage: Callable[[str], None]) -> float:
        """Encode one image chunk and decode its embeddings into the language model; the encode seconds."""
        mtmd, llama_cpp = self._mtmd_lib, self._lib
        started = time.perf_counter()
        code = mtmd.mtmd_encode_chunk(self._mtmd, chunk)
        encode_s = time.perf_counter() - started
        if cancel.cancelled:
            raise CancelledError("image encoding was cancelled", details={"stage": "image_encode"})
        if code != 0:
            raise GenerationError(f"libmtmd could not encode the image (code {code})")
        on_stage("prefill")
        start = self.llm.n_tokens
        end = llama_cpp.llama_pos(0)
        code = mtmd.mtmd_helper_decode_image_chunk(
            self._mtmd, self.llm._ctx.ctx, chunk, mtmd.mtmd_get_output_embd(self._mtmd), start, 0,
            self.llm.n_batch, ctypes.byref(end), mtmd.mtmd_helper_post_decode_callback(), None)
        if code != 0:
            self._failed(cancel, "prefill", RuntimeError(f"image decode returned {code}"))
        self.llm.n_tokens = end.value
        self.llm.input_ids[start:end.value] = -1  # image positions: no text token may ever match them
        return encode_s

    @staticmethod
    def _failed(cancel: CancelToken, stage: str, exc: Exception) -> None:
        if cancel.cancelled:
            raise CancelledError(f"{stage} was cancelled", details={"stage": stage}) from exc
        raise GenerationError(f"llama.cpp failed during {stage}: {exc}") from exc

    def close(self) -> None:
        ctx, self._mtmd = getattr(self, "_mtmd", None), None
        if ctx:
            self._mtmd_lib.mtmd_free(ctx)
        super().close()
