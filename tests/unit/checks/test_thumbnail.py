"""Thumbnails: 180x120 JPEG, big images scaled and cropped to fill, small ones centred on
white, transparency on white, and a blank one for what is not a readable, bounded image."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from postroom.checks import thumbnail as module
from postroom.checks.thumbnail import thumbnail


def encode(image: Image.Image, kind: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, kind)
    return out.getvalue()


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG" and image.size == (180, 120)
    return image.convert("RGB")


def close(pixel: tuple[int, ...], expected: tuple[int, int, int]) -> bool:
    return all(abs(a - b) < 40 for a, b in zip(pixel, expected, strict=False))


RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def test_big_image_is_cropped_to_fill() -> None:
    stripes = Image.new("RGB", (540, 120), RED)
    stripes.paste(GREEN, (180, 0, 360, 120))
    stripes.paste(BLUE, (360, 0, 540, 120))
    thumb = decode(thumbnail(encode(stripes, "JPEG")))
    for x, y in ((5, 5), (90, 60), (174, 114)):
        assert close(thumb.getpixel((x, y)), GREEN), (x, y)  # type: ignore[arg-type]


def test_small_image_is_padded_on_white() -> None:
    thumb = decode(thumbnail(encode(Image.new("RGB", (60, 40), RED))))
    assert close(thumb.getpixel((90, 60)), RED)  # type: ignore[arg-type]
    assert close(thumb.getpixel((5, 5)), WHITE)  # type: ignore[arg-type]
    # A long thin one is scaled down to fit, then padded.
    thin = decode(thumbnail(encode(Image.new("RGB", (900, 30), BLUE))))
    assert close(thin.getpixel((90, 60)), BLUE)  # type: ignore[arg-type]
    assert close(thin.getpixel((90, 5)), WHITE)  # type: ignore[arg-type]


def test_transparency_becomes_white_and_gif_takes_its_first_frame() -> None:
    clear = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    thumb = decode(thumbnail(encode(clear)))
    assert close(thumb.getpixel((90, 60)), WHITE)  # type: ignore[arg-type]
    frames = [Image.new("RGB", (200, 150), c) for c in (RED, BLUE)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    assert close(decode(thumbnail(out.getvalue())).getpixel((90, 60)), RED)  # type: ignore[arg-type]


def test_unreadable_or_too_many_pixels_gives_blank(monkeypatch: pytest.MonkeyPatch) -> None:
    for data in (b"", b"not an image", encode(Image.new("RGB", (50, 50), RED))[:40]):
        thumb = decode(thumbnail(data))
        assert thumb.getextrema() == ((255, 255), (255, 255), (255, 255)), data[:20]
    monkeypatch.setattr(module, "MAX_PIXELS", 100)
    thumb = decode(thumbnail(encode(Image.new("RGB", (20, 20), RED))))
    assert close(thumb.getpixel((90, 60)), WHITE)  # type: ignore[arg-type]
