"""Images in every accepted form become the same RGB array; bad images are clear errors, never crashes."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from runanywhere import InvalidInputError, SDKFileNotFoundError, load_image
from runanywhere.media.images import to_rgb


def picture(height: int = 48, width: int = 64) -> np.ndarray:
    """A deterministic colourful RGB picture."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], axis=2).astype(np.uint8)


def png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def test_every_lossless_form_gives_the_same_pixels(tmp_path: Path):
    rgb = picture()
    data = png(rgb)
    path = tmp_path / "picture.png"
    path.write_bytes(data)
    b64 = base64.b64encode(data).decode()
    forms = [rgb, Image.fromarray(rgb), data, bytearray(data), b64, f"data:image/png;base64,{b64}", str(path), path,
             f"file://{path}"]
    big = picture(300, 400)
    assert np.array_equal(load_image(base64.b64encode(png(big)).decode()), big)  # long text: not a path
    for form in forms:
        out = load_image(form)
        assert out.dtype == np.uint8 and out.shape == rgb.shape and out.flags.c_contiguous
        assert np.array_equal(out, rgb), type(form)


def test_webp_and_jpeg_decode_to_rgb():
    rgb = picture()
    for fmt in ("WEBP", "JPEG"):
        out = io.BytesIO()
        Image.fromarray(rgb).save(out, format=fmt, quality=95)
        decoded = load_image(out.getvalue())
        assert decoded.shape == rgb.shape
        assert np.abs(decoded.astype(int) - rgb).mean() < 8  # lossy, but the same picture


def test_rgba_and_grayscale_are_converted():
    rgb = picture()
    rgba = np.concatenate([rgb, np.full((*rgb.shape[:2], 1), 128, np.uint8)], axis=2)
    assert np.array_equal(load_image(rgba), rgb)
    gray = rgb[:, :, 0]
    for form in (gray, gray[:, :, None], Image.fromarray(gray), png(gray)):
        out = load_image(form)
        assert out.shape == rgb.shape and np.array_equal(out[:, :, 1], gray) and np.array_equal(out[:, :, 2], gray)
    assert load_image(Image.fromarray(rgba, "RGBA")).shape == rgb.shape


def test_large_images_are_shrunk_keeping_the_aspect_ratio():
    big = picture(600, 1200)
    assert load_image(big).shape == (256, 512, 3)  # default max side 512
    assert load_image(big, max_side=300).shape == (150, 300, 3)
    small = picture(40, 30)
    assert np.array_equal(load_image(small, max_side=100), small)  # never enlarged


@pytest.mark.parametrize(("image", "words"), [
    (np.zeros((4, 4, 2), np.uint8), "shape"),
    (np.zeros((4, 4, 3), np.float32), "uint8"),
    (np.zeros((0, 5, 3), np.uint8), "empty"),
    (np.broadcast_to(np.zeros(1, np.uint8), (20000, 20000, 3)), "scale it down"),
    (b"", "empty"),
    (b"this is not an image at all", "not an image"),
    ("http://example.com/cat.jpg", "not fetched"),
    ("https://example.com/cat.jpg", "not fetched"),
    ("data:text/plain;base64,aGVsbG8=", "data:image"),
    ("data:image/png;base64,@@@@", "base64"),
    (12345, "numpy array"),
    (None, "numpy array"),
])
def test_bad_images_are_invalid_input(image: object, words: str):
    with pytest.raises(InvalidInputError, match=words):
        to_rgb(image)


def test_truncated_png_is_invalid_input():
    data = png(picture(200, 200))
    with pytest.raises(InvalidInputError, match="truncated"):
        load_image(data[: len(data) // 2])


def test_a_huge_png_is_refused_before_it_is_decoded():
    out = io.BytesIO()
    Image.new("1", (20000, 20000)).save(out, format="PNG")  # 400 megapixels, a few kB compressed
    with pytest.raises(InvalidInputError, match="too large"):
        load_image(out.getvalue())
    out = io.BytesIO()
    Image.new("1", (16500, 100)).save(out, format="PNG")  # small, but too long a side
    with pytest.raises(InvalidInputError, match="16500×100"):
        load_image(out.getvalue())


def test_files_that_are_missing_or_not_images(tmp_path: Path):
    with pytest.raises(SDKFileNotFoundError):
        load_image(tmp_path / "nope.png")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(InvalidInputError, match="notes"):
        load_image(text)
    with pytest.raises(InvalidInputError, match="max_side"):
        load_image(picture(), max_side=0)
