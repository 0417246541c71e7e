"""Read still images of any common mode as 8-bit RGB arrays, turned upright, and write the
app's own (snapshots, alert crops).

Phone photos are often stored sideways with an EXIF Orientation tag that viewers obey; faces
are only found, and boxes only land where the user sees them, on the upright picture.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from app.atomic import final_name

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


def write_image(path: Path, frame_bgr: np.ndarray, quality: int | None = None) -> None:
    """Write a BGR frame to ``path`` as it is (callers pick a temporary name), in the format
    of its suffix; ``quality`` for JPEG.

    Encoded in memory, then written as plain bytes: on a full disk OpenCV lets libpng print
    its own line, Qt gives no reason, and Pillow's JPEG encoder leaves a cut-off file without
    a word; a plain write raises OSError, said here with the file and why.
    """
    path = Path(path)
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None:
        raise OSError(f"cannot write image {final_name(path)} (no image format is named so)")
    encoded = io.BytesIO()
    options = {} if quality is None else {"quality": quality}
    Image.fromarray(np.ascontiguousarray(frame_bgr[:, :, ::-1])).save(
        encoded, image_format, **options
    )
    try:
        with open(path, "wb") as file:
            file.write(encoded.getbuffer())
    except OSError as exc:
        raise OSError(f"cannot write image {final_name(path)} ({exc.strerror or exc})") from None


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

# Chroma (brightest minus dimmest channel) at the 99th percentile of the sampled pixels, on a
# scale where the frame's brightness (the 90th percentile of its brightest channel) is 255.
# Through mp4v, grey clips stay under 9 and the first grey frames after colour ones under 22;
# the least colourful frames of ../shared/data (scenes, videos, at any brightness) reach 28.
GREY_CHROMA = 24
DARK_LEVEL = 96  # below this brightness codec noise looks like colour: a frame tells nothing
FLAT_LEVELS = 12  # brightness range (10th to 90th percentile) of a frame that shows nothing
SAMPLE_SIDE = 80  # pixels along the longer side of the sample a frame is judged on
COLOUR_CHECK_S = 1.0  # media seconds between two looks at a run's colour


def _percentile(counts: np.ndarray, q: float) -> int:
    """The q-th percentile (0 to 1) of uint8 values given as a histogram."""
    return int(np.searchsorted(np.cumsum(counts), q * counts.sum()))


def looks_grey(frame: np.ndarray) -> bool | None:
    """Whether a frame carries no colour: True for grey, False for colour, None for a frame
    too dark or too flat to tell (black, a fade, a blank card), which is neither.

    It is judged on about 80 x 60 sampled pixels, so it costs little; a frame with one
    channel is grey whatever it shows.
    """
    if frame.ndim < 3 or frame.shape[2] < 3:
        return True
    step = max(1, max(frame.shape[:2]) // SAMPLE_SIDE)
    first, second, third = (frame[::step, ::step, channel] for channel in range(3))
    brightest = np.maximum(np.maximum(first, second), third)  # not .max(axis=2): 20x slower
    dimmest = np.minimum(np.minimum(first, second), third)
    levels = np.bincount(brightest.ravel(), minlength=256)
    bright = _percentile(levels, 0.9)
    if bright < DARK_LEVEL or bright - _percentile(levels, 0.1) < FLAT_LEVELS:
        return None
    chroma = _percentile(np.bincount((brightest - dimmest).ravel(), minlength=256), 0.99)
    return chroma * 255 < GREY_CHROMA * bright


class ColourWatch:
    """Follows whether a run's picture has colour, looking about once a second of media time.

    A source may change kind mid-run (a day/night camera turns to infrared at dusk) and a
    clip may open on black, so one look at the first frame is not enough; frames that cannot
    tell (``looks_grey`` gives None) change nothing. A run counts as colour until a frame
    shows otherwise.
    """

    def __init__(self, every_s: float = COLOUR_CHECK_S) -> None:
        self.every_s = every_s
        self.grey = False  # what the last frame that could tell showed
        self.grey_turns = 0  # how often the picture has lost its colour this run
        self._looked_s: float | None = None

    def update(self, frame: np.ndarray, time_s: float) -> bool | None:
        """Look at ``frame`` if a look is due (the first frame, then ``every_s`` later, or
        when the media time went back); the new state (True: grey) if the picture has just
        changed, else None."""
        since = None if self._looked_s is None else time_s - self._looked_s
        if since is not None and 0 <= since < self.every_s:
            return None
        self._looked_s = time_s
        grey = looks_grey(frame)
        if grey is None or grey == self.grey:
            return None
        self.grey = grey
        self.grey_turns += grey
        return grey
