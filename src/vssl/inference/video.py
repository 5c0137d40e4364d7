"""Localization over a video: a timeline of decisions and an overlay MP4 with the original audio.

Frames are analysed at ``fps`` (times 0, 1/fps, 2/fps, ... from the video's start): each analysed time takes
the frame shown then and the audio window (the model's 3 s) centred on it, shifted to stay inside the clip
near its ends; a clip shorter than the window is tiled as in training. A frame is encoded once however many
windows it serves (an analysis rate above the video's frame rate, or a still image held over many frames:
consecutive frames differing only by codec noise count as one). The audio is the video's own, another file,
or negative audio (silence, noise) for the whole duration.

The overlay MP4 holds one frame per analysed time (H.264 when the FFmpeg build has it, else MPEG-4 Part 2)
and the audio: the video's own stream copied unchanged when MP4 can hold it (AAC, MP3, ALAC), otherwise the
analysed 16 kHz mono audio encoded as AAC.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from vssl.atomic import atomic_path, write_text_atomic
from vssl.audio import AudioConfig, center_window, load_audio, open_media, stream_duration
from vssl.errors import MediaError, VsslError, require_file
from vssl.inference.calibration import Threshold
from vssl.inference.localizer import Localizer
from vssl.inference.render import render_overlay
from vssl.inference.result import MAP_SCALE, Localization
from vssl.inference.video_writer import OverlayVideoWriter
from vssl.negatives import white_noise

NEGATIVES = ("silence", "noise")
STILL_TOLERANCE = 0.5  # mean |difference| in 8-bit levels below which consecutive frames are one picture
ANALYSED_FPS = 5.0
"""Frames analysed a second by default (videos and live streams)."""
# (a codec re-encoding a still picture changes it by ~0.01 level on average; any motion by far more)


FRAME_KEYS = ("max", "score", "abstain", "box", "peak")


@dataclass
class VideoTimeline:
    """One record per analysed time, plus what the decisions used and how much encoding was shared."""

    video: str
    audio: str
    """Whose sound was localized: ``video`` (its own), a file path, ``silence`` or ``noise``."""
    fps: float
    window_s: float
    threshold: Threshold | None = None
    frame_size: tuple[int, int] | None = None
    frames: list[dict[str, Any]] = field(default_factory=list)
    """Per analysed time: ``{"time", "max", "score", "abstain", "box", "peak"}`` (see `Localization`)."""
    results: list[Localization] = field(default_factory=list)
    """The full results (frame, maps, mask), kept only when asked for: they hold a frame each."""
    image_encodes: int = 0
    """Frames run through the image encoder (<= the number of analysed times)."""

    @property
    def times(self) -> list[float]:
        return [f["time"] for f in self.frames]

    def add(self, time: float, result: Localization, keep: bool) -> None:
        record = result.to_json()
        self.frames.append({"time": round(time, 6), **{k: record[k] for k in FRAME_KEYS}})
        self.frame_size = result.frame_size
        if keep:
            self.results.append(result)

    def to_json(self) -> dict[str, Any]:
        """``{"video", "audio", "fps", "window_s", "map_scale", "threshold", "threshold_scale", "rule",
        "frame_size", "windows", "image_encodes", "frames": [...]}``; boxes and peaks in pixels of the frame."""
        threshold = self.threshold.to_json() if self.threshold else {"threshold": None, "threshold_scale": None}
        return {
            "video": self.video,
            "audio": self.audio,
            "fps": self.fps,
            "window_s": self.window_s,
            "map_scale": MAP_SCALE,
            **threshold,
            "frame_size": None if self.frame_size is None else list(self.frame_size),
            "windows": len(self.frames),
            "image_encodes": self.image_encodes,
            "frames": self.frames,
        }

    def write_json(self, path: str | Path) -> Path:
        return write_text_atomic(path, json.dumps(self.to_json(), indent=2) + "\n")


def window_at(wave: torch.Tensor, time: float, cfg: AudioConfig) -> torch.Tensor:
    """The ``cfg.num_samples`` of ``wave [T]`` centred on ``time`` s, shifted inside the clip (tiled if shorter)."""
    n = cfg.num_samples
    if wave.shape[-1] <= n:
        return center_window(wave, cfg)
    start = min(max(0, round(time * cfg.sample_rate) - n // 2), wave.shape[-1] - n)
    return wave[start : start + n]


def negative_audio(kind: str, seconds: float, cfg: AudioConfig, seed: int = 0) -> torch.Tensor:
    """``seconds`` of silence or white noise (sigma 1, clipped; seeded) at ``cfg.sample_rate``, ``[T]``."""
    n = max(cfg.num_samples, math.ceil(seconds * cfg.sample_rate))
    if kind == "silence":
        return torch.zeros(n)
    if kind == "noise":
        return white_noise(1, n, torch.Generator().manual_seed(seed))[0]
    raise VsslError(f"unknown negative audio {kind!r}; known: {list(NEGATIVES)}")


def _frame_groups(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, fps: float
) -> Iterator[tuple[np.ndarray, list[float]]]:
    """(RGB frame ``[H, W, 3]``, analysed times it serves): frame i serves the times in [start_i, start_i+1)."""
    origin = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    rate = float(stream.average_rate) if stream.average_rate else fps
    k, pending, pending_time = 0, None, 0.0

    def take(frame: av.VideoFrame, until: float) -> tuple[np.ndarray, list[float]] | None:
        nonlocal k
        times = []
        while k / fps < until - 1e-9:
            times.append(k / fps)
            k += 1
        return (frame.to_ndarray(format="rgb24"), times) if times else None

    try:
        for frame in container.decode(stream):
            start = (float(frame.time) - origin) if frame.time is not None else pending_time + 1.0 / rate
            if pending is not None and (group := take(pending, start)) is not None:
                yield group
            pending, pending_time = frame, start
    except av.FFmpegError as err:
        raise MediaError(container.name, f"cannot decode the video stream: {err}") from err
    if pending is None:
        raise MediaError(container.name, "the video stream has no frames")
    if (group := take(pending, pending_time + 1.0 / rate)) is not None:
        yield group


def localize_video(
    localizer: Localizer,
    video: str | Path,
    out: str | Path | None = None,
    audio: str | Path | None = None,
    negative: str | None = None,
    fps: float = ANALYSED_FPS,
    batch_windows: int = 16,
    progress: bool = True,
    keep_results: bool = False,
    still_tolerance: float = STILL_TOLERANCE,
) -> VideoTimeline:
    """Localize the sound of ``video`` (or of ``audio`` / ``negative``) in its frames at ``fps``; with ``out``,
    also write the overlay MP4 there (atomically). ``keep_results`` keeps every `Localization` (memory: the
    frame and three 224x224 maps each) besides the compact per-frame records. Consecutive frames whose mean
    absolute difference is at most ``still_tolerance`` 8-bit levels are one picture, encoded once (0: only
    identical frames)."""
    if fps <= 0:
        raise VsslError(f"fps must be positive, got {fps}")
    video = require_file(video)
    cfg = localizer.cfg.audio
    try:
        container = open_media(video)
    except (av.FFmpegError, OSError, ValueError) as err:
        raise MediaError(video, f"cannot open video: {err}") from err
    with container:
        if not container.streams.video:
            raise MediaError(video, "no video stream")
        stream = container.streams.video[0]
        duration = stream_duration(container, stream)
        if negative is not None:
            if duration is None:
                raise MediaError(video, "unknown duration: cannot make negative audio as long as the video")
            wave, label = negative_audio(negative, duration, cfg), negative
        else:
            source = Path(audio) if audio is not None else video
            wave, label = load_audio(source, cfg.sample_rate), "video" if audio is None else str(source)
        timeline = VideoTimeline(str(video), label, fps, cfg.duration, localizer.threshold)
        run = _Run(localizer, timeline, wave, batch_windows, keep_results, still_tolerance)
        expected = math.ceil(duration * fps - 1e-9) if duration else None
        with tqdm(total=expected, unit="frame", desc="localize", disable=not progress) as bar:
            if out is None:
                run.feed(_frame_groups(container, stream, fps), None, bar)
            else:
                copy_from = video if audio is None and negative is None else None
                with atomic_path(out) as tmp, OverlayVideoWriter(tmp, fps, copy_from, wave, cfg.sample_rate) as writer:
                    run.feed(_frame_groups(container, stream, fps), writer, bar)
    return timeline


def _same_picture(a: np.ndarray, b: np.ndarray, tolerance: float) -> bool:
    """Whether two ``[H, W, 3]`` uint8 frames differ by at most ``tolerance`` levels on average."""
    if a.shape != b.shape:
        return False
    if tolerance <= 0:
        return np.array_equal(a, b)
    return float(np.abs(a.astype(np.int16) - b).mean()) <= tolerance


class _Run:
    """Batches (frame, window) pairs, encoding each distinct frame once per batch, into a timeline."""

    def __init__(
        self,
        localizer: Localizer,
        timeline: VideoTimeline,
        wave: torch.Tensor,
        batch_windows: int,
        keep: bool,
        still_tolerance: float,
    ):
        self.localizer, self.timeline, self.wave = localizer, timeline, wave
        self.batch_windows, self.keep, self.still_tolerance = batch_windows, keep, still_tolerance
        self.frames: list[Image.Image] = []
        self.pairs: list[tuple[int, float]] = []  # (index in self.frames, time)

    def feed(self, groups: Iterator[tuple[np.ndarray, list[float]]], writer: OverlayVideoWriter | None, bar) -> None:
        current, last_pixels = None, None
        for pixels, times in groups:
            if current is None or not _same_picture(pixels, last_pixels, self.still_tolerance):
                current, last_pixels = Image.fromarray(pixels), pixels
            for t in times:
                if not self.frames or self.frames[-1] is not current:
                    self.frames.append(current)
                self.pairs.append((len(self.frames) - 1, t))
                if len(self.pairs) >= self.batch_windows:
                    self._flush(writer, bar)
        if self.pairs:
            self._flush(writer, bar)

    def _flush(self, writer: OverlayVideoWriter | None, bar) -> None:
        cfg = self.localizer.cfg.audio
        windows = [window_at(self.wave, t, cfg) for _, t in self.pairs]
        results = self.localizer.localize_pairs(self.frames, windows, [i for i, _ in self.pairs])
        self.timeline.image_encodes += len(self.frames)
        name = Path(self.timeline.video).name
        for (_, t), r in zip(self.pairs, results, strict=True):
            self.timeline.add(t, r, self.keep)
            if writer is not None:
                writer.write(render_overlay(r, title=f"{name}  t = {t:.2f} s"))
        bar.update(len(self.pairs))
        self.frames.clear()
        self.pairs.clear()
