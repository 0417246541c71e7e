"""Open video sources: a webcam index, a video file or a stream URL, as OpenCV reads them."""

from __future__ import annotations

import base64
import http.client
import logging
import math
import os
import re
import shutil
import socket
import ssl
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Self
from urllib.parse import unquote, urlsplit, urlunsplit

import cv2
import numpy as np

from app.images import pillow_warnings_logged

log = logging.getLogger(__name__)

# What a video file's name ends with, as the window's file dialog offers them.
CLIP_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
STREAM_PREFIXES = ("rtsp://", "rtmp://", "http://", "https://", "udp://", "tcp://")
STREAM_TIMEOUT_MS = 5000
MAX_CAMERA_INDEX = 999  # a larger number is a typo, not a camera (the window allows 0-999)
MIN_FPS, MAX_FPS, FALLBACK_FPS = 0.01, 1000.0, 30  # a time-lapse export may be 0.1 fps
DEFAULT_PORTS = {"rtsp": 554, "rtmp": 1935, "http": 80, "https": 443}


# EXIF Orientation -> what turns the stored pixels upright (1 and unknown values: nothing).
UPRIGHT = {
    2: lambda f: cv2.flip(f, 1),
    3: lambda f: cv2.rotate(f, cv2.ROTATE_180),
    4: lambda f: cv2.flip(f, 0),
    5: cv2.transpose,
    6: lambda f: cv2.rotate(f, cv2.ROTATE_90_CLOCKWISE),
    7: lambda f: cv2.flip(cv2.transpose(f), -1),
    8: lambda f: cv2.rotate(f, cv2.ROTATE_90_COUNTERCLOCKWISE),
}


class SourceError(RuntimeError):
    """A source that cannot be opened or read."""


@dataclass
class SourceInfo:
    spec: str
    kind: str  # camera, file or stream
    width: int
    height: int
    fps: float
    frame_count: int


def is_utf8(name: str) -> bool:
    """False for a name holding bytes that are not UTF-8 (Python keeps them as surrogates),
    which OpenCV and Qt cannot take."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown_name(name: str) -> str:
    """``name`` as it can be printed: bytes that are not UTF-8 are written as ``\\xe9``."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


# Query parameters that carry a login (many IP cameras take ?user=...&pwd=...).
SECRET_PARAMS = re.compile(r"pass|pwd|secret|token|key|auth|sig|session", re.IGNORECASE)


def _where_looked(path: Path) -> str:
    """For a relative name that names no file, the folder it was looked for in: the app is
    often started from another folder than the one the user's clip is in."""
    if path.is_absolute():
        return ""
    return f" (looked for in {Path.cwd()}; give its full path if it lies elsewhere)"


def plain_source(spec: str) -> str:
    """``spec`` with a file URL, as a browser copies it (``file:///v/my%20clip.mp4``,
    ``file://localhost/v/clip.mp4``), turned into the path it names; anything else as is."""
    spec = str(spec)
    if not spec.lower().startswith("file://"):
        return spec
    rest = spec[len("file://") :]
    if rest.lower().startswith("localhost/"):
        rest = rest[len("localhost") :]
    return unquote(rest, errors="surrogateescape")


def shown_source(spec: str) -> str:
    """``spec`` as messages show it: a stream URL's password, and query values that look
    like one (``?pwd=...``), replaced by ``***``, so that a log, a screenshot or a pasted
    error does not give a camera's login away."""
    spec = str(spec)
    if describe(spec) != "stream":
        return spec
    scheme, rest = spec.split("://", 1)
    cut = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
    authority, rest = rest[:cut], rest[cut:]
    login, at, host = authority.rpartition("@")  # a password may hold "@" itself
    if at and ":" in login:
        authority = f"{login.split(':', 1)[0]}:***@{host}"
    return f"{scheme}://{authority}{re.sub(r'[?&#;]([^=&#;]*)=([^&#;]*)', _masked, rest)}"


def _masked(param: re.Match) -> str:
    """A ``key=value`` of a query or fragment, its value hidden when the key names a secret."""
    if SECRET_PARAMS.search(param.group(1)):
        return param.group(0)[: -len(param.group(2)) or None] + "***"
    return param.group(0)


def source_title(spec: str) -> str:
    """A short name of a source for titles and progress bars: a file's name, a stream's
    shown URL, ``camera 0``."""
    spec = str(spec)
    kind = describe(spec)
    if kind == "camera":
        return f"camera {spec}"
    if kind == "stream":
        return shown_source(spec)
    return shown_name(Path(spec).name or spec)


def ffmpeg_name(path: Path) -> str:
    """``path`` as FFmpeg must be given it: absolute, since a relative ``cam1:2024.mp4`` reads
    to FFmpeg as protocol ``cam1``."""
    return str(Path(path).absolute())


def describe(spec: str) -> str:
    """What a source names: "camera" (an index such as 0 or -1), "stream" or "file"."""
    spec = str(spec)
    if re.fullmatch(r"-?[0-9]+", spec):  # str.isdigit would also take "²" and other digits
        return "camera"
    if spec.lower().startswith(STREAM_PREFIXES):
        return "stream"
    return "file"


class VideoSource:
    """A readable source of BGR frames; raise SourceError rather than return nothing silently."""

    def __init__(self, spec: str | int):
        self.spec = str(spec)
        if not self.spec.strip():
            raise SourceError("no source given: name a camera index, a video file or a URL")
        self.spec = plain_source(self.spec)
        self.kind = describe(self.spec)
        if self.kind == "file" and self.spec.startswith("~"):  # typed in the window, say
            self.spec = os.path.expanduser(self.spec)
        if self.kind == "stream":  # FFmpeg knows its protocols in lower case only
            scheme, rest = self.spec.split("://", 1)
            self.spec = f"{scheme.lower()}://{rest}"
        self._orientation = 1  # a still image's EXIF orientation, which FFmpeg ignores
        self.capture = self._open()
        ok, first = self.capture.read()
        if not ok or first is None or first.size == 0:
            self.close()
            raise SourceError(self._no_frames_message())
        first = self._upright(first)
        self._pending: np.ndarray | None = first
        self.frames_read = 0  # frames handed out by read()
        self._first_read_at = self._read_at = time.monotonic()
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        stated = self.capture.get(cv2.CAP_PROP_FRAME_COUNT)
        stated = int(stated) if self.kind != "camera" and math.isfinite(stated) else 0
        # A stream whose container states its length is a recording served over the network
        # (a video file behind http://); live feeds state none. A GIF states none either, so
        # a URL naming a media file by its suffix counts as a recording too.
        self.recorded = self.kind == "file" or stated > 0 or names_a_recording(self.spec)
        self.info = SourceInfo(
            self.spec,
            self.kind,
            first.shape[1],
            first.shape[0],
            self._frame_rate(fps),
            max(stated, 0) if self.recorded else 0,
        )

    def _open(self) -> cv2.VideoCapture:
        if self.kind == "camera":
            # A file named like an index ("5") is read as a camera; say how to name the file.
            hint = f" (for the file {self.spec} here, give ./{self.spec})"
            hint = hint if os.path.isfile(self.spec) else ""
            if not 0 <= int(self.spec) <= MAX_CAMERA_INDEX:
                raise SourceError(
                    f"no camera at index {self.spec}: indices run from 0 to {MAX_CAMERA_INDEX}"
                    + hint
                )
            try:
                capture = cv2.VideoCapture(int(self.spec))
            except (cv2.error, OverflowError):
                raise SourceError(f"no camera at index {self.spec}{hint}") from None
            if not capture.isOpened():
                raise SourceError(f"no camera at index {self.spec}{hint}")
            return capture
        if self.kind == "file":
            path = Path(self.spec)
            if not is_utf8(self.spec):  # OpenCV crashes on such a name
                raise SourceError(
                    f"the file name {shown_name(self.spec)} is not valid UTF-8; rename the file"
                )
            try:
                exists = path.exists()
            except OSError as exc:  # a name too long for the file system, say
                reason = (exc.strerror or str(exc)).lower()
                raise SourceError(f"video file {self.spec} cannot be opened: {reason}") from None
            if not exists:
                scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", self.spec)
                if scheme:  # ftp://, sftp://, smb:// ... : a URL, not a missing file
                    prefixes = ", ".join(STREAM_PREFIXES)
                    raise SourceError(
                        f"{self.spec}: {scheme.group(1)}:// is not a stream MaskWatch can read; "
                        f"use a URL starting with one of {prefixes}, or a file"
                    )
                raise SourceError(f"video file {self.spec} not found{_where_looked(path)}")
            if path.is_file() and path.stat().st_size == 0:
                raise SourceError(f"{self.spec} is an empty file (0 bytes)")
            if path.is_dir():
                raise SourceError(f"{self.spec} is a folder, not a video file")
            if not path.is_file():  # a pipe or device would block the open forever
                raise SourceError(f"{self.spec} is not a regular file (a pipe or a device?)")
            capture = cv2.VideoCapture(self._plain_name(path))
            if not capture.isOpened():
                self._remove_link()
                if _has_media_header(path):
                    raise SourceError(self._no_frames_message())
                raise SourceError(f"{self.spec} is not a video or image OpenCV can read")
            try:  # any suffix: a photo may be .jfif, or have none
                self._orientation = inspect_still(path)
            except SourceError:
                capture.release()
                self._remove_link()
                raise
            return capture
        check_url(self.spec)
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            STREAM_TIMEOUT_MS,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            STREAM_TIMEOUT_MS,
        ]
        started = time.monotonic()
        capture = cv2.VideoCapture(self.spec, cv2.CAP_FFMPEG, params)
        if not capture.isOpened():
            waited = time.monotonic() - started
            raise SourceError(
                f"stream {shown_source(self.spec)} could not be opened "
                f"({why_stream_failed(self.spec, waited)})"
            )
        return capture

    def _frame_rate(self, fps: float) -> float:
        """The source's frame rate; time stamps, alerts and statistics all depend on it."""
        if fps and math.isfinite(fps) and MIN_FPS <= fps <= MAX_FPS:
            return float(fps)
        if self.kind == "file":  # cameras and streams often report 0: nothing to warn about
            log.warning(
                "%s reports %r frames per second; assuming %d", self.spec, fps, FALLBACK_FPS
            )
        return float(FALLBACK_FPS)

    def _no_frames_message(self) -> str:
        if self.kind == "camera":
            return f"camera {self.spec} opened but delivers no frames"
        if self.kind == "file":
            if _has_media_header(Path(plain_source(self.spec))):
                return f"{self.spec} holds no frames OpenCV can read ({EMPTY_RECORDING})"
            return f"{self.spec} holds no frames OpenCV can read (a damaged video or image?)"
        return f"stream {shown_source(self.spec)} delivers no frames{no_range_hint(self.spec)}"

    def read(self) -> np.ndarray | None:
        """The next BGR frame, or None at the end of the source (or when it stops delivering)."""
        if self._pending is not None:
            frame, self._pending = self._pending, None
        else:
            ok, frame = self.capture.read()
            if not ok or frame is None or frame.size == 0:
                return None
            frame = self._upright(frame)
        self._read_at = time.monotonic()
        if self.frames_read == 0:
            self._first_read_at = self._read_at
        self.frames_read += 1
        return frame

    def cut_off_note(self) -> str | None:
        """Once a recording has ended: why it looks cut off, or None when it was read whole.

        Containers state their frame count (exactly, on every shared clip); a file that ends
        well short of it was cut off, a download or copy that did not finish, say. A couple of
        frames of slack allow for containers whose count is an estimate.
        """
        expected = self.info.frame_count
        if not self.recorded or expected <= 1:
            return None
        if self.frames_read >= expected - max(2, expected // 50):
            return None
        return (
            f"{shown_source(self.spec)} looks cut off: only {self.frames_read} of the "
            f"{expected} frames its header lists could be read"
        )

    def _upright(self, frame: np.ndarray) -> np.ndarray:
        turn = UPRIGHT.get(self._orientation)
        return np.ascontiguousarray(turn(frame)) if turn else frame

    def time_s(self) -> float:
        """When the frame read last was taken, in seconds from the first: frame / fps in a
        recording; for a camera or live stream the clock when it was read, as the window
        does, since a live feed's stated frame rate is often not the rate it delivers."""
        if self.recorded:
            return max(self.frames_read - 1, 0) / self.info.fps
        return self._read_at - self._first_read_at

    def frames(self) -> Iterator[np.ndarray]:
        while (frame := self.read()) is not None:
            yield frame

    def _plain_name(self, path: Path) -> str:
        """A name OpenCV reads as this one file. It takes "%" in a name for a numbered
        sequence (img%02d.jpg would be img01.jpg, img02.jpg...), so such a file is opened
        through a link with a plain name, kept until ``close``."""
        if "%" not in path.name:
            return ffmpeg_name(path)
        self._link_dir = tempfile.mkdtemp(prefix="maskwatch-source-")
        link = Path(self._link_dir, "source" + path.suffix.replace("%", ""))
        try:
            link.symlink_to(path.resolve())
        except OSError as exc:
            raise SourceError(
                f"{self.spec}: OpenCV reads a name with % as a numbered sequence, and no "
                f"plain-named link could be made ({exc.strerror}); rename the file"
            ) from None
        return str(link)

    def close(self) -> None:
        self.capture.release()
        self._remove_link()

    def _remove_link(self) -> None:
        link_dir = getattr(self, "_link_dir", None)
        if link_dir:
            shutil.rmtree(link_dir, ignore_errors=True)
            self._link_dir = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


EXIF_ORIENTATION = 0x0112


def inspect_still(path: Path) -> int:
    """A still image's EXIF orientation (1: stored upright); warn if it decodes only in part.

    FFmpeg ignores the orientation tag, and fills what is missing of a cut-off image with
    grey without a word, so faces in that part are silently never found; such an image is
    still processed, as far as it goes.

    Raises:
        SourceError: for an image with more pixels than Pillow's decompression-bomb limit,
            the same limit the training commands read images under.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with pillow_warnings_logged(path), Image.open(path) as image:
            orientation = image.getexif().get(EXIF_ORIENTATION, 1)
            image.load()
    except Image.DecompressionBombError as exc:
        raise SourceError(f"image {path} is too large to read: {exc}") from None
    except UnidentifiedImageError:  # a kind Pillow does not know (float TIFF); OpenCV does
        return 1
    except (OSError, SyntaxError, ValueError) as exc:
        log.warning("%s is damaged (%s); only the part that decodes is searched", path, exc)
        return 1
    return orientation if orientation in UPRIGHT else 1


def check_url(url: str) -> None:
    """Raise SourceError for a stream URL that cannot be parsed, before trying to open it."""
    try:
        _ = urlsplit(url).port  # parsed lazily: a port that is not a number raises here
    except ValueError as exc:
        raise SourceError(f"stream URL {shown_source(url)} is malformed ({exc})") from None


def why_stream_failed(url: str, waited_s: float) -> str:
    """A short reason for a stream that would not open, found by one TCP connect to its host.

    FFmpeg only says that opening failed; users need to know whether nothing listens there,
    the name does not resolve, or the server answered but sent nothing playable.
    """
    try:
        parts = urlsplit(url)
        port = parts.port if parts.port is not None else DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError as exc:
        return f"the URL is malformed: {exc}"
    host, scheme = parts.hostname, parts.scheme.lower()
    if not host:
        return "the URL names no host"
    if port == 0:
        return "port 0 in the URL is not a port a server can listen on"
    if port is None or scheme == "udp":
        return f"nothing received after {waited_s:.0f} s"
    timeout = STREAM_TIMEOUT_MS / 1000
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except socket.gaierror:
        return f"host name {host} not found"
    except ConnectionRefusedError:
        return f"connection refused by {host}:{port}: nothing is listening there"
    except TimeoutError:
        return f"{host}:{port} did not answer within {timeout:.0f} s"
    except OSError as err:
        return f"{host}:{port} is unreachable ({err.strerror or err})"
    # FFmpeg waited its whole timeout: the server kept silent (one that refuses a URL says so
    # at once), and asking it again would make the user wait that long once more.
    if waited_s >= timeout - 0.5:
        return (
            f"{host}:{port} accepted the connection but sent nothing OpenCV could play within "
            f"{timeout:.0f} s"
        )
    if scheme in ("http", "https") and (refusal := _http_refusal(parts, port, timeout)):
        return f"{host}:{port} answered {refusal}"
    return f"{host}:{port} answered, but not with a video stream OpenCV can read"


def _http_answer(parts, port: int, timeout: float, headers: dict | None = None):
    """The status and headers a web server answers to a GET of the URL, sent with the URL's
    own login as FFmpeg sends it; None when it does not answer."""
    https = parts.scheme.lower() == "https"
    kind = http.client.HTTPSConnection if https else http.client.HTTPConnection
    extra = {"context": ssl._create_unverified_context()} if https else {}  # only a probe
    connection = kind(parts.hostname, port, timeout=timeout, **extra)
    headers = dict(headers or {})
    if parts.username is not None:
        login = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(login.encode()).decode()
    try:
        connection.request(
            "GET", urlunsplit(("", "", parts.path or "/", parts.query, "")), headers=headers
        )
        answer = connection.getresponse()
        return answer.status, answer.reason, dict(answer.getheaders())
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def _http_refusal(parts, port: int, timeout: float) -> str | None:
    """The HTTP error a web server answers for the URL (``HTTP 404 Not Found``); None when
    it answers 2xx/3xx or not at all."""
    answer = _http_answer(parts, port, timeout)
    if answer is None or answer[0] < 400:
        return None
    status, reason, _ = answer
    hint = "; check the login in the URL" if status in (401, 403) else ""
    return f"HTTP {status} {reason}{hint}"


# Containers whose index may sit at the end of the file, which a player reaches by a
# range request; without one FFmpeg finds no frames in such a file served over HTTP.
SEEKING_CONTAINERS = (".mp4", ".m4v", ".mov", ".3gp", ".mkv", ".webm")


# Suffixes of files that hold a whole recording; a live feed's URL rarely ends in one (an
# MJPEG camera's "/video.mjpg" or an HLS ".m3u8" playlist are left out on purpose).
RECORDING_SUFFIXES = SEEKING_CONTAINERS + (".gif", ".avi", ".mpg", ".mpeg", ".wmv", ".flv")


def _web_file(url: str, suffixes: tuple[str, ...]):
    """The split URL when it is HTTP(S) and its path ends in one of ``suffixes``, else None."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https"):
        return None
    return parts if unquote(parts.path).lower().endswith(suffixes) else None


def names_a_recording(url: str) -> bool:
    """Whether an HTTP(S) URL names a media file by its suffix (``/clips/hall.gif``)."""
    return _web_file(url, RECORDING_SUFFIXES) is not None


def no_range_hint(url: str) -> str:
    """Why a video file over HTTP(S) may give no frames: the server ignores range requests.
    Empty when that is not the case or cannot be told."""
    parts = _web_file(url, SEEKING_CONTAINERS)
    if parts is None or not parts.hostname:
        return ""
    try:
        port = parts.port if parts.port is not None else DEFAULT_PORTS[parts.scheme.lower()]
    except ValueError:  # a port that is not a number
        return ""
    answer = _http_answer(parts, port, STREAM_TIMEOUT_MS / 1000, {"Range": "bytes=0-0"})
    if answer is None or answer[0] != 200:  # 206: ranges work; an error is said elsewhere
        return ""
    return (
        " (the server ignores HTTP range requests, which a video file with its index at the "
        "end needs: serve it from a server that supports them, or move the index to the "
        "front with ffmpeg -movflags +faststart)"
    )


EMPTY_RECORDING = "an empty or unfinished recording: its container has no video in it"

# How the common video containers start: MP4/MOV ("ftyp" after the box size), Matroska and
# WebM, AVI ("RIFF", then "AVI "). A file that starts so but shows no frame holds no video.
_MEDIA_MAGIC = ((4, b"ftyp"), (0, b"\x1aE\xdf\xa3"), (8, b"AVI "))
# ftyp brands of photos (HEIF/AVIF) and sound (M4A/M4B): the same box, no video.
_NOT_VIDEO_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif",
                     b"avis", b"M4A ", b"M4B ", b"M4P "}  # fmt: skip


def _has_media_header(path: Path) -> bool:
    """Whether ``path`` starts as a video container does (it may still hold no frame)."""
    try:
        with open(path, "rb") as file:
            head = file.read(12)
    except OSError:
        return False
    if head[4:8] == b"ftyp" and head[8:12] in _NOT_VIDEO_BRANDS:
        return False
    return any(head[at : at + len(magic)] == magic for at, magic in _MEDIA_MAGIC)
