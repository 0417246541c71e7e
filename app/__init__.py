"""MaskWatch: real-time face-mask detection for webcams, video files and streams."""

import logging
import os

# Quieter FFmpeg and OpenCV: a corrupt file should give MaskWatch's one-line message, not
# pages of decoder noise. These must be set before cv2 is first imported.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "FATAL")  # its errors: the app words its own
# PyTorch's OpenMP threads otherwise spin while they wait for work, holding the cores they
# share with every other program: beside one busy program a 2-core machine ran the app 2 to 3
# times slower, and on cores shared with other jobs up to 10 times. Passive waiting costs
# about a quarter of the speed on 2 cores left idle (README, "Measured figures"). Read once,
# when torch loads, so set here, before anything imports it; a valid value the user set is
# kept.
OMP_POLICIES = ("ACTIVE", "PASSIVE")
C_SPACES = " \t\n\v\f\r"  # what libgomp skips around the word (C's isspace)


def _wait_passively_unless_told() -> None:
    """Set OMP_WAIT_POLICY to PASSIVE where it is unset or blank, and where libgomp would
    reject it: it then says only "Invalid value" and lets its threads spin. Accepted, as
    libgomp reads it: ACTIVE or PASSIVE in any case of ASCII letters, with C whitespace
    around it."""
    given = os.environ.get("OMP_WAIT_POLICY")
    if given is not None and given.strip(C_SPACES):
        word = given.strip(C_SPACES)
        if word.isascii() and word.upper() in OMP_POLICIES:  # "actıve".upper() is "ACTIVE"
            return
        logging.getLogger(__name__).warning(
            "OMP_WAIT_POLICY=%r is not ACTIVE or PASSIVE (OpenMP would reject it and spin); "
            "using PASSIVE",
            given,
        )
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


_wait_passively_unless_told()
