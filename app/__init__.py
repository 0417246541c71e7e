"""MaskWatch: real-time face-mask detection for webcams, video files and streams."""

import os

# Quieter FFmpeg and OpenCV: a corrupt file should give MaskWatch's one-line message, not
# pages of decoder noise. These must be set before cv2 is first imported.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
