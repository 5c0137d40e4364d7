"""Localization on a live stream: one decision per analysed frame, as it happens.

    from vssl.inference import live_decisions
    for d in live_decisions(loc, "udp://127.0.0.1:5000", fps=5):
        print(d.to_json())          # {"time", "latency_ms", "abstain", "score", "max", "box", "peak", "dropped", ...}

SOURCE forms: `vssl.inference.live_source`. A background thread demuxes and decodes the stream into a ring buffer
of audio at the model's rate (mono) and the newest video frame (`vssl.inference.live_reader`); this loop takes
the newest frame every ``1 / fps`` s of stream time, encodes it, and decides with the model's calibrated
threshold through the same `Localizer` calls as ``vssl localize --video`` (image features, audio embedding,
`Localizer.decide`).

* **The audio window ends at the analysed frame's time** (the model's 3 s): the future is not available live, so
  unlike a video file's window (centred on the frame) it looks back only. The loop waits up to ``audio_wait`` s
  for the audio to reach that time (a muxer may send it after the frame); if it does not, the window ends at the
  last sample received (``audio_end`` in the record).
* **The start**: the frames FFmpeg read while probing the stream arrive at once; the first decision takes the
  newest of them (the live edge), so they are neither analysed nor counted as dropped.
* **The first seconds**: until the stream has played one window of audio, the window is zero-padded on the left
  (silence) and decisions are made anyway; ``audio_s`` says how much of the window is the stream's.
* **Falling behind**: frames are analysed on a grid of ``1 / fps`` s of stream time from the first decision.
  When the model is still busy as the stream passes a grid point, that point is dropped: the next decision
  takes the newest frame, never a queued one, so decisions never drift behind the stream. ``dropped`` counts the
  grid points dropped so far (a point with no new frame, as with a stream slower than ``fps``, is no drop).
* **Latency**: wall time from the analysed frame's packet leaving the demuxer to the decision.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
from PIL import Image

from vssl.atomic import atomic_path
from vssl.errors import VsslError
from vssl.inference.live_reader import Frame, LiveReader
from vssl.inference.live_source import open_source, parse_source
from vssl.inference.localizer import Localizer
from vssl.inference.render import render_overlay
from vssl.inference.result import Localization
from vssl.inference.video import ANALYSED_FPS, FRAME_KEYS
from vssl.inference.video_writer import OverlayVideoWriter

log = logging.getLogger(__name__)

CATCH_UP_S = 0.05
"""A pause this long in the frames' arrival ends the backlog at the start (see `LiveStream._live_edge`)."""
GRID_TOLERANCE_S = 1e-3
"""A frame this close before a grid point counts as on it (timestamps are rounded to the stream's time base)."""
STALL_TIMEOUT = 10.0
"""Seconds to wait for a stream's first data, each network read and each new frame before the stream counts as
ended (``vssl localize --live --timeout``)."""


@dataclass(frozen=True)
class LiveDecision:
    """One decision on a live stream."""

    time: float
    """Stream time (s) of the analysed frame."""
    latency_ms: float
    """Wall time from the frame's arrival (its packet out of the demuxer) to this decision."""
    dropped: int
    """Grid points dropped so far because the model was busy (cumulative)."""
    audio_s: float
    """Seconds of stream audio in the window (below the window's length in the first seconds: zeros on the left)."""
    audio_end: float
    """Stream time where the audio window ends: ``time``, unless the audio lagged behind (see the module's doc)."""
    slot: int
    """Index of the grid point served (0 for the first decision; ``slot * 1 / fps`` s after it)."""
    result: Localization = field(repr=False, compare=False)
    """The full result (frame, maps, mask) for overlays."""

    @property
    def abstain(self) -> bool | None:
        """True: no visible source; None: an uncalibrated model (see `Localization`)."""
        return self.result.abstain

    @property
    def score(self) -> float | None:
        return self.result.score

    @property
    def box(self) -> tuple[float, float, float, float] | None:
        return self.result.box

    @property
    def peak(self) -> tuple[float, float]:
        return self.result.peak

    def to_json(self) -> dict[str, Any]:
        """``{"time", "latency_ms", "abstain", "score", "max", "box", "peak", "dropped", "audio_s", "audio_end"}``;
        box and peak in pixels of the stream's frame."""
        record = self.result.to_json()
        return {
            "time": round(self.time, 4),
            "latency_ms": round(self.latency_ms, 1),
            **{k: record[k] for k in FRAME_KEYS},
            "dropped": self.dropped,
            "audio_s": round(self.audio_s, 3),
            "audio_end": round(self.audio_end, 4),
        }


@dataclass
class LiveSummary:
    """What a live run did, for the log at its end."""

    source: str
    decisions: int = 0
    dropped: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    first_time: float | None = None
    last_time: float | None = None
    wall_s: float = 0.0
    reason: str = ""
    interrupted: bool = False

    def add(self, decision: LiveDecision) -> None:
        self.decisions += 1
        self.dropped = decision.dropped
        self.latencies_ms.append(decision.latency_ms)
        self.first_time = decision.time if self.first_time is None else self.first_time
        self.last_time = decision.time

    def text(self) -> str:
        """One line: decisions, stream time covered, drops, latency median and 90th percentile, why it ended."""
        if not self.decisions:
            return f"live {self.source}: no decision ({self.reason})"
        lat = sorted(self.latencies_ms)
        p90 = lat[min(len(lat) - 1, math.ceil(0.9 * len(lat)) - 1)]
        span = (self.last_time or 0.0) - (self.first_time or 0.0)
        return (
            f"live {self.source}: {self.decisions} decisions over {span:.1f} s of stream ({self.wall_s:.1f} s wall), "
            f"{self.dropped} dropped; latency median {statistics.median(lat):.0f} ms, p90 {p90:.0f} ms; "
            f"{'interrupted' if self.interrupted else 'ended'}: {self.reason}"
        )


class LiveStream:
    """A context manager: opens ``source`` and starts its reader; iterate over it for `LiveDecision`s.

    ``timeout`` s bounds the wait for the stream's first data, each network read, and the wait for a new frame
    (a stalled stream ends the iteration). Raises `MediaError` naming ``source`` when it cannot be opened.
    """

    def __init__(
        self,
        localizer: Localizer,
        source: str,
        fps: float = ANALYSED_FPS,
        timeout: float = STALL_TIMEOUT,
        audio_wait: float = 0.5,
    ):
        if not fps > 0:
            raise VsslError(f"fps must be positive, got {fps}")
        self.localizer, self.source, self.fps = localizer, source, fps
        self.timeout, self.audio_wait = timeout, audio_wait
        self.summary = LiveSummary(source)
        self.reader: LiveReader | None = None
        self._started = 0.0

    def __enter__(self) -> LiveStream:
        source = parse_source(self.source)
        self._warm_up()
        opened = open_source(source, self.timeout)
        self.reader = LiveReader(opened, self.localizer.cfg.audio.sample_rate)
        self.reader.start()
        self._started = time.monotonic()
        log.info("live %s: analysing %g frames/s", self.source, self.fps)
        return self

    def _warm_up(self) -> None:
        """One decision on a black frame and silence, so that the first call's one-off costs (kernel choice,
        allocations) are paid before the stream starts rather than by its first frames."""
        loc = self.localizer
        image = Image.new("RGB", (loc.cfg.image.size, loc.cfg.image.size))
        silence = torch.zeros(loc.cfg.audio.num_samples)
        loc.decide(loc.image_features([image]), loc.audio_embeddings([silence]), [image])

    def __exit__(self, *exc: object) -> None:
        if self.reader is not None:
            self.reader.stop()
            self.summary.reason = self.summary.reason or self.reader.reason or "stopped"
        self.summary.wall_s = time.monotonic() - self._started

    def __iter__(self) -> Iterator[LiveDecision]:
        if self.reader is None:
            raise VsslError("LiveStream: use it in a with statement")
        period, seen, dropped = 1.0 / self.fps, 0, 0
        grid0: float | None = None
        next_point = -math.inf
        while (taken := self.reader.next_frame(seen, self.timeout)) is not None:
            frame, skipped = taken
            seen = frame.seq
            if grid0 is None:  # the first decision, at the live edge: the grid starts there, nothing before counts
                frame = self._live_edge(frame)
                seen, grid0, skipped = frame.seq, frame.time, []
            elif frame.time < next_point - GRID_TOLERANCE_S:
                continue  # not due yet: the stream is faster than fps

            def point(t: float, origin: float = grid0) -> int:
                return math.floor((t - origin) / period + GRID_TOLERANCE_S / period)

            slot = point(frame.time)
            # grid points that a frame reached while the model was busy, other than the one served now
            dropped += len({point(t) for t in skipped if t >= next_point - GRID_TOLERANCE_S} - {slot})
            next_point = grid0 + (slot + 1) * period
            decision = self._decide(frame, slot, dropped)
            self.summary.add(decision)
            yield decision
        self.summary.reason = self.reader.reason or "end of stream"

    def _live_edge(self, frame: Frame) -> Frame:
        """The first frames come in a burst, faster than the stream plays (what FFmpeg read while probing, a growing
        file's past): the newest frame once frames come at the stream's pace, or pause for `CATCH_UP_S`."""
        assert self.reader is not None
        while (newer := self.reader.next_frame(frame.seq, CATCH_UP_S, stall_ends=False)) is not None:
            later = newer[0]
            backlog = later.arrival - frame.arrival < 0.5 * (later.time - frame.time)
            frame = later
            if not backlog:
                break
        return frame

    def _decide(self, frame: Frame, slot: int, dropped: int) -> LiveDecision:
        """The decision on ``frame`` with the audio window ending at its time, by `Localizer`'s own calls."""
        assert self.reader is not None
        loc, n = self.localizer, self.localizer.cfg.audio.num_samples
        image = frame.image.to_image()  # RGB PIL image at the stream's size
        features = loc.image_features([image])  # encoded while the audio up to the frame may still be arriving
        self.reader.wait_audio(frame.time, self.audio_wait)
        window, audio_s, audio_end = self.reader.window(frame.time, n)
        embedding = loc.audio_embeddings([torch.from_numpy(window)])
        result = loc.decide(features, embedding, [image])[0]
        latency_ms = (time.monotonic() - frame.arrival) * 1e3
        return LiveDecision(frame.time, latency_ms, dropped, audio_s, audio_end, slot, result)

    def audio(self, start: float, stop: float) -> np.ndarray:
        """The stream's audio from ``start`` to ``stop`` s of stream time (zeros where there is none)."""
        assert self.reader is not None
        return self.reader.audio(start, stop)


def live_decisions(
    localizer: Localizer,
    source: str,
    fps: float = ANALYSED_FPS,
    timeout: float = STALL_TIMEOUT,
    audio_wait: float = 0.5,
) -> Iterator[LiveDecision]:
    """`LiveDecision`s on ``source`` at ``fps``, as they happen, until the stream ends or stalls ``timeout`` s
    (see `LiveStream`); the source is closed when the iteration stops."""
    with LiveStream(localizer, source, fps, timeout, audio_wait) as stream:
        yield from stream


class _LiveOverlay:
    """The overlay MP4 of a live run, started at the first decision: one overlay per grid point (a dropped point
    holds the previous overlay), so the video's time follows the stream's, and the stream's audio from the first
    decision on (AAC). Written atomically; finished when the run ends, Ctrl-C included."""

    def __init__(self, path: str | Path, stream: LiveStream):
        self.path, self.stream = Path(path), stream
        self.files = ExitStack()
        self.writer: OverlayVideoWriter | None = None
        self.previous: Image.Image | None = None
        self.audio_until = 0.0

    def add(self, decision: LiveDecision) -> None:
        if self.writer is None:
            tmp = self.files.enter_context(atomic_path(self.path))
            rate = self.stream.localizer.cfg.audio.sample_rate
            self.writer = self.files.enter_context(OverlayVideoWriter(tmp, self.stream.fps, None, torch.zeros(0), rate))
            self.audio_until = decision.time
        image = render_overlay(decision.result, title=f"{self.stream.source}  t = {decision.time:.2f} s")
        while self.previous is not None and self.writer.count < decision.slot:
            self.writer.write(self.previous)
        self.writer.write(image)
        self.previous = image
        self._feed_audio(decision.audio_end)

    def _feed_audio(self, until: float) -> None:
        if self.writer is not None and until > self.audio_until:
            self.writer.add_audio(self.stream.audio(self.audio_until, until))
            self.audio_until = until

    def __enter__(self) -> _LiveOverlay:
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is None:
            self._feed_audio(self.audio_until + 1.0 / self.stream.fps)  # the last overlay's sound
        self.files.__exit__(*exc)


def run_live(
    localizer: Localizer,
    source: str,
    fps: float = ANALYSED_FPS,
    out: str | Path | None = None,
    timeout: float = STALL_TIMEOUT,
    lines: TextIO | None = None,
) -> LiveSummary:
    """``vssl localize --live``: one JSON object per decision on ``lines`` (default stdout), flushed at once; with
    ``out``, the overlay MP4 (written atomically, finished on Ctrl-C too). Ctrl-C ends the run cleanly (the
    summary's ``interrupted``); the summary is logged (stderr) at the end."""
    lines = lines if lines is not None else sys.stdout
    stream = LiveStream(localizer, source, fps, timeout)
    try:
        with stream, ExitStack() as files:
            overlay = files.enter_context(_LiveOverlay(out, stream)) if out is not None else None
            try:
                for decision in stream:
                    lines.write(json.dumps(decision.to_json()) + "\n")
                    lines.flush()
                    if overlay is not None:
                        overlay.add(decision)
            except KeyboardInterrupt:
                stream.summary.interrupted, stream.summary.reason = True, "Ctrl-C"
    finally:
        if stream.reader is not None:  # the source was opened
            log.info("%s", stream.summary.text())
    if out is not None:
        log.info("overlay video written to %s" if stream.summary.decisions else "no decision: %s not written", out)
    return stream.summary
