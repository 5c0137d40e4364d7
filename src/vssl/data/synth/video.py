"""Small synthetic video files (PyAV), for the tests and benchmarks of ``vssl prepare``.

Frame ``i`` is a flat grey of level ``brightness(i)`` (with a little texture so the encoder has work to do),
so a test can tell which frame was extracted; the audio is a tone. Streams: MPEG-4 Part 2 video and AAC
audio in an MP4 container — encoders every FFmpeg build has.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

AUDIO_FRAME = 1024  # samples per AAC frame


def brightness(index: int, num_frames: int) -> int:
    """Grey level (0-255) of frame ``index`` of ``num_frames``: rises linearly from 16 to 240."""
    return round(16 + 224 * index / max(1, num_frames - 1))


def _write_video(container: av.container.OutputContainer, stream: av.VideoStream, seconds: float, fps: int) -> None:
    size = (stream.width, stream.height)
    num_frames = round(seconds * fps)
    rng = np.random.default_rng(0)
    texture = rng.integers(-6, 7, (size[1], size[0], 1))
    for i in range(num_frames):
        pixels = np.clip(brightness(i, num_frames) + texture, 0, 255).astype(np.uint8).repeat(3, axis=2)
        for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def _write_audio(container: av.container.OutputContainer, stream: av.AudioStream, seconds: float) -> None:
    sample_rate = stream.rate
    n = round(seconds * sample_rate)
    tone = (0.3 * np.sin(2 * np.pi * 440.0 * np.arange(n) / sample_rate)).astype(np.float32)
    for start in range(0, n, AUDIO_FRAME):
        frame = av.AudioFrame.from_ndarray(tone[None, start : start + AUDIO_FRAME], format="flt", layout="mono")
        frame.sample_rate, frame.pts = sample_rate, start
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def write_video(
    path: str | Path,
    seconds: float = 4.0,
    fps: int = 10,
    size: tuple[int, int] = (64, 48),
    audio: bool = True,
    video: bool = True,
    sample_rate: int = 16000,
) -> Path:
    """Write an MP4 of ``seconds`` with a video stream (``size`` = width, height) and/or a mono tone."""
    path = Path(path)
    with av.open(str(path), "w") as container:  # every stream must exist before the first packet is muxed
        video_stream = container.add_stream("mpeg4", rate=fps) if video else None
        audio_stream = container.add_stream("aac", rate=sample_rate, layout="mono") if audio else None
        if video_stream is not None:
            video_stream.width, video_stream.height = size
            video_stream.pix_fmt = "yuv420p"
            _write_video(container, video_stream, seconds, fps)
        if audio_stream is not None:
            _write_audio(container, audio_stream, seconds)
    return path
