"""The background half of a live stream: one thread per container demuxes and decodes (PyAV) into a ring buffer
of mono audio at the model's rate and the newest video frame, each stamped with stream time.

Stream time is seconds since the stream's start (the containers' earliest start time, else the first timestamp
seen). A frame also carries its arrival: `time.monotonic` when the demuxer handed over its packet, from which a
decision's latency is measured. Audio is converted to float by FFmpeg's resampler (which also brings it to the
model's rate, streaming), clipped to [-1, 1] and averaged over channels, as `vssl.audio.load_audio` does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

import av
import numpy as np

from vssl.inference.live_source import OpenSource

log = logging.getLogger(__name__)

GAP_TOLERANCE_S = 0.05
"""Audio whose timestamp lies further than this after the samples so far is preceded by zeros for the gap."""


@dataclass(frozen=True)
class Frame:
    """A decoded video frame of the live stream."""

    image: av.VideoFrame
    time: float
    """Stream time (s)."""
    arrival: float
    """`time.monotonic` when its packet came out of the demuxer."""
    seq: int
    """1, 2, 3, ... in decoding order."""


class AudioRing:
    """The latest ``capacity`` samples of a mono stream at ``sample_rate``; sample ``i`` is at stream time
    ``i / sample_rate``. Not thread-safe by itself (`LiveReader` locks around it)."""

    def __init__(self, sample_rate: int, capacity: int):
        self.rate = sample_rate
        self.buffer = np.zeros(capacity, np.float32)
        self.first: int | None = None
        """Index of the stream's first audio sample (None before any)."""
        self.end = 0
        """Index after the last sample written."""
        self.gap_samples = 0
        """Zeros written for gaps in the audio's timestamps (lost packets)."""

    @property
    def end_time(self) -> float:
        return self.end / self.rate

    def write(self, samples: np.ndarray, time: float | None) -> None:
        """Append ``samples [n]`` that start at stream time ``time`` (None: right after the previous ones)."""
        if time is not None:
            index = max(0, round(time * self.rate))
            if self.first is None:
                self.first = self.end = index
            elif index - self.end > GAP_TOLERANCE_S * self.rate:
                self.gap_samples += index - self.end
                self._put(np.zeros(min(index - self.end, len(self.buffer)), np.float32), skip=index - self.end)
        elif self.first is None:
            self.first = self.end = 0
        self._put(samples, len(samples))

    def _put(self, samples: np.ndarray, skip: int) -> None:
        """Write the last ``len(samples)`` of ``skip`` samples (older ones would not fit)."""
        capacity = len(self.buffer)
        samples = samples[-capacity:]
        self.end += skip - len(samples)
        pos = self.end % capacity
        head = min(len(samples), capacity - pos)
        self.buffer[pos : pos + head] = samples[:head]
        self.buffer[: len(samples) - head] = samples[head:]
        self.end += len(samples)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``start .. stop - 1`` (``[stop - start]`` float32); zeros where the stream has none (before its
        first sample, after its last, or already overwritten)."""
        out = np.zeros(max(0, stop - start), np.float32)
        if self.first is None:
            return out
        lo, hi = max(start, self.first, self.end - len(self.buffer)), min(stop, self.end)
        if hi > lo:
            out[lo - start : hi - start] = self.buffer.take(np.arange(lo, hi), mode="wrap")
        return out

    def window(self, end_time: float, n: int) -> tuple[np.ndarray, float, float]:
        """The ``n`` samples ending at ``end_time`` or at the last sample, whichever is earlier -> (``[n]``, seconds
        of stream audio in it (less than ``n / rate`` while the stream is younger: zeros on the left), end time)."""
        stop = min(round(end_time * self.rate), self.end)
        start = stop - n
        real = 0 if self.first is None else max(0, stop - max(start, self.first))
        return self.read(start, stop), real / self.rate, stop / self.rate


class LiveReader:
    """Background threads filling an `AudioRing` and the newest `Frame` from ``opened``'s containers."""

    def __init__(self, opened: OpenSource, sample_rate: int, ring_seconds: float = 60.0):
        self.opened = opened
        self.ring = AudioRing(sample_rate, round(ring_seconds * sample_rate))
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._latest: Frame | None = None
        self._recent: deque[tuple[int, float]] = deque(maxlen=4096)  # (seq, time) of the latest frames
        starts = [c.start_time for c in opened.containers if c.start_time is not None]
        self.origin: float | None = min(starts) / av.time_base if starts else None
        self.reason: str | None = None
        """Why the stream ended (None while it runs)."""
        self.corrupt_packets = 0
        self._running = len(opened.containers)
        self._threads = [
            threading.Thread(target=self._pump, args=(c,), name=f"vssl-live-{i}", daemon=True)
            for i, c in enumerate(opened.containers)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, wait: float = 2.0) -> None:
        """Ask the threads to stop and wait up to ``wait`` s; a thread blocked in a read is left (a daemon)."""
        self._stop.set()
        deadline = time.monotonic() + wait
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def ended(self) -> bool:
        return self.reason is not None

    def _stream_time(self, seconds: float | None) -> float | None:
        if seconds is None:
            return None
        if self.origin is None:
            self.origin = seconds
        return seconds - self.origin

    def _pump(self, container: av.container.InputContainer) -> None:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        to_float = av.AudioResampler(format="fltp", rate=self.ring.rate)
        step = 1.0 / float(video.average_rate) if video is not None and video.average_rate else 0.04
        last_time = -step
        reason = "end of stream"
        try:
            for packet in container.demux(*(s for s in (video, audio) if s is not None)):
                if self._stop.is_set():
                    reason = "stopped"
                    break
                arrival = time.monotonic()
                try:
                    frames = packet.decode()
                except av.FFmpegError:  # a damaged packet (lost datagrams, a truncated start): skip it
                    self.corrupt_packets += 1
                    continue
                for frame in frames:
                    if isinstance(frame, av.VideoFrame):
                        stamp = self._stream_time(frame.time)
                        last_time = stamp if stamp is not None else last_time + step
                        self._put_frame(frame, last_time, arrival)
                    else:
                        chunks = [f.to_ndarray() for f in to_float.resample(frame)]  # [C, n] each
                        if chunks:
                            mono = np.clip(np.concatenate(chunks, axis=1), -1.0, 1.0).mean(axis=0)
                            with self._cond:
                                self.ring.write(mono.astype(np.float32), self._stream_time(frame.time))
                                self._cond.notify_all()
        except (av.ExitError, TimeoutError) as err:
            reason = f"no data for the read timeout ({err})"
        except av.FFmpegError as err:
            reason = f"read error: {err}"
        except Exception as err:  # reported as the stream's end, never lost in a thread
            log.exception("live reader failed")
            reason = f"reader failed: {err!r}"
        finally:
            self._finish(reason)

    def _put_frame(self, image: av.VideoFrame, stamp: float, arrival: float) -> None:
        with self._cond:
            seq = self._latest.seq + 1 if self._latest is not None else 1
            self._latest = Frame(image, stamp, arrival, seq)
            self._recent.append((seq, stamp))
            self._cond.notify_all()

    def _finish(self, reason: str) -> None:
        with self._cond:
            self._running -= 1
            if self._running == 0:
                self.reason = self.reason or reason
                self.opened.close()  # every thread is done with its container
            elif reason != "stopped":
                self._stop.set()  # a device pair without one of its devices cannot go on
                self.reason = reason
            self._cond.notify_all()

    def next_frame(self, after: int, timeout: float, stall_ends: bool = True) -> tuple[Frame, list[float]] | None:
        """The newest frame decoded after frame ``after`` (its seq; 0: none yet) and the stream times of the frames
        in between that nobody took; None when the stream ends, or no newer frame comes within ``timeout`` s
        (which ends the stream when ``stall_ends``)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while (self._latest is None or self._latest.seq <= after) and not self.ended:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if stall_ends:
                        self.reason = f"no new frame for {timeout:g} s"
                    return None
                self._cond.wait(remaining)
            latest = self._latest
            if latest is None or latest.seq <= after:
                return None
            return latest, [t for seq, t in self._recent if after < seq < latest.seq]

    def wait_audio(self, until: float, timeout: float) -> None:
        """Wait up to ``timeout`` s for the audio to reach stream time ``until`` (or the stream to end)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.ring.end_time < until and not self.ended:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._cond.wait(remaining)

    def window(self, end_time: float, n: int) -> tuple[np.ndarray, float, float]:
        """`AudioRing.window`, under the lock."""
        with self._cond:
            return self.ring.window(end_time, n)

    def audio(self, start: float, stop: float) -> np.ndarray:
        """Samples from stream time ``start`` to ``stop`` (zeros where there are none yet), under the lock."""
        with self._cond:
            return self.ring.read(round(start * self.ring.rate), round(stop * self.ring.rate))
