"""A live MPEG-TS stream, paced at wall-clock speed, for the tests and benchmarks of ``vssl localize --live`` and
for trying it without a camera:

    mkfifo /tmp/live.ts
    python -m vssl.data.synth.stream /tmp/live.ts --seconds 20 --image frame.jpg --audio clip.wav &
    vssl localize --model M --live /tmp/live.ts

TARGET is a path (a named pipe: the writer waits for its reader) or a ``udp://HOST:PORT`` URL. Frame ``i`` is
sent ``i / fps`` s after the start, with the audio up to the end of its display time; the muxer's buffer is
flushed packet by packet, as a live encoder does. Video: MPEG-2 (a key frame every ``gop`` frames, no B-frames),
audio: MP2 mono: encoders every FFmpeg build has. Without ``image``, frame ``i`` is a grey of level
`vssl.data.synth.video.brightness` ``(i, frames)`` with a little texture (a test can tell which frame it got);
without ``audio``, a 440 Hz tone.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from contextlib import ExitStack

import av
import numpy as np

from vssl.data.synth.video import brightness

MP2_FRAME = 1152  # samples per MP2 frame


def _pictures(image: np.ndarray | None, size: tuple[int, int], frames: int) -> Callable[[int], np.ndarray]:
    if image is not None:
        return lambda i: image
    texture = np.random.default_rng(0).integers(-6, 7, (size[1], size[0], 1))
    return lambda i: np.clip(brightness(i, frames) + texture, 0, 255).astype(np.uint8).repeat(3, axis=2)


def stream_video(
    target: str,
    seconds: float,
    fps: int = 10,
    size: tuple[int, int] = (128, 96),
    image: np.ndarray | None = None,
    wave: np.ndarray | None = None,
    sample_rate: int = 16000,
    gop: int = 5,
    on_start: Callable[[float], None] | None = None,
) -> int:
    """Send ``seconds`` of video at ``fps`` (``image`` ``[H, W, 3]`` uint8, else the grey ramp at ``size``) and audio
    (``wave`` ``[T]`` float at ``sample_rate``, zeros past its end; else a tone) to ``target`` in real time.

    ``on_start(t0)`` gets the `time.monotonic` of the start (frame ``i`` leaves at ``t0 + i / fps``). Returns the
    frames sent; a reader that goes away ends the stream early (no error).
    """
    frames = round(seconds * fps)
    if image is not None:
        size = (image.shape[1], image.shape[0])
    picture = _pictures(image, size, frames)
    n = round(seconds * sample_rate)
    if wave is None:
        wave = 0.3 * np.sin(2 * np.pi * 440.0 * np.arange(n) / sample_rate)
    wave = np.pad(np.asarray(wave, np.float32)[:n], (0, max(0, n - len(wave))))
    sent = 0
    try:
        with ExitStack() as files:
            if target.startswith("udp://"):
                url = f"{target}{'&' if '?' in target else '?'}pkt_size=1316"  # 7 TS packets a datagram
            else:  # Python's open waits for a pipe's reader without holding the GIL (FFmpeg's would hold it)
                url = files.enter_context(open(target, "wb", buffering=0))
            container = files.enter_context(av.open(url, "w", format="mpegts", options={"flush_packets": "1"}))
            video = container.add_stream("mpeg2video", rate=fps)
            video.width, video.height, video.pix_fmt = size[0] + size[0] % 2, size[1] + size[1] % 2, "yuv420p"
            video.bit_rate = 2_000_000
            video.codec_context.gop_size, video.codec_context.max_b_frames = gop, 0
            video.codec_context.thread_count = 1  # frame threads would hold frames back
            audio = container.add_stream("mp2", rate=sample_rate, layout="mono")
            t0, position = time.monotonic(), 0
            if on_start is not None:
                on_start(t0)
            for i in range(frames):
                time.sleep(max(0.0, t0 + i / fps - time.monotonic()))
                while position < min(n, round((i + 1) / fps * sample_rate)):
                    chunk = wave[position : position + MP2_FRAME]
                    chunk = np.pad(chunk, (0, MP2_FRAME - len(chunk)))
                    sound = av.AudioFrame.from_ndarray(chunk[None], format="flt", layout="mono")
                    sound.sample_rate, sound.pts = sample_rate, position
                    container.mux(audio.encode(sound))
                    position += MP2_FRAME
                pixels = picture(i)
                if pixels.shape[:2] != (video.height, video.width):
                    pixels = np.pad(
                        pixels, ((0, video.height - pixels.shape[0]), (0, video.width - pixels.shape[1]), (0, 0))
                    )
                shown = av.VideoFrame.from_ndarray(pixels, format="rgb24")
                shown.pts = i
                container.mux(video.encode(shown))
                sent += 1
            container.mux(video.encode(None))
            container.mux(audio.encode(None))
    except (BrokenPipeError, av.error.PyAVCallbackError):  # the reader went away (closing then fails too)
        pass
    return sent


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", help="named pipe, file or udp://HOST:PORT")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--size", default="128x96", help="WIDTHxHEIGHT of the grey ramp (default 128x96)")
    parser.add_argument("--image", help="picture shown throughout (default: a grey ramp)")
    parser.add_argument("--audio", help="audio file, resampled to 16 kHz mono (default: a 440 Hz tone)")
    args = parser.parse_args(argv)
    image = wave = None
    if args.image:
        from vssl.vision import load_image

        image = np.asarray(load_image(args.image))
    if args.audio:
        from vssl.audio import load_audio

        wave = load_audio(args.audio, 16000).numpy()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    stream_video(args.target, args.seconds, args.fps, size, image, wave, on_start=lambda t0: print(t0, flush=True))


if __name__ == "__main__":
    main()
