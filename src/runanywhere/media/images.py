"""Images for vision models: any common form in, an RGB ``uint8`` array of at most ``max_side`` pixels out.

Accepted: a numpy array (``(H, W, 3)`` RGB; RGBA, ``(H, W)`` and ``(H, W, 1)`` grayscale are converted),
a PIL image, PNG/JPEG/WebP/... bytes, a ``data:`` URL or bare base64 text, or a file path. A web URL is
refused: the SDK never fetches anything on its own. Bad input is an :class:`InvalidInputError` saying what
was wrong. Pillow (``pip install pillow``) decodes and resizes; it is imported on first use.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import InvalidInputError, SDKErrorCode, SDKFileNotFoundError
from ..core.validation import positive_int

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

ImageInput = Any
"""What a vision call takes as one image (see the module docstring)."""

DEFAULT_MAX_SIDE = 512
MAX_SIDE = 16384
"""The largest image side accepted (larger images are refused before they are decoded)."""
MAX_PIXELS = 100_000_000

_DATA_URL = re.compile(r"^data:image/[\w.+-]+;base64,", re.IGNORECASE)
_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]+$")


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError as exc:
        raise InvalidInputError("decoding images needs Pillow: pip install 'runanywhere[vision]'",
                                code=SDKErrorCode.INVALID_INPUT) from exc
    return Image


def load_image(image: ImageInput, *, max_side: int = DEFAULT_MAX_SIDE) -> NDArray[np.uint8]:
    """``image`` as a contiguous RGB ``uint8`` array, shrunk (aspect kept) so its longer side is ``max_side``."""
    positive_int("max_side", max_side)
    return fit_max_side(to_rgb(image), max_side)


def to_rgb(image: ImageInput) -> NDArray[np.uint8]:
    """Any accepted image form as an ``(H, W, 3)`` RGB ``uint8`` array, at its own size."""
    import numpy as np

    if isinstance(image, np.ndarray):
        return _from_array(image)
    if isinstance(image, bytes | bytearray | memoryview):
        return _decode(bytes(image), "the image bytes")
    if isinstance(image, os.PathLike):
        return _from_path(Path(image))
    if isinstance(image, str):
        return _from_text(image)
    if _is_pil(image):
        return _from_pil(image, "the PIL image")
    raise InvalidInputError(
        f"an image is a numpy array, PIL image, bytes, base64/data: URL or path, not {type(image).__name__}",
        code=SDKErrorCode.INVALID_INPUT)


def fit_max_side(rgb: NDArray[np.uint8], max_side: int) -> NDArray[np.uint8]:
    """``rgb`` shrunk (bicubic, aspect kept) so that neither side exceeds ``max_side``; as is if it fits."""
    import numpy as np

    height, width = rgb.shape[:2]
    if max(height, width) <= max_side:
        return rgb
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = _pil().fromarray(rgb, "RGB").resize(size, resample=_pil().Resampling.BICUBIC)
    return np.ascontiguousarray(np.asarray(resized, dtype=np.uint8))


def _checked_size(width: int, height: int, what: str) -> None:
    if width <= 0 or height <= 0:
        raise InvalidInputError(f"{what} is empty ({width}×{height})", code=SDKErrorCode.INVALID_INPUT)
    if max(width, height) > MAX_SIDE or width * height > MAX_PIXELS:
        raise InvalidInputError(
            f"{what} is {width}×{height}; images up to {MAX_SIDE} pixels a side and {MAX_PIXELS // 1_000_000} "
            "megapixels are accepted: scale it down first", code=SDKErrorCode.INVALID_INPUT)


def _from_array(array: Any) -> NDArray[np.uint8]:
    import numpy as np

    if array.dtype != np.uint8:
        raise InvalidInputError(
            f"an image array must be uint8 (0-255), got {array.dtype}; for floats in [0, 1] pass "
            "(x * 255).round().astype(np.uint8)", code=SDKErrorCode.INVALID_INPUT)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        _checked_size(array.shape[1], array.shape[0], "the image array")
        return np.ascontiguousarray(np.repeat(array[:, :, None], 3, axis=2))
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise InvalidInputError(
            f"an image array is (H, W, 3) RGB, (H, W, 4) RGBA or (H, W) grayscale, got shape {array.shape}",
            code=SDKErrorCode.INVALID_INPUT)
    _checked_size(array.shape[1], array.shape[0], "the image array")
    return np.ascontiguousarray(array[:, :, :3])


def _is_pil(image: Any) -> bool:
    return type(image).__module__.startswith("PIL.") and hasattr(image, "convert") and hasattr(image, "size")


def _from_pil(image: Any, what: str) -> NDArray[np.uint8]:
    import numpy as np

    width, height = image.size
    _checked_size(width, height, what)
    try:
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            image = image.convert("RGBA")  # alpha is dropped below, after a palette is expanded
        rgb = image.convert("RGB")
        rgb.load()
    except (OSError, ValueError, SyntaxError) as exc:  # Pillow's errors for truncated or corrupt data
        raise InvalidInputError(f"{what} could not be decoded: {exc}", code=SDKErrorCode.INVALID_INPUT) from exc
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def _decode(data: bytes, what: str) -> NDArray[np.uint8]:
    if not data:
        raise InvalidInputError(f"{what} are empty", code=SDKErrorCode.INVALID_INPUT)
    image_module = _pil()
    try:
        image = image_module.open(io.BytesIO(data))
    except image_module.DecompressionBombError as exc:
        raise InvalidInputError(f"{what} hold an image too large to decode safely ({exc}); scale it down first",
                                code=SDKErrorCode.INVALID_INPUT) from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidInputError(f"{what} are not an image Pillow can read (PNG, JPEG, WebP, ...): {exc}",
                                code=SDKErrorCode.INVALID_INPUT) from exc
    with image:
        return _from_pil(image, what)


def _from_path(path: Path) -> NDArray[np.uint8]:
    if not _is_file(path):
        raise SDKFileNotFoundError(f"image file not found: {path}", details={"path": str(path)})
    return _decode(path.read_bytes(), f"the contents of {path.name}")


def _from_text(text: str) -> NDArray[np.uint8]:
    stripped = text.strip()
    lowered = stripped[:16].lower()
    if lowered.startswith(("http://", "https://", "ftp://")):
        raise InvalidInputError(
            "image URLs are not fetched (the SDK makes no network requests on its own); download the image "
            "and pass its bytes, path or a data: URL", code=SDKErrorCode.INVALID_INPUT)
    if _DATA_URL.match(stripped):
        return _decode(_b64(stripped.split(",", 1)[1]), "the data: URL's bytes")
    if lowered.startswith("data:"):
        raise InvalidInputError("a data: URL image must be data:image/...;base64,...",
                                code=SDKErrorCode.INVALID_INPUT)
    if lowered.startswith("file://"):
        return _from_path(Path(stripped[7:]))
    path = Path(stripped).expanduser()
    if len(stripped) >= 16 and _BASE64.match(stripped) and not _is_file(path):
        return _decode(_b64(stripped), "the base64 text's bytes")
    return _from_path(path)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # e.g. a name too long to be a path (long base64 text)
        return False


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInputError(f"the image is not valid base64: {exc}", code=SDKErrorCode.INVALID_INPUT) from exc
