"""MaskWatch: real-time face-mask detection for webcams, video files and streams."""

import os

# Quieter FFmpeg and OpenCV: a corrupt file should give MaskWatch's one-line message, not
# pages of decoder noise. These must be set before cv2 is first imported.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "FATAL")  # its errors: the app words its own
# PyTorch's OpenMP threads otherwise spin while they wait for work, holding the cores they
# share with every other program; with one busy program beside it, a 2-core laptop ran the
# detector and classifier 4 to 25 times slower (README, "Measured figures"). Read once, when
# torch loads, so set here, before anything imports it; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
