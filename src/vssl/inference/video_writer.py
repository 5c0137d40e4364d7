"""Write overlay frames as an MP4 with an audio track (PyAV), interleaving audio and video by time.

Video: H.264 (``libx264``) when the FFmpeg build has it, else MPEG-4 Part 2; yuv420p, so the frame size is
rounded up to even numbers (white padding). Audio: the source file's first audio stream copied packet by
packet when MP4 can hold its codec, otherwise a waveform encoded as AAC.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np
import torch
from PIL import Image

from vssl.atomic import atomic_path
from vssl.audio import open_media

COPYABLE_AUDIO = ("aac", "mp3", "alac")  # codecs an MP4 holds that FFmpeg muxes without flags
AAC_FRAME = 1024  # samples per AAC frame


def video_codec() -> str:
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


class _CopiedAudio:
    """The packets of a file's first audio stream, muxed unchanged up to a given time."""

    def __init__(self, source: Path, out: av.container.OutputContainer):
        self.input = open_media(source)
        template = self.input.streams.audio[0]
        self.stream = out.add_stream_from_template(template)
        self.packets: Iterator[av.Packet] = self.input.demux(template)
        self.pending: av.Packet | None = None
        self.out = out

    def feed_until(self, time: float | None) -> None:
        """Mux every packet that starts before ``time`` s (None: all that are left)."""
        while True:
            packet = self.pending if self.pending is not None else next(self.packets, None)
            self.pending = None
            if packet is None:
                return
            if packet.dts is None:  # the demuxer's empty flush packet
                continue
            if time is not None and packet.pts is not None and float(packet.pts * packet.time_base) >= time:
                self.pending = packet
                return
            packet.stream = self.stream
            self.out.mux(packet)

    def close(self) -> None:
        self.input.close()


class _EncodedAudio:
    """A mono waveform encoded as AAC, up to a given time; `extend` appends samples (a live stream's)."""

    def __init__(self, wave: torch.Tensor, sample_rate: int, out: av.container.OutputContainer):
        self.samples = wave.detach().cpu().float().clamp(-1.0, 1.0).numpy()
        self.rate = sample_rate
        self.stream = out.add_stream("aac", rate=sample_rate, layout="mono")
        self.position = 0
        self.start = 0  # position of self.samples[0]: encoded samples are let go when more are appended
        self.growing = False
        self.out = out

    def extend(self, samples: np.ndarray) -> None:
        """Append ``samples [n]``; until the end, only whole AAC frames are encoded (the encoder's rule)."""
        kept = self.samples[self.position - self.start :]
        self.samples = np.concatenate([kept, np.clip(samples, -1.0, 1.0).astype(np.float32, copy=False)])
        self.start, self.growing = self.position, True

    def feed_until(self, time: float | None) -> None:
        available = self.start + len(self.samples)
        end = available if time is None else min(available, round(time * self.rate))
        while self.position < end:
            if self.growing and time is not None and available - self.position < AAC_FRAME:
                return  # a partial frame only at the very end
            offset = self.position - self.start
            chunk = self.samples[offset : offset + AAC_FRAME]
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk[None]), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = self.rate, self.position
            self.out.mux(self.stream.encode(frame))
            self.position += len(chunk)
        if time is None:
            self.out.mux(self.stream.encode(None))

    def close(self) -> None:
        pass


class OverlayVideoWriter:
    """A context manager writing images at ``fps`` to ``path`` (MP4) with audio copied from ``copy_audio_from``
    (when its codec fits MP4) or else encoded from ``wave`` ``[T]`` at ``sample_rate``."""

    def __init__(
        self, path: str | Path, fps: float, copy_audio_from: Path | None, wave: torch.Tensor, sample_rate: int
    ):
        self.path = Path(path)
        self.rate = Fraction(fps).limit_denominator(1001)
        self.copy_audio_from = copy_audio_from
        self.wave, self.sample_rate = wave, sample_rate
        self.container: av.container.OutputContainer | None = None
        self.video: av.VideoStream | None = None
        self.audio: _CopiedAudio | _EncodedAudio | None = None
        self.size = (0, 0)
        self.count = 0
        self.growing = False  # audio arrives through add_audio

    def __enter__(self) -> OverlayVideoWriter:
        self.container = av.open(str(self.path), "w", format="mp4")
        return self

    def _start(self, size: tuple[int, int]) -> None:
        """Add both streams (all must exist before the first packet is muxed)."""
        assert self.container is not None
        self.size = (size[0] + size[0] % 2, size[1] + size[1] % 2)
        codec = video_codec()
        self.video = self.container.add_stream(codec, rate=self.rate)
        self.video.width, self.video.height = self.size
        self.video.pix_fmt = "yuv420p"
        self.video.codec_context.time_base = 1 / self.rate
        if codec == "libx264":
            self.video.options = {"crf": "20", "preset": "veryfast"}
        else:
            self.video.bit_rate = 4_000_000
        if self.copy_audio_from is not None:
            with open_media(self.copy_audio_from) as probe:
                codec_name = probe.streams.audio[0].codec_context.name if probe.streams.audio else None
            if codec_name in COPYABLE_AUDIO:
                self.audio = _CopiedAudio(self.copy_audio_from, self.container)
        if self.audio is None:
            self.audio = _EncodedAudio(self.wave, self.sample_rate, self.container)
            self.audio.growing = self.growing

    def add_audio(self, samples: np.ndarray) -> None:
        """Append ``samples [n]`` to the encoded waveform (not with ``copy_audio_from``): for a live stream, whose
        audio is not known in advance."""
        if self.audio is None:
            self.wave = torch.cat([self.wave.flatten().float(), torch.from_numpy(np.asarray(samples, np.float32))])
            self.growing = True
        elif isinstance(self.audio, _EncodedAudio):
            self.audio.extend(samples)
        else:
            raise ValueError("add_audio: this writer copies its audio from a file")

    def write(self, image: Image.Image) -> None:
        """Append one frame (shown for 1/fps s); audio up to its end is interleaved."""
        if self.video is None:
            self._start(image.size)
        assert self.container is not None and self.video is not None and self.audio is not None
        if image.size != self.size:
            canvas = Image.new("RGB", self.size, (255, 255, 255))
            canvas.paste(image, (0, 0))
            image = canvas
        frame = av.VideoFrame.from_image(image.convert("RGB"))
        frame.pts, frame.time_base = self.count, 1 / self.rate
        self.container.mux(self.video.encode(frame))
        self.count += 1
        self.audio.feed_until(float(self.count / self.rate))

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        assert self.container is not None
        try:
            if kind is None and self.video is not None and self.audio is not None:
                self.container.mux(self.video.encode(None))
                self.audio.feed_until(None)
        finally:
            if self.audio is not None:
                self.audio.close()
            self.container.close()


def write_still_video(
    path: str | Path, frame: Image.Image, wave: torch.Tensor | np.ndarray, sample_rate: int = 16000, fps: float = 10
) -> Path:
    """An MP4 showing ``frame`` for as long as the mono ``wave [T]`` lasts, with that audio (AAC), atomically.

    For demos and tests: e.g. a synthetic object's sound followed by silence over its frame.
    """
    wave = torch.as_tensor(np.asarray(wave, dtype=np.float32))
    frames = max(1, round(len(wave) / sample_rate * fps))
    with atomic_path(path) as tmp, OverlayVideoWriter(tmp, fps, None, wave, sample_rate) as writer:
        for _ in range(frames):
            writer.write(frame)
    return Path(path)
