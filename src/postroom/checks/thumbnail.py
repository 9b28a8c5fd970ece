"""Image thumbnails as Mailpit makes them: a 180x120 JPEG, the image scaled and cropped to
fill it, or a smaller image centred on a white background; a blank one for a part that is
not an image Pillow can read.

Bounded input: the caller passes at most MAX_INPUT bytes; an image of more than MAX_PIXELS
pixels (read from its header, before any decoding) gets the blank thumbnail, as does anything
Pillow cannot decode (so a decompression bomb costs a header read)."""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps

WIDTH, HEIGHT = 180, 120
MAX_INPUT = 20 * 1024 * 1024  # bytes of image data read for one thumbnail
MAX_PIXELS = 50_000_000
BACKGROUND = (255, 255, 255)
QUALITY = 85


def blank() -> bytes:
    return _jpeg(Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND))


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=QUALITY)
    return out.getvalue()


def thumbnail(data: bytes) -> bytes:
    """The thumbnail of the image in `data` (the blank one when it is none we can read)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as source:
                width, height = source.size
                if width < 1 or height < 1 or width * height > MAX_PIXELS:
                    return blank()
                source.draft("RGB", (WIDTH * 2, HEIGHT * 2))  # JPEG: decode at a smaller scale
                image = _flatten(source)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Warning):
        return blank()
    if image.width >= WIDTH and image.height >= HEIGHT:
        return _jpeg(ImageOps.fit(image, (WIDTH, HEIGHT), Image.Resampling.LANCZOS))
    image.thumbnail((WIDTH, HEIGHT), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    canvas.paste(image, ((WIDTH - image.width) // 2, (HEIGHT - image.height) // 2))
    return _jpeg(canvas)


def _flatten(source: Image.Image) -> Image.Image:
    """The first frame as RGB, transparency on white; EXIF orientation applied."""
    source.seek(0)
    image = ImageOps.exif_transpose(source)
    if image.mode in ("RGBA", "LA", "P", "PA"):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, BACKGROUND)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")
