"""Read still images of any common mode as 8-bit RGB arrays, turned upright.

Phone photos are often stored sideways with an EXIF Orientation tag that viewers obey; faces
are only found, and boxes only land where the user sees them, on the upright picture.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)


class ImageError(ValueError):
    """An image file that cannot be decoded into pixels."""


def to_rgb8(image: Image.Image) -> np.ndarray:
    """Convert grayscale, RGBA, palette and 16-bit images to H x W x 3 uint8 RGB."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        data = np.asarray(image, dtype=np.float64)
        peak = data.max() if data.size else 0
        data = data / (65535.0 if peak > 255 else 255.0) * 255.0
        image = Image.fromarray(np.clip(data, 0, 255).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


@contextlib.contextmanager
def pillow_warnings_logged(path: Path):
    """Pillow's warnings within the block as one log line each that names the file (it
    would print them with its own source path and line). Its warning for images above half
    its size limit is dropped: such images are read, so there is nothing to say."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    said = set()
    for warning in caught:
        text = str(warning.message)
        if issubclass(warning.category, Image.DecompressionBombWarning) or text in said:
            continue
        said.add(text)
        log.warning("%s: %s", path, text)


def read_rgb(path: Path) -> np.ndarray:
    """Decode an image file to RGB; raise ImageError with the file name if that fails.

    That includes an image over Pillow's decompression-bomb limit (about 179 million
    pixels), which a few kilobytes of PNG can claim.
    """
    try:
        with pillow_warnings_logged(path), Image.open(path) as image:
            image.load()
            array = to_rgb8(ImageOps.exif_transpose(image))
    except Image.DecompressionBombError as exc:  # not an OSError: Pillow's own limit
        raise ImageError(f"cannot read image {path}: too large ({exc})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"cannot read image {path}: {exc}") from None
    if array.size == 0 or array.shape[0] < 1 or array.shape[1] < 1:
        raise ImageError(f"image {path} has no pixels")
    return array


# Measured on 60 + 60 photos of ../shared/data/faces turned grey (README, Known shortcomings).
GREY_NOTE = (
    "the picture has no colour (an infrared or night camera?): the classifiers learnt on "
    "colour photos, and on grey ones the student labels about half the unmasked faces mask; "
    "the teacher does better"
)


GREY_SPREAD = 12  # channel difference that 99% of a grey picture's pixels stay under


def looks_grey(frame: np.ndarray) -> bool:
    """Whether a frame carries no colour: its channels agree (sampled, so it costs little)."""
    if frame.ndim < 3 or frame.shape[2] < 3:
        return True
    sample = frame[::8, ::8, :3].astype(np.int16)
    spread = np.abs(sample[..., 0] - sample[..., 1]) + np.abs(sample[..., 1] - sample[..., 2])
    if not spread.size:
        return False
    # A grey picture through a video codec keeps some chroma noise (99th percentile about 5
    # here); the least colourful colour photo of the shared scenes has 19, video clips 50+.
    return float(np.percentile(spread, 99)) < GREY_SPREAD
