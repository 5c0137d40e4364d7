"""Checks on files uploaded to the web app: where they are, how big, how long, and that the decoders read them.

`vssl serve` passes every upload through these functions before it analyses anything. A file is accepted only if

* it is a regular file inside the app's upload folder (`upload_path`; symlinks resolved): a request can never
  make the app open another server path, nor a URL (FFmpeg would fetch ``http:`` "paths");
* it holds at most ``max_bytes`` (Gradio refuses larger uploads too, before storing them);
* the decoders read it, whatever its name says: an image decodes fully (Pillow) and has at most ``max_pixels``;
  audio decodes (soundfile, else PyAV), lasts at most ``max_audio_seconds`` and, for WAV, holds all the samples
  its header declares; a video has a video stream (not a cover picture, not a still image) whose first frame
  decodes, frames of at most ``max_pixels`` and lasts at most ``max_video_seconds``.

Durations come from the timestamps of every packet, demuxed without decoding (fast, and a header claiming a
short duration does not help), so a long compressed file is refused before it is decoded into memory.
Metadata tags that are not UTF-8 never decide anything (PyAV opens with ``metadata_errors="replace"``).
Refusals are `UploadError`s that name the file by its upload name, never by a server path.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import torch
from PIL import Image

from vssl.audio import load_audio
from vssl.errors import ConfigError, MediaError, VsslError
from vssl.vision import load_image

logger = logging.getLogger(__name__)

_UNSAFE_NAME = re.compile(r"[^\w.,()+ -]")


class UploadError(VsslError):
    """An upload the app refuses; the message starts with the upload's name and says why."""

    def __init__(self, name: str, problem: str):
        self.name, self.problem = name, problem
        super().__init__(f"{name}: {problem}")


@dataclass(frozen=True)
class UploadLimits:
    """What the web app accepts (``vssl serve --max-upload-mb/--max-audio-seconds/--max-video-seconds``)."""

    max_bytes: int = 50_000_000
    """Largest upload, in bytes (50 MB: about 10 minutes of phone video at 720p)."""
    max_audio_seconds: float = 60.0
    """Longest audio clip; the model listens to a 3 s window from its middle."""
    max_video_seconds: float = 600.0
    """Longest video (every stream, its audio included)."""
    max_pixels: int = 40_000_000
    """Largest image or video frame (width x height; 8K video is 33 million)."""

    def __post_init__(self):
        for key, value in vars(self).items():
            if not value > 0:
                raise ConfigError(f"upload limit {key} must be positive, got {value}")


DEFAULT_LIMITS = UploadLimits()


def display_name(path: str | Path) -> str:
    """The file name of ``path`` with anything but letters, digits and ``.,()+ -_`` replaced: safe to show."""
    return _UNSAFE_NAME.sub("_", Path(str(path)).name)[:100] or "upload"


def upload_path(payload: Mapping[str, Any] | str | None, root: str | Path) -> Path | None:
    """The server path of an upload (a Gradio ``FileData`` payload or a path) if it is a regular file in ``root``.

    Gradio refuses request paths outside its upload folder itself, but lets ``http(s)`` URLs marked as streams
    through unchanged; this check holds whatever Gradio does. None when nothing was uploaded.
    """
    if payload is None:
        return None
    raw = payload.get("path") if isinstance(payload, Mapping) else payload
    if not isinstance(raw, str) or not raw:
        raise UploadError("upload", "the request names no uploaded file")
    real, folder = Path(os.path.realpath(raw)), Path(os.path.realpath(root))
    if not os.path.isabs(raw) or not real.is_relative_to(folder) or real == folder or not real.is_file():
        logger.warning("refused a request for %r: not a file uploaded to %s", raw, folder)
        raise UploadError(display_name(raw), "not a file uploaded to this app")
    return real


def _check_size(path: Path, limits: UploadLimits, name: str) -> None:
    size = path.stat().st_size
    if size == 0:
        raise UploadError(name, "the file is empty")
    if size > limits.max_bytes:
        raise UploadError(name, f"{size / 1e6:.1f} MB, above the upload limit of {limits.max_bytes / 1e6:g} MB")


@contextmanager
def _decoding(path: Path, name: str, what: str) -> Iterator[None]:
    """Turn a decoder's `MediaError` about ``path`` into an `UploadError` about ``name`` (no server path)."""
    try:
        yield
    except MediaError as err:
        logger.info("refused %s: %s", path, err.problem)
        raise UploadError(name, f"{what} ({err.problem.replace(str(path), name)})") from err


def media_seconds(path: str | Path) -> float | None:
    """How long a media file lasts: the latest packet end over all its streams, demuxed (not decoded).

    None when PyAV cannot open or demux the file, or no packet carries a timestamp.
    """
    end = None
    try:
        with av.open(str(path), metadata_errors="replace") as container:
            start = container.start_time / av.time_base if container.start_time is not None else 0.0
            for packet in container.demux():
                if packet.pts is not None and packet.time_base is not None:
                    t = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                    end = t if end is None else max(end, t)
    except (av.FFmpegError, OSError, ValueError):
        return None
    return None if end is None else end - start


def truncated_wav(path: str | Path) -> bool:
    """Whether a RIFF/WAVE file holds fewer data bytes than its header declares (an interrupted upload).

    soundfile reads such a file without a word, up to the cut. Streams written before their length was known
    declare 0 or 0xFFFFFFFF bytes: those count as complete. Any other file: False.
    """
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"WAVE":
            return False
        while len(chunk := fh.read(8)) == 8:
            size = int.from_bytes(chunk[4:], "little")
            if chunk[:4] == b"data":
                here = fh.tell()
                return size not in (0, 0xFFFFFFFF) and fh.seek(0, os.SEEK_END) - here < size
            fh.seek(size + (size & 1), os.SEEK_CUR)  # chunks are padded to even sizes
    return False  # no data chunk: the decoders refuse it


def read_image(path: str | Path, limits: UploadLimits = DEFAULT_LIMITS) -> Image.Image:
    """An uploaded image, fully decoded to RGB (EXIF orientation applied, as `vssl.vision.load_image`)."""
    path, name = Path(path), display_name(path)
    _check_size(path, limits, name)
    try:
        with Image.open(path) as img:
            width, height = img.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        logger.info("refused %s: %s", path, err)
        raise UploadError(name, "not an image the decoder can read (JPEG, PNG, WebP, ...)") from err
    if width * height > limits.max_pixels:
        raise UploadError(name, f"{width}x{height} pixels, above the limit of {limits.max_pixels:,}")
    with _decoding(path, name, "not an image the decoder can read"):
        return load_image(path)


def read_audio(path: str | Path, sample_rate: int, limits: UploadLimits = DEFAULT_LIMITS) -> torch.Tensor:
    """An uploaded audio (or video) file decoded to a mono waveform ``[T]`` at ``sample_rate``."""
    path, name = Path(path), display_name(path)
    _check_size(path, limits, name)
    if truncated_wav(path):
        raise UploadError(name, "the WAV file is truncated: it holds fewer samples than its header declares")
    too_long = f"longer than the limit of {limits.max_audio_seconds:g} s"
    seconds = media_seconds(path)
    if seconds is not None and seconds > limits.max_audio_seconds:
        raise UploadError(name, f"{seconds:.1f} s of audio, {too_long}")
    with _decoding(path, name, "not audio the decoders can read"):
        wave = load_audio(path, sample_rate)
    if wave.shape[-1] > limits.max_audio_seconds * sample_rate + 1:  # demuxing could not tell
        raise UploadError(name, f"{wave.shape[-1] / sample_rate:.1f} s of audio, {too_long}")
    return wave


def check_video(path: str | Path, limits: UploadLimits = DEFAULT_LIMITS) -> float:
    """Refuse an uploaded video the app should not analyse; else return its duration in seconds."""
    path, name = Path(path), display_name(path)
    _check_size(path, limits, name)
    try:
        container = av.open(str(path), metadata_errors="replace")
    except (av.FFmpegError, OSError, ValueError) as err:
        logger.info("refused %s: %s", path, err)
        raise UploadError(name, "not a video the decoder can read (MP4, WebM, MOV, ...)") from err
    with container:
        if container.format.name == "image2" or container.format.name.endswith("_pipe"):
            raise UploadError(name, "a still image, not a video")
        streams = container.streams.video
        if not streams or streams[0].disposition & av.stream.Disposition.attached_pic:
            kinds = ", ".join(s.type for s in container.streams) or "none"
            raise UploadError(name, f"no video stream (streams: {kinds})")
        width, height = streams[0].codec_context.width, streams[0].codec_context.height
        if width * height > limits.max_pixels:
            raise UploadError(name, f"frames of {width}x{height} pixels, above the limit of {limits.max_pixels:,}")
        try:
            next(container.decode(streams[0]))
        except (StopIteration, av.FFmpegError, ValueError) as err:
            logger.info("refused %s: %s", path, err)
            raise UploadError(name, "its first video frame does not decode") from err
    seconds = media_seconds(path)
    if seconds is None:
        raise UploadError(name, "cannot tell how long the video lasts (no timestamps)")
    if seconds > limits.max_video_seconds:
        raise UploadError(name, f"{seconds:.1f} s long, above the limit of {limits.max_video_seconds:g} s")
    return seconds


@contextmanager
def decoding_video(path: str | Path) -> Iterator[None]:
    """Around the analysis of a checked video: a decoding failure later in the file becomes an `UploadError`."""
    with _decoding(Path(path), display_name(path), "the video does not decode"):
        yield
