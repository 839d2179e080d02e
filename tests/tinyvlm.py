"""A random-weight vision projector (mmproj GGUF) written on the fly, for tests and benchmarks.

No vision-language weights are reachable offline, so the suite writes a CLIP-style projector in the exact
format the bundled llama.cpp's ``clip`` loader reads (``MODELS.md``, "Vision-language models"): a small ViT
(patch embedding, class and position embeddings, pre-norm blocks) and a two-layer MLP projector whose output
width is the language model's embedding width. Next to a real language model (SmolLM2-135M: 576 wide) it runs
the real multimodal path of llama.cpp: image → ViT → projector → language model. The weights are random, so
the answers are meaningless: it tests plumbing and speed, never quality.

With ``image_size`` 56 and ``patch_size`` 14 an image becomes 16 image tokens; larger sizes and more blocks make
the image encoding slower (for cancellation tests and benchmarks). :func:`write_video` writes a short video
file of flat colours, for frame-capture tests. :func:`register_tiny_vision` puts SmolLM2 and such a projector
in a library as one vision-capable model (what a server serves to vision clients).
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

from runanywhere.models.manager import ModelLibrary

__all__ = ["COLOURS", "SMOLLM2_EMBD", "TINY_VISION", "image_tokens", "register_tiny_vision", "write_tiny_mmproj",
           "write_video"]

SMOLLM2_EMBD = 576
"""The embedding width of SmolLM2-135M: what its projector must output."""


def image_tokens(image_size: int = 56, patch_size: int = 14) -> int:
    """How many image tokens the projector gives for one image (one per patch)."""
    return (image_size // patch_size) ** 2


def write_tiny_mmproj(path: Path, *, n_embd_text: int = SMOLLM2_EMBD, image_size: int = 56, patch_size: int = 14,
                      width: int = 64, blocks: int = 2, heads: int = 4, seed: int = 0) -> Path:
    """Write a random CLIP projector whose output is ``n_embd_text`` wide; returns ``path``."""
    rng = np.random.default_rng(seed)
    patches = (image_size // patch_size) ** 2
    ffn = width * 4

    def w(*shape: int, scale: float = 0.02) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    writer = gguf.GGUFWriter(str(path), "clip")
    for flag, on in (("has_vision_encoder", True), ("has_text_encoder", False), ("use_gelu", True)):
        writer.add_bool(f"clip.{flag}", on)
    writer.add_string("clip.projector_type", "mlp")
    sizes = {"image_size": image_size, "patch_size": patch_size, "embedding_length": width,
             "feed_forward_length": ffn, "projection_dim": n_embd_text, "block_count": blocks,
             "attention.head_count": heads}
    for key, value in sizes.items():
        writer.add_uint32(f"clip.vision.{key}", value)
    writer.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-5)
    writer.add_array("clip.vision.image_mean", [0.5, 0.5, 0.5])
    writer.add_array("clip.vision.image_std", [0.5, 0.5, 0.5])
    tensors: dict[str, np.ndarray] = {
        "v.patch_embd.weight": w(width, 3, patch_size, patch_size).astype(np.float16),
        "v.class_embd": w(width),
        "v.position_embd.weight": w(patches + 1, width),
        "v.pre_ln.weight": np.ones(width, np.float32),
        "v.pre_ln.bias": np.zeros(width, np.float32),
    }
    for i in range(blocks):
        block = f"v.blk.{i}"
        for name in ("attn_q", "attn_k", "attn_v", "attn_out"):
            tensors[f"{block}.{name}.weight"] = w(width, width).astype(np.float16)
            tensors[f"{block}.{name}.bias"] = np.zeros(width, np.float32)
        for name in ("ln1", "ln2"):
            tensors[f"{block}.{name}.weight"] = np.ones(width, np.float32)
            tensors[f"{block}.{name}.bias"] = np.zeros(width, np.float32)
        tensors[f"{block}.ffn_up.weight"] = w(ffn, width).astype(np.float16)
        tensors[f"{block}.ffn_up.bias"] = np.zeros(ffn, np.float32)
        tensors[f"{block}.ffn_down.weight"] = w(width, ffn).astype(np.float16)
        tensors[f"{block}.ffn_down.bias"] = np.zeros(width, np.float32)
    tensors["mm.0.weight"] = w(n_embd_text, width, scale=0.5).astype(np.float16)
    tensors["mm.0.bias"] = np.zeros(n_embd_text, np.float32)
    tensors["mm.2.weight"] = w(n_embd_text, n_embd_text, scale=0.05).astype(np.float16)
    tensors["mm.2.bias"] = np.zeros(n_embd_text, np.float32)
    for name, data in tensors.items():
        writer.add_tensor(name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


TINY_VISION = "smollm2-tiny-vision"
"""The id :func:`register_tiny_vision` registers."""


def register_tiny_vision(library: ModelLibrary, folder: Path, smollm2: Path) -> str:
    """Register ``smollm2`` with a projector written into ``folder`` as the multimodal model ``TINY_VISION``."""
    from runanywhere.backends.llamacpp_vision import MMPROJ
    from runanywhere.core.engines import WEIGHTS

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lm.gguf").symlink_to(smollm2)
    write_tiny_mmproj(folder / "mmproj.gguf")
    library.register({"id": TINY_VISION, "name": "SmolLM2 with a random test projector", "category": "multimodal",
                      "format": "gguf", "engine": "llamacpp", "local_path": str(folder),
                      "files": [{"path": "lm.gguf", "role": WEIGHTS}, {"path": "mmproj.gguf", "role": MMPROJ}]})
    return TINY_VISION


COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
"""The RGB colour of each second of a :func:`write_video` file, in turn."""


def write_video(path: Path, *, seconds: int, fps: int, size: tuple[int, int] = (64, 48)) -> Path:
    """A Motion-JPEG AVI (written with OpenCV) whose frames are one flat colour per second (``COLOURS``)."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    for i in range(seconds * fps):
        red, green, blue = COLOURS[(i // fps) % len(COLOURS)]
        writer.write(np.full((size[1], size[0], 3), (blue, green, red), np.uint8))  # OpenCV writes BGR
    writer.release()
    return path
