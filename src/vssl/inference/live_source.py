"""Live sources for ``vssl localize --live SOURCE``: what SOURCE may be, and opening it with PyAV.

SOURCE is one of:

* a video device plus an audio device, ``VIDEO+AUDIO`` with ``v4l2:DEVICE`` for the video and ``alsa:NAME``
  or ``pulse:NAME`` for the audio (Linux; FFmpeg's input devices), e.g. ``v4l2:/dev/video0+alsa:default``,
  ``v4l2:/dev/video2+alsa:plughw:1,0`` or ``v4l2:/dev/video0+pulse:default``. Both devices are stamped with
  the wall clock (``use_wallclock_as_timestamps``), so their times agree;
* a network URL carrying audio and video: ``rtsp://``, ``rtsps://``, ``rtmp://``, ``http://``, ``https://``,
  ``udp://``, ``rtp://``, ``srt://``, ``tcp://`` (e.g. ``udp://127.0.0.1:5000`` listens there);
* a path to a named pipe or to a growing file carrying a live MPEG-TS stream. A growing file is followed (read
  on as it grows, FFmpeg's ``follow``) until no new byte comes for the read timeout.

Opening probes at most `PROBE_SECONDS` of the stream (FFmpeg's default, 5 s, would delay the first decision).
Every failure is a `MediaError` whose message starts with SOURCE.
"""

from __future__ import annotations

import os
import re
import select
from dataclasses import dataclass
from pathlib import Path

import av

from vssl.errors import MediaError

VIDEO_DEVICES = {"v4l2": "video4linux2"}
"""SOURCE prefix of a video device -> FFmpeg input format."""
AUDIO_DEVICES = {"alsa": "alsa", "pulse": "pulse"}
"""SOURCE prefix of an audio device -> FFmpeg input format."""
URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "rtp", "srt", "tcp")
PROBE_SECONDS = 0.5
"""Stream time FFmpeg may read to find the streams' parameters before the first frame is delivered."""
PROBE_OPTIONS = {"analyzeduration": str(round(PROBE_SECONDS * 1e6)), "probesize": "262144"}
SYNTAX = (
    "a live source is VIDEO_DEVICE+AUDIO_DEVICE (e.g. v4l2:/dev/video0+alsa:default), a URL "
    f"({', '.join(s + '://' for s in URL_SCHEMES)}) or a path to a named pipe or growing MPEG-TS file"
)
_DEVICE_PAIR = re.compile(
    rf"^(?P<vkind>{'|'.join(VIDEO_DEVICES)}):(?P<video>.+?)\+(?P<akind>{'|'.join(AUDIO_DEVICES)}):(?P<audio>.+)$"
)
_PREFIX = re.compile(r"^(?P<prefix>[A-Za-z][A-Za-z0-9+.-]*):")


@dataclass(frozen=True)
class LiveSource:
    """A parsed SOURCE: ``kind`` is ``devices``, ``url`` or ``path``."""

    text: str
    """SOURCE as given (named in every error)."""
    kind: str
    video: str
    """Video device, URL or path."""
    video_format: str | None = None
    """FFmpeg input format of ``video`` (None: probed)."""
    audio: str | None = None
    """Audio device (``devices`` only; otherwise the audio is in the same stream as the video)."""
    audio_format: str | None = None


def parse_source(text: str) -> LiveSource:
    """SOURCE text -> `LiveSource`; raises `MediaError` naming it when it is none of the forms above.

    Nothing is opened: a device pair or a URL is only checked for its syntax, a path for existing.
    """
    if not text:
        raise MediaError(text, f"empty live source; {SYNTAX}")
    pair = _DEVICE_PAIR.match(text)
    if pair:
        return LiveSource(
            text,
            "devices",
            pair["video"],
            VIDEO_DEVICES[pair["vkind"]],
            pair["audio"],
            AUDIO_DEVICES[pair["akind"]],
        )
    prefix = _PREFIX.match(text)
    if prefix and text[prefix.end() :].startswith("//"):
        if prefix["prefix"].lower() not in URL_SCHEMES:
            raise MediaError(text, f"unknown URL scheme {prefix['prefix']!r}; {SYNTAX}")
        return LiveSource(text, "url", text)
    if prefix and prefix["prefix"] in (*VIDEO_DEVICES, *AUDIO_DEVICES) and not Path(text).exists():
        raise MediaError(text, "a device needs its pair: VIDEO+AUDIO, e.g. v4l2:/dev/video0+alsa:default")
    path = Path(text)
    if not path.exists():
        raise MediaError(text, f"no such file or named pipe; {SYNTAX}")
    if not (path.is_fifo() or path.is_file()):
        raise MediaError(text, "not a named pipe or a regular file")
    return LiveSource(text, "path", str(path), "mpegts")


def _open(source: LiveSource, url: str, fmt: str | None, options: dict[str, str], timeout: float):
    """``av.open`` with the errors turned into `MediaError` naming SOURCE."""
    try:
        return av.open(url, format=fmt, options={**PROBE_OPTIONS, **options}, timeout=(timeout, timeout))
    except av.ExitError as err:  # PyAV's interrupt: the timeout passed
        kind = "MPEG-TS stream" if fmt == "mpegts" else "stream"
        raise MediaError(source.text, f"no {kind} found within {timeout:g} s") from err
    except (av.FFmpegError, OSError, ValueError) as err:
        raise MediaError(source.text, f"cannot open the live source: {err}") from err


def _wait_for_writer(source: LiveSource, timeout: float) -> int:
    """A named pipe opened without blocking, once it has data: its file descriptor (FFmpeg reads ``pipe:FD``).

    A plain open of a pipe would block until a writer comes, beyond any timeout.
    """
    fd = os.open(source.video, os.O_RDONLY | os.O_NONBLOCK)
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    if not poller.poll(round(timeout * 1000)):
        os.close(fd)
        raise MediaError(source.text, f"no data in the named pipe within {timeout:g} s (is a writer connected?)")
    os.set_blocking(fd, True)
    return fd


@dataclass
class OpenSource:
    """The containers of an opened SOURCE (one, or two for a device pair) and what to close with them."""

    source: LiveSource
    containers: list[av.container.InputContainer]
    fds: list[int]
    """File descriptors FFmpeg reads as ``pipe:FD`` and does not close."""

    def close(self) -> None:
        for container in self.containers:
            container.close()
        for fd in self.fds:
            os.close(fd)
        self.fds.clear()


def open_source(source: LiveSource, timeout: float = 10.0) -> OpenSource:
    """Open ``source`` (see the module's doc); ``timeout`` s bounds the wait for its first data and each read.

    Raises `MediaError` naming SOURCE when it cannot be opened or lacks an audio or a video stream.
    """
    fds: list[int] = []
    if source.kind == "devices":
        for fmt in (source.video_format, source.audio_format):
            if not any(fmt in names.split(",") for names in av.formats_available):  # "video4linux2,v4l2"
                raise MediaError(source.text, f"this FFmpeg build (PyAV) has no {fmt!r} input device")
        if not Path(source.video).exists():
            raise MediaError(source.text, f"no video device {source.video}")
        clock = {"use_wallclock_as_timestamps": "1"}
        video = _open(source, source.video, source.video_format, clock, timeout)
        try:
            audio = _open(source, source.audio or "", source.audio_format, clock, timeout)
        except MediaError:
            video.close()
            raise
        containers = [video, audio]
    elif source.kind == "url":
        containers = [_open(source, source.video, None, {}, timeout)]
    elif Path(source.video).is_fifo():
        fds.append(_wait_for_writer(source, timeout))
        try:
            containers = [_open(source, f"pipe:{fds[0]}", source.video_format, {}, timeout)]
        except MediaError:
            os.close(fds[0])
            raise
    else:
        follow = {"follow": "1", "seekable": "0", "rw_timeout": str(round(timeout * 1e6))}  # no seek to its end
        containers = [_open(source, source.video, source.video_format, follow, timeout)]
    opened = OpenSource(source, containers, fds)
    kinds = [s.type for c in containers for s in c.streams]
    missing = [k for k in ("video", "audio") if k not in kinds]
    if missing:
        opened.close()
        raise MediaError(source.text, f"no {' and no '.join(missing)} stream (streams: {', '.join(kinds) or 'none'})")
    return opened
