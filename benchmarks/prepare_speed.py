"""``vssl prepare`` vs a naive sequential loop, on synthetic VGGSound-like videos made with PyAV.

Both sides run in this process on the same videos (10 s, 25 fps, 320x240 MPEG-4, 44.1 kHz AAC by default)
and write the same layout (middle frame as JPEG, 16 kHz mono wav). The naive loop is what preparation
scripts usually do: one process, decode every video frame to find the middle one, then the audio.
Prints clips/s of each and the ratio; vssl's figure includes starting its worker processes (about a second).
Usage: python benchmarks/prepare_speed.py [--clips 64] [--seconds 10] [--workers 0]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import av
import soundfile as sf

from vssl.audio import load_audio
from vssl.data.prepare import PrepareConfig, prepare
from vssl.data.synth.video import write_video


def naive(videos: list[Path], out: Path) -> None:
    """One clip after the other: every frame decoded, the middle one kept; audio decoded and resampled."""
    (out / "frames").mkdir(parents=True)
    (out / "audio").mkdir()
    for video in videos:
        with av.open(str(video)) as container:
            frames = list(container.decode(video=0))
        frames[len(frames) // 2].to_image().save(out / "frames" / f"{video.stem}.jpg", quality=95)
        wave = load_audio(video, 16000)
        sf.write(str(out / "audio" / f"{video.stem}.wav"), wave.numpy(), 16000, subtype="PCM_16")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=64, help="number of synthetic videos")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each video")
    parser.add_argument("--workers", type=int, default=0, help="vssl prepare workers (0: one per core)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vssl-prepare-bench-") as tmp:
        root = Path(tmp)
        (root / "videos").mkdir()
        t0 = time.perf_counter()
        videos = [
            write_video(root / "videos" / f"clip{i:04d}.mp4", args.seconds, fps=25, size=(320, 240), sample_rate=44100)
            for i in range(args.clips)
        ]
        took = time.perf_counter() - t0
        print(f"wrote {args.clips} videos of {args.seconds:g} s in {took:.1f} s; CPU cores: {os.cpu_count()}")

        t0 = time.perf_counter()
        summary = prepare(root / "videos", root / "vssl", PrepareConfig(workers=args.workers), progress=False)
        t_ours = time.perf_counter() - t0
        assert len(summary.ids) == args.clips and not summary.failures, summary.text()

        t0 = time.perf_counter()
        naive(videos, root / "naive")
        t_naive = time.perf_counter() - t0

    print(f"naive loop (1 process, all frames decoded): {args.clips / t_naive:8.2f} clips/s")
    print(f"vssl prepare (workers={args.workers or 'auto'}):             {args.clips / t_ours:8.2f} clips/s")
    print(f"speed-up: {t_naive / t_ours:.2f}x")


if __name__ == "__main__":
    main()
