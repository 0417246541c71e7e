"""MaskWatch: real-time face-mask detection for webcams, video files and streams."""

import os

# Quieter FFmpeg and OpenCV: a corrupt file should give MaskWatch's one-line message, not
# pages of decoder noise. These must be set before cv2 is first imported.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "FATAL")  # its errors: the app words its own
# PyTorch's OpenMP threads otherwise spin while they wait for work, holding the cores they
# share with every other program: beside one busy program a 2-core machine ran the app 2 to 3
# times slower, and on cores shared with other jobs up to 10 times. Passive waiting costs
# about a quarter of the speed on 2 cores left idle (README, "Measured figures"). Read once,
# when torch loads, so set here, before anything imports it; a value the user set is kept.
if not os.environ.get("OMP_WAIT_POLICY"):  # empty too: OpenMP would reject it and spin
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
