"""Random-weight GGUF language models written on the fly, for tests and benchmarks.

No model hub is reachable from the test machines, and a real model is too slow and too big for most unit tests,
so the suite writes its own models with the ``gguf`` package and numpy:

* :func:`write_tiny_llm` writes a ~0.5 MB llama- or qwen2-architecture model with a made-up byte-level BPE
  vocabulary (the GPT-2 scheme: 256 byte tokens plus merges for a few hundred common words and JSON pieces) and
  the ChatML chat template SmolLM2 uses. llama.cpp loads it in milliseconds; it tokenizes any text (emoji too),
  generates, follows grammars and yields embeddings. It tests plumbing, never quality: its output is gibberish.
* :func:`write_shaped_llm` writes a model with the exact shape and quantization of a real one (Qwen2.5-0.5B in
  Q4_0 by default: 351 MB, written in about a second) filled with random weights. Decode and prefill speed
  depend on shape and bytes, not on weight values, so it benchmarks exactly like the real model.
* :func:`long_prompt` builds a prompt of roughly a given number of tokens, for prefill and cancellation tests.

Both writers keep the control tokens (``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>``) out of free generation:
a random model would otherwise stop at a random point, and tests want exactly ``max_tokens`` tokens. A grammar
that ends still ends generation (the grammar leaves end-of-generation as the only choice). To test stopping at
end of generation, raise the eos logit with ``logit_bias``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import gguf
import numpy as np
from gguf.quants import quantize

__all__ = [
    "CHATML",
    "SHAPES",
    "TINY_WORDS",
    "LLMShape",
    "long_prompt",
    "random_weights",
    "tiny_vocab",
    "write_shaped_llm",
    "write_tiny_llm",
]

#: The ChatML chat template of SmolLM2-Instruct, character for character (a default system message is added
#: when the conversation has none).
CHATML = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

#: Control tokens, at ids 0, 1, 2 as in SmolLM2: bos is <|im_start|>, eos is <|im_end|>.
CONTROL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
BOS_ID = 1
EOS_ID = 2

#: Words that are single tokens of the tiny vocabulary, each also with a leading space. :func:`long_prompt`
#: draws from them, so its prompts are about one token per word on the tiny model and on real ones.
TINY_WORDS: tuple[str, ...] = (
    "the", "of", "and", "to", "in", "is", "it", "that", "was", "for", "on", "are", "with", "as", "at", "be", "this",
    "have", "from", "or", "one", "had", "by", "word", "but", "not", "what", "all", "were", "we", "when", "your",
    "can", "said", "there", "use", "an", "each", "which", "she", "do", "how", "their", "if", "will", "up", "other",
    "about", "out", "many", "then", "them", "these", "so", "some", "her", "would", "make", "like", "him", "into",
    "time", "has", "look", "two", "more", "write", "go", "see", "number", "no", "way", "could", "people", "my",
    "than", "first", "water", "been", "call", "who", "oil", "its", "now", "find", "long", "down", "day", "did",
    "get", "come", "made", "may", "part", "over", "new", "sound", "take", "only", "little", "work", "know", "place",
    "year", "live", "me", "back", "give", "most", "very", "after", "thing", "our", "just", "name", "good",
    "sentence", "man", "think", "say", "great", "where", "help", "through", "much", "before", "line", "right",
    "too", "mean", "old", "any", "same", "tell", "boy", "follow", "came", "want", "show", "also", "around", "form",
    "three", "small", "set", "put", "end", "does", "another", "well", "large", "must", "big", "even", "such",
    "because", "turn", "here", "why", "ask", "went", "men", "read", "need", "land", "different", "home", "us",
    "move", "try", "kind", "hand", "picture", "again", "change", "off", "play", "spell", "air", "away", "animal",
    "house", "point", "page", "letter", "mother", "answer", "found", "study", "still", "learn", "should", "world",
    "capital", "city", "country", "France", "Paris", "Berlin", "London", "weather", "today", "hello", "Hello",
    "The", "It", "What", "yes", "no", "true", "false", "null", "user", "assistant", "system", "you", "You", "I",
    "is", "model", "tool", "function", "value", "answer", "cat", "dog", "red", "green", "blue",
)  # fmt: skip

#: Extra whole tokens: JSON punctuation runs and numbers as the pre-tokenizer cuts them.
_EXTRA_PIECES: tuple[str, ...] = (
    '{"', '":', '",', '"}', ' "', '":"', '","', '"]', '["', '},', '{}', '[]', ': ', ', ', '\n\n', '  ', '    ',
    '00', '10', '100', '12', '2024', '2025', '...', '.\n', '!', '?', '://', '==', '!=', '->', '=>',
)  # fmt: skip


@cache
def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters (' ' -> 'Ġ', '\\n' -> 'Ċ')."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table: dict[int, str] = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def _encode(text: str) -> str:
    """Text as GPT-2 byte-level characters (the form tokens and merges are stored in)."""
    table = _byte_to_unicode()
    return "".join(table[b] for b in text.encode("utf-8"))


def _apply_merges(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    """Plain BPE: merge the lowest-ranked adjacent pair until no pair has a merge."""
    parts = list(word)
    while len(parts) > 1:
        pairs = [(ranks.get((a, b), math.inf), i) for i, (a, b) in enumerate(itertools.pairwise(parts))]
        rank, i = min(pairs)
        if rank == math.inf:
            break
        parts[i : i + 2] = [parts[i] + parts[i + 1]]
    return parts


@dataclass(frozen=True)
class TinyVocab:
    """A byte-level BPE vocabulary: token strings (GPT-2 byte encoding), token types and merges."""

    tokens: list[str]
    types: list[int]
    merges: list[str]

    @property
    def n_control(self) -> int:
        return len(CONTROL_TOKENS)


def _pieces() -> Iterable[str]:
    for word in TINY_WORDS:
        yield word
        yield " " + word
    yield from _EXTRA_PIECES


@cache
def tiny_vocab() -> TinyVocab:
    """The tiny models' vocabulary: 3 control tokens, the 256 byte tokens, then whole words and their merges.

    Merges are made word by word: each new merge ranks after every earlier one, so a new merge never changes how
    an earlier word tokenizes, and every listed piece that the pre-tokenizer keeps whole (all of
    :data:`TINY_WORDS`, with and without a leading space) is a single token in llama.cpp's BPE tokenizer.
    """
    table = _byte_to_unicode()
    tokens = [*CONTROL_TOKENS, *(table[b] for b in range(256))]
    types = [int(gguf.TokenType.CONTROL)] * len(CONTROL_TOKENS) + [int(gguf.TokenType.NORMAL)] * 256
    known = set(tokens)
    ranks: dict[tuple[str, str], int] = {}
    merges: list[str] = []
    for piece in _pieces():
        parts = _apply_merges(_encode(piece), ranks)
        while len(parts) > 1:
            a, b = parts[0], parts[1]
            ranks[(a, b)] = len(merges)
            merges.append(f"{a} {b}")
            if a + b not in known:
                known.add(a + b)
                tokens.append(a + b)
                types.append(int(gguf.TokenType.NORMAL))
            parts = _apply_merges("".join(parts), ranks)
    return TinyVocab(tokens=tokens, types=types, merges=merges)


# --------------------------------------------------------------------------------------------------------------
# Tensors


@dataclass(frozen=True)
class _Tensor:
    """One tensor to write: name, numpy shape (rows = output features, as PyTorch stores it), GGML type, maker."""

    name: str
    shape: tuple[int, ...]
    qtype: gguf.GGMLQuantizationType
    make: Callable[[], np.ndarray]

    def encoded(self) -> np.ndarray:
        made = self.make()
        if made.dtype == np.uint8:  # already encoded blocks
            return made
        data = np.ascontiguousarray(made, dtype=np.float32).reshape(self.shape)
        if self.qtype == gguf.GGMLQuantizationType.F32:
            return data
        if self.qtype == gguf.GGMLQuantizationType.F16:
            return data.astype(np.float16)
        return quantize(data, self.qtype)

    @property
    def nbytes(self) -> int:
        block, size = gguf.GGML_QUANT_SIZES[self.qtype]
        rows = math.prod(self.shape[:-1])
        return rows * (self.shape[-1] // block) * size


_QTYPES = {
    "f32": gguf.GGMLQuantizationType.F32,
    "f16": gguf.GGMLQuantizationType.F16,
    "q8_0": gguf.GGMLQuantizationType.Q8_0,
    "q4_0": gguf.GGMLQuantizationType.Q4_0,
    "q4_1": gguf.GGMLQuantizationType.Q4_1,
    "q5_0": gguf.GGMLQuantizationType.Q5_0,
}
# llama.cpp's general.file_type (LLAMA_FTYPE_*) for a file whose big tensors are mostly of that type.
_FILE_TYPES = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7, "q5_0": 8}


def _qtype(name: str) -> gguf.GGMLQuantizationType:
    try:
        return _QTYPES[name.lower()]
    except KeyError:
        raise ValueError(f"unsupported qtype {name!r}; choose one of {sorted(_QTYPES)}") from None


def _write_gguf(path: Path, writer: gguf.GGUFWriter, tensors: Sequence[_Tensor]) -> Path:
    """Write header, metadata and tensors, making one tensor at a time so big models need little memory."""
    for t in tensors:
        if t.shape[-1] % gguf.GGML_QUANT_SIZES[t.qtype][0]:
            raise ValueError(f"{t.name}: row length {t.shape[-1]} is not a multiple of the {t.qtype.name} block")
        writer.add_tensor_info(t.name, t.shape, np.dtype(np.float32), t.nbytes, raw_dtype=t.qtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    writer.write_header_to_file(tmp)
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for t in tensors:
        data = t.encoded()
        assert data.nbytes == t.nbytes, (t.name, data.nbytes, t.nbytes)
        writer.write_tensor_data(data)
    writer.close()
    tmp.replace(path)
    return path


def _add_tokenizer(writer: gguf.GGUFWriter, vocab: TinyVocab, pre: str, chat_template: str | None) -> None:
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.types)
    writer.add_token_merges(vocab.merges)
    writer.add_bos_token_id(BOS_ID)
    writer.add_eos_token_id(EOS_ID)
    writer.add_pad_token_id(EOS_ID)
    writer.add_add_bos_token(False)
    writer.add_add_space_prefix(False)
    if chat_template is not None:
        writer.add_chat_template(chat_template)


def _add_hparams(
    writer: gguf.GGUFWriter,
    *,
    n_vocab: int,
    n_ctx: int,
    n_embd: int,
    n_layers: int,
    n_ff: int,
    n_head: int,
    n_head_kv: int,
    rope_base: float,
    rms_eps: float,
) -> None:
    writer.add_vocab_size(n_vocab)
    writer.add_context_length(n_ctx)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layers)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_rope_freq_base(rope_base)
    writer.add_layer_norm_rms_eps(rms_eps)


def _muted_tokens(vocab: TinyVocab, plain_text: bool) -> list[int]:
    """Ids that free generation must not emit: the control tokens, and with ``plain_text`` the byte tokens of
    ASCII control characters (but tab and newline) and of non-ASCII bytes."""
    muted = list(range(vocab.n_control))
    if plain_text:
        odd = [b for b in range(256) if (b < 0x20 and b not in (0x09, 0x0A)) or b >= 0x7F]
        muted += [vocab.n_control + b for b in odd]
    return muted


_ARCHS = ("llama", "qwen2")
_PRE = {"llama": "smollm", "qwen2": "qwen2"}


def write_tiny_llm(
    path: Path,
    *,
    arch: str = "llama",
    n_layers: int = 2,
    n_embd: int = 64,
    n_head: int = 4,
    n_head_kv: int = 2,
    n_ff: int = 128,
    n_ctx: int = 512,
    seed: int = 0,
    chat_template: str | None = CHATML,
    pooling: str | None = None,
    plain_text: bool = True,
) -> Path:
    """Write a tiny random-weight chat LLM (llama or qwen2 architecture) to ``path`` and return ``path``.

    The defaults give a ~0.5 MB F32 file that llama.cpp loads in a few milliseconds and that decodes thousands of
    tokens per second. Its tokenizer is byte-level BPE (``tokenizer.ggml.model = "gpt2"``): any UTF-8 text
    round-trips through tokenize/detokenize, and the words of :data:`TINY_WORDS` are single tokens. The control
    tokens are ``<|endoftext|>`` (0), ``<|im_start|>`` (1, bos, not added automatically) and ``<|im_end|>``
    (2, eos); ``chat_template`` (ChatML by default, ``None`` for none) is stored as ``tokenizer.chat_template``.
    ``n_ctx`` is the trained context length; llama.cpp accepts a larger ``n_ctx`` at load time with a warning.
    ``pooling`` ("mean", "cls", "last") stores ``{arch}.pooling_type`` so that ``Llama(embedding=True)`` returns one
    pooled vector per input, as an embedding model does; without it (as for real chat models) llama.cpp pools
    nothing and returns one vector per token unless ``Llama(pooling_type=...)`` asks for pooling.

    The weights are random, F16 (norms and biases F32), scaled so that the output depends on the prompt and the
    logits spread (standard deviation about 2) at any width and depth. A constant residual channel that only the
    output layer reads gives the control tokens a logit about 15 below the rest: free generation never emits them,
    at any temperature, and always runs to ``max_tokens``. With ``plain_text`` (the default) the same holds for the
    byte tokens of ASCII control characters and of bytes 0x80-0xFF, so generated text is printable ASCII and each
    token is whole text: llama-cpp-python holds back a token that ends in an incomplete UTF-8 sequence and then
    lets generation overshoot ``max_tokens``. Pass ``plain_text=False`` to let the model emit any byte (to test
    multi-byte streaming). Prompts may contain any text either way. The same ``seed`` writes a byte-identical file.
    """
    if arch not in _ARCHS:
        raise ValueError(f"unsupported arch {arch!r}; choose one of {_ARCHS}")
    if n_embd % n_head or n_head % n_head_kv:
        raise ValueError("n_embd must be a multiple of n_head, and n_head a multiple of n_head_kv")
    vocab = tiny_vocab()
    n_vocab = len(vocab.tokens)
    head_dim = n_embd // n_head
    n_kv = n_head_kv * head_dim
    rng = np.random.default_rng(seed)
    f32, f16 = gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16

    def normal(*shape: int, std: float) -> np.ndarray:
        values: np.ndarray = rng.standard_normal(shape, dtype=np.float32) * np.float32(std)
        return values

    # Weights are scaled by fan-in so that every width and depth behaves alike: each layer adds about half the
    # embedding's norm to the residual stream, attention is neither flat nor one-hot, and logits have a standard
    # deviation of about 2. Residual channel 0 is a constant "bias" channel: set to 1 in every token embedding,
    # never written by a layer (row 0 of attn_output and ffn_down is zero), ignored by the layers' input norms,
    # and read only by the output layer, which turns it into a logit about 15 below the others for the control
    # tokens.
    d = 1.0 / math.sqrt(n_embd)
    depth = math.sqrt(2.0 / max(n_layers, 2))  # deeper models: each layer adds less
    embd = normal(n_vocab, n_embd, std=d)
    embd[:, 0] = 1.0
    in_norm = np.ones(n_embd, dtype=np.float32)
    in_norm[0] = 0.0
    output = normal(n_vocab, n_embd, std=2.5 * d)
    output[:, 0] = 0.0
    muted = _muted_tokens(vocab, plain_text)
    output[muted] = 0.0
    output[muted, 0] = -25.0 * d

    def writer_rows(n_out: int, n_in: int, std: float) -> np.ndarray:
        matrix = normal(n_out, n_in, std=std)
        matrix[0] = 0.0
        return matrix

    def const(array: np.ndarray) -> Callable[[], np.ndarray]:
        return lambda: array

    tensors = [
        _Tensor("token_embd.weight", (n_vocab, n_embd), f16, const(embd)),
        _Tensor("output_norm.weight", (n_embd,), f32, const(np.ones(n_embd, dtype=np.float32))),
        _Tensor("output.weight", (n_vocab, n_embd), f16, const(output)),
    ]
    for i in range(n_layers):
        blk = f"blk.{i}"
        q, k, v = normal(n_embd, n_embd, std=2 * d), normal(n_kv, n_embd, std=2 * d), normal(n_kv, n_embd, std=d)
        o = writer_rows(n_embd, n_embd, std=0.7 * d * d * depth)
        gate, up = normal(n_ff, n_embd, std=d), normal(n_ff, n_embd, std=d)
        down = writer_rows(n_embd, n_ff, std=1.25 * d * depth / math.sqrt(n_ff))
        tensors += [
            _Tensor(f"{blk}.attn_norm.weight", (n_embd,), f32, const(in_norm)),
            _Tensor(f"{blk}.attn_q.weight", (n_embd, n_embd), f16, const(q)),
            _Tensor(f"{blk}.attn_k.weight", (n_kv, n_embd), f16, const(k)),
            _Tensor(f"{blk}.attn_v.weight", (n_kv, n_embd), f16, const(v)),
            _Tensor(f"{blk}.attn_output.weight", (n_embd, n_embd), f16, const(o)),
            _Tensor(f"{blk}.ffn_norm.weight", (n_embd,), f32, const(in_norm)),
            _Tensor(f"{blk}.ffn_gate.weight", (n_ff, n_embd), f16, const(gate)),
            _Tensor(f"{blk}.ffn_up.weight", (n_ff, n_embd), f16, const(up)),
            _Tensor(f"{blk}.ffn_down.weight", (n_embd, n_ff), f16, const(down)),
        ]
        if arch == "qwen2":
            tensors += [
                _Tensor(f"{blk}.attn_q.bias", (n_embd,), f32, const(normal(n_embd, std=0.1))),
                _Tensor(f"{blk}.attn_k.bias", (n_kv,), f32, const(normal(n_kv, std=0.1))),
                _Tensor(f"{blk}.attn_v.bias", (n_kv,), f32, const(normal(n_kv, std=0.1))),
            ]

    writer = gguf.GGUFWriter(None, arch)
    writer.add_type("model")
    writer.add_name(f"tiny-random-{arch}")
    writer.add_file_type(_FILE_TYPES["f16"])
    _add_hparams(
        writer,
        n_vocab=n_vocab,
        n_ctx=n_ctx,
        n_embd=n_embd,
        n_layers=n_layers,
        n_ff=n_ff,
        n_head=n_head,
        n_head_kv=n_head_kv,
        rope_base=10000.0 if arch == "llama" else 1000000.0,
        rms_eps=1e-5 if arch == "llama" else 1e-6,
    )
    if pooling is not None:
        writer.add_pooling_type(gguf.PoolingType[pooling.upper()])
    _add_tokenizer(writer, vocab, _PRE[arch], chat_template)
    return _write_gguf(Path(path), writer, tensors)


# --------------------------------------------------------------------------------------------------------------
# Real shapes


@dataclass(frozen=True)
class LLMShape:
    """The shape of a real model: what decode speed depends on (with the quantization)."""

    arch: str
    n_layers: int
    n_embd: int
    n_head: int
    n_head_kv: int
    n_ff: int
    n_vocab: int
    n_ctx: int
    rope_base: float
    rms_eps: float
    tied_embeddings: bool


#: Shapes of real models, from their Hugging Face config.json.
SHAPES: dict[str, LLMShape] = {
    "qwen2.5-0.5b": LLMShape("qwen2", 24, 896, 14, 2, 4864, 151936, 32768, 1000000.0, 1e-6, True),
    "qwen2.5-1.5b": LLMShape("qwen2", 28, 1536, 12, 2, 8960, 151936, 32768, 1000000.0, 1e-6, True),
    "smollm2-135m": LLMShape("llama", 30, 576, 9, 3, 1536, 49152, 8192, 100000.0, 1e-5, True),
    "smollm2-360m": LLMShape("llama", 32, 960, 15, 5, 2560, 49152, 8192, 100000.0, 1e-5, True),
}


def _shaped_vocab(n_vocab: int) -> TinyVocab:
    """The tiny vocabulary padded with unreachable synthetic tokens to the real model's vocabulary size."""
    base = tiny_vocab()
    if n_vocab < len(base.tokens):
        raise ValueError(f"vocabulary of {n_vocab} is smaller than the {len(base.tokens)} base tokens")
    extra = n_vocab - len(base.tokens)
    tokens = base.tokens + [f"<synthetic_{i}>" for i in range(extra)]
    types = base.types + [int(gguf.TokenType.NORMAL)] * extra
    return TinyVocab(tokens=tokens, types=types, merges=base.merges)


# Standard deviation of the integer part of each block type's values, when its bytes are uniformly random.
_Q = gguf.GGMLQuantizationType
_INT_SPREAD = {_Q.Q4_0: 4.61, _Q.Q4_1: 4.61, _Q.Q5_0: 9.23, _Q.Q8_0: 73.9}


def random_weights(
    shape: tuple[int, ...], qtype: gguf.GGMLQuantizationType, std: float, rng: np.random.Generator
) -> np.ndarray:
    """Random weights of ``shape`` with standard deviation ``std``, already encoded as ``qtype``.

    Quantized blocks are made directly: random bytes for the quants and a fixed scale, which is what quantizing
    uniform noise gives, and 10 times faster than drawing floats and running ``gguf.quants.quantize`` on them (a
    0.5B model is written in about a second instead of 10-25 s). F32/F16 weights are uniform floats. Returns a
    float array or, for block types, a uint8 array of shape (rows, bytes per row).
    """
    if qtype in (_Q.F32, _Q.F16):
        values = rng.random(shape, dtype=np.float32)
        values -= np.float32(0.5)
        values *= np.float32(std * math.sqrt(12.0))
        return values.astype(np.float16) if qtype == _Q.F16 else values
    if qtype not in _INT_SPREAD:
        raise ValueError(f"no random block maker for {qtype.name}")
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    rows, cols = math.prod(shape[:-1]), shape[-1]
    blocks = rng.integers(0, 256, size=(rows * cols // block, size), dtype=np.uint8)
    scale = std / _INT_SPREAD[qtype]
    blocks[:, 0:2] = np.array([scale], dtype=np.float16).view(np.uint8)  # every block type starts with f16 d
    if qtype == _Q.Q4_1:  # then f16 m: values are q * d + m with q in 0..15
        blocks[:, 2:4] = np.array([-7.5 * scale], dtype=np.float16).view(np.uint8)
    return blocks.reshape(rows, cols // block * size)


def write_shaped_llm(
    path: Path,
    *,
    shape: str = "qwen2.5-0.5b",
    qtype: str = "q4_0",
    seed: int = 0,
    embd_qtype: str | None = None,
    chat_template: str | None = CHATML,
) -> Path:
    """Write a random-weight model with the real shape of ``shape`` (see :data:`SHAPES`), for speed benchmarks.

    Every weight matrix is in ``qtype`` ("q4_0", "q4_1", "q5_0", "q8_0", "f16", "f32"), norms and biases in F32,
    as llama.cpp's ``llama-quantize`` lays out a file of that type. The tied token embedding (also the output
    layer) is Q8_0 by default for quantized types: ``llama-quantize`` picks Q6_K for it, and Q8_0 when the width is
    not a multiple of 256 as here (896, 576). The default file is 351 MB, as the real Qwen2.5-0.5B Q4_0 GGUF, and
    is written in 1-3 s on 2 cores (see :func:`random_weights`). llama.cpp decodes it exactly as fast as the
    real model: it reads the same bytes and runs the same kernels. A random SmolLM2-135M in Q4_1 (98.0 MB) matched
    the real SmolLM2-135M-Instruct.Q4_1.gguf (98.4 MB) in prefill and decode speed.

    The vocabulary is the tiny models' (so text tokenizes as bytes and common words) padded with unreachable
    synthetic tokens to the real size; prompts therefore take more tokens than with the real tokenizer (about one
    per common English word, one per byte otherwise). The control tokens' embedding rows are zero, so their logit
    is always 0 and sampling practically never picks them. The same ``seed`` writes a byte-identical file.
    """
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; choose one of {sorted(SHAPES)}")
    s = SHAPES[shape]
    q_main = _qtype(qtype)
    if embd_qtype is None:
        embd_qtype = qtype if q_main in (_Q.F32, _Q.F16) else "q8_0"
    q_embd = _qtype(embd_qtype)
    vocab = _shaped_vocab(s.n_vocab)
    head_dim = s.n_embd // s.n_head
    n_kv = s.n_head_kv * head_dim
    count = 0

    def weights(qtype_: gguf.GGMLQuantizationType, *shape_: int, std: float = 0.02) -> Callable[[], np.ndarray]:
        nonlocal count
        count += 1
        index = count
        return lambda: random_weights(shape_, qtype_, std, np.random.default_rng([seed, index]))

    def ones(n: int) -> Callable[[], np.ndarray]:
        return lambda: np.ones(n, dtype=np.float32)

    make_embd = weights(q_embd, s.n_vocab, s.n_embd, std=0.1)

    def embedding() -> np.ndarray:
        table = make_embd()
        table[: vocab.n_control] = 0  # zero bytes are zero weights in every type
        return table

    def matrix(name: str, n_out: int, n_in: int) -> _Tensor:
        return _Tensor(name, (n_out, n_in), q_main, weights(q_main, n_out, n_in))

    def vector(name: str, n: int, make: Callable[[], np.ndarray]) -> _Tensor:
        return _Tensor(name, (n,), _Q.F32, make)

    tensors = [
        _Tensor("token_embd.weight", (s.n_vocab, s.n_embd), q_embd, embedding),
        vector("output_norm.weight", s.n_embd, ones(s.n_embd)),
    ]
    if not s.tied_embeddings:
        tensors.append(_Tensor("output.weight", (s.n_vocab, s.n_embd), q_embd, weights(q_embd, s.n_vocab, s.n_embd)))
    for i in range(s.n_layers):
        blk = f"blk.{i}"
        tensors += [
            vector(f"{blk}.attn_norm.weight", s.n_embd, ones(s.n_embd)),
            matrix(f"{blk}.attn_q.weight", s.n_embd, s.n_embd),
            matrix(f"{blk}.attn_k.weight", n_kv, s.n_embd),
            matrix(f"{blk}.attn_v.weight", n_kv, s.n_embd),
            matrix(f"{blk}.attn_output.weight", s.n_embd, s.n_embd),
            vector(f"{blk}.ffn_norm.weight", s.n_embd, ones(s.n_embd)),
            matrix(f"{blk}.ffn_gate.weight", s.n_ff, s.n_embd),
            matrix(f"{blk}.ffn_up.weight", s.n_ff, s.n_embd),
            matrix(f"{blk}.ffn_down.weight", s.n_embd, s.n_ff),
        ]
        if s.arch == "qwen2":
            tensors += [
                vector(f"{blk}.attn_q.bias", s.n_embd, weights(_Q.F32, s.n_embd)),
                vector(f"{blk}.attn_k.bias", n_kv, weights(_Q.F32, n_kv)),
                vector(f"{blk}.attn_v.bias", n_kv, weights(_Q.F32, n_kv)),
            ]

    writer = gguf.GGUFWriter(None, s.arch)
    writer.add_type("model")
    writer.add_name(f"random-{shape}-{qtype}")
    writer.add_file_type(_FILE_TYPES[qtype.lower()])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    _add_hparams(
        writer,
        n_vocab=s.n_vocab,
        n_ctx=s.n_ctx,
        n_embd=s.n_embd,
        n_layers=s.n_layers,
        n_ff=s.n_ff,
        n_head=s.n_head,
        n_head_kv=s.n_head_kv,
        rope_base=s.rope_base,
        rms_eps=s.rms_eps,
    )
    _add_tokenizer(writer, vocab, _PRE[s.arch], chat_template)
    return _write_gguf(Path(path), writer, tensors)


# --------------------------------------------------------------------------------------------------------------
# Prompts


def long_prompt(n_tokens_approx: int, *, seed: int = 0) -> str:
    """A deterministic English-looking text of about ``n_tokens_approx`` tokens, for prefill/cancellation tests.

    It is made of common words (:data:`TINY_WORDS`), one token each on the tiny models and on most real BPE
    vocabularies, in sentences of 8 to 15 words; expect within about 20 % of the asked count.
    """
    if n_tokens_approx < 1:
        raise ValueError("n_tokens_approx must be at least 1")
    rng = np.random.default_rng(seed)
    words = [w for w in TINY_WORDS if w.isalpha() and w.islower()]
    sentences: list[str] = []
    count = 0
    while count < n_tokens_approx:
        n = min(int(rng.integers(8, 16)), max(1, n_tokens_approx - count - 1))
        picked = [words[int(j)] for j in rng.integers(0, len(words), size=n)]
        sentences.append(" ".join(picked) + ".")
        count += n + 1  # the words and the full stop
    return " ".join(sentences)
