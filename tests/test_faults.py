"""Faults during playback: a camera that stops delivering frames mid-stream."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from conftest import fixture_bgr, on_canvas, write_video  # noqa: E402

from app import worker  # noqa: E402
from app.config import PipelineConfig  # noqa: E402
from app.source import VideoSource  # noqa: E402
from app.window import MainWindow  # noqa: E402


class StallingCamera(VideoSource):
    """A real video that reports itself as a camera, so its end looks like a camera dying."""

    def __init__(self, spec):
        super().__init__(spec)
        self.kind, self.recorded = "camera", False


def test_camera_that_stops_is_reported_and_can_be_retried(qtbot, pipeline, tmp_path, monkeypatch):
    video = write_video(tmp_path / "cam.mp4", [on_canvas(fixture_bgr("no_mask_1.jpg"))] * 6, fps=10)
    monkeypatch.setattr(worker, "VideoSource", StallingCamera)
    window = MainWindow(PipelineConfig(device="cpu"), pipeline=pipeline, autostart=False)
    qtbot.addWidget(window)
    window.show()
    window.picker.set_spec(str(video))
    shown = []
    window.frame_displayed.connect(lambda image, stats: shown.append(stats))
    window.start()
    qtbot.waitUntil(lambda: not window.is_playing, timeout=60_000)
    assert shown and shown[0].faces[0].label == "no_mask"
    assert "stopped delivering frames" in window.message
    assert "retry" in window.message
    assert window.start_button.isEnabled()
    count = len(shown)
    window.start()  # the retry plays again
    qtbot.waitUntil(lambda: len(shown) > count, timeout=60_000)
    qtbot.waitUntil(lambda: not window.is_playing, timeout=60_000)
    window.close()
