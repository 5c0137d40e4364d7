"""Inference speed on this machine: one image + audio (cold and warm), video frames/s, feature reuse.

Prints, for a model size (random weights, default ``resnet18`` at 224x224) or a model folder:
* the machine's limit: measured float32 matmul GFLOP/s (torch, all threads);
* the model's FLOP count per (frame, clip) pair: image encoder, audio encoder (spectrogram included), map;
* single image + audio latency from files (JPEG 640x480 + 10 s wav): cold (first call after loading) and
  warm, and the model alone on ready tensors, with the FLOP/s it reaches;
* video frames/s at 224x224 (every frame analysed; timeline only, and with the overlay MP4);
* one frame with K audio windows: image features computed once vs once per window.
Timings are the fastest of several runs (and the median): on a shared machine the fastest is the closest to
what the hardware does. Usage: python benchmarks/infer_speed.py [--model resnet18] [--windows 8] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from vssl.data.synth_video import write_video
from vssl.inference import Localizer, Threshold
from vssl.inference.hub import load_model
from vssl.inference.video import localize_video
from vssl.models.localizer import paired_maps


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Best float32 ``n x n`` matmul rate in GFLOP/s (2 n^3 per product)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best = min(_seconds(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _seconds(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _best_median(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(fastest, median) of ``repeats`` runs: on a shared machine the fastest is the closest to the hardware."""
    times = [_seconds(fn) for _ in range(repeats)]
    return min(times), statistics.median(times)


def count_flops(loc: Localizer) -> dict[str, float]:
    """GFLOP of one image encoding, one audio encoding (spectrogram included) and one map."""
    model = loc.model.eval()
    size, n = loc.cfg.image.size, loc.cfg.audio.num_samples
    image, wave = torch.randn(1, 3, size, size), torch.randn(1, n) * 0.1
    out = {}
    with torch.no_grad():
        for name, fn in (("image", lambda: model.encode_image(image)), ("audio", lambda: model.encode_waveform(wave))):
            with FlopCounterMode(display=False) as counter:
                fn()
            out[name] = counter.get_total_flops() / 1e9
        features, embedding = model.encode_image(image), model.encode_waveform(wave)
        with FlopCounterMode(display=False) as counter:
            paired_maps(features, embedding)
        out["map"] = counter.get_total_flops() / 1e9
    return out


def _media(folder: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    image = folder / "frame.jpg"
    Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(image, quality=90)
    audio = folder / "clip.wav"
    sf.write(audio, (rng.standard_normal(160_000) * 0.1).astype(np.float32), 16000, subtype="PCM_16")
    return image, audio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18", help="size name (random weights) or model folder")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of the 224x224, 10 fps test video")
    parser.add_argument("--windows", type=int, default=8, help="audio windows of one frame (reuse measure)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    machine = matmul_gflops()
    print(f"torch threads: {torch.get_num_threads()}")
    print(f"machine: float32 matmul {machine:.1f} GFLOP/s (2048x2048, best of 5)")

    t0 = time.perf_counter()
    loc = Localizer(load_model(args.model), Threshold(0.5))
    load_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        image, audio = _media(Path(tmp))
        cold = _seconds(lambda: loc.localize(image, audio))  # the model's first run
        flops = count_flops(loc)
        pair = flops["image"] + flops["audio"] + flops["map"]
        print(
            f"model {args.model} ({loc.cfg.image.size}x{loc.cfg.image.size}): {pair:.2f} GFLOP per pair "
            f"(image {flops['image']:.2f}, audio {flops['audio']:.2f}, map {flops['map']:.4f}); "
            f"loaded in {load_s:.2f} s"
        )
        warm, warm_median = _best_median(lambda: loc.localize(image, audio), args.repeats)
        size, n = loc.cfg.image.size, loc.cfg.audio.num_samples
        x, w = torch.randn(1, 3, size, size), torch.randn(1, n) * 0.1
        model_s, model_median = _best_median(lambda: loc.model.localize(x, w), args.repeats)
        print(f"single image + audio from files: cold {cold * 1e3:.0f} ms; warm best {warm * 1e3:.0f} ms, "
              f"median {warm_median * 1e3:.0f} ms")  # fmt: skip
        rate = pair / model_s
        print(f"model alone on tensors: best {model_s * 1e3:.0f} ms = {rate:.1f} GFLOP/s "
              f"({100 * rate / machine:.0f} % of the matmul rate), median {model_median * 1e3:.0f} ms")  # fmt: skip

        video = write_video(Path(tmp) / "video.mp4", seconds=args.seconds, fps=10, size=(224, 224))
        frames = round(args.seconds * 10)
        timeline_s, _ = _best_median(lambda: localize_video(loc, video, fps=10, progress=False), 2)
        out = Path(tmp) / "o.mp4"
        overlay_s, _ = _best_median(lambda: localize_video(loc, video, out, fps=10, progress=False), 2)
        print(f"video 224x224, every frame: {frames / timeline_s:.1f} frames/s (timeline), "
              f"{frames / overlay_s:.1f} frames/s (with the overlay MP4); best of 2")  # fmt: skip

        frame = Image.open(image).convert("RGB")
        waves = [torch.randn(n) * 0.1 for _ in range(args.windows)]
        repeats = max(3, args.repeats // 3)
        once, _ = _best_median(lambda: loc.localize(frame, waves), repeats)
        each, _ = _best_median(lambda: [loc.localize(frame, wave) for wave in waves], repeats)
        k = args.windows
        ideal = k * (flops["image"] + flops["audio"]) / (flops["image"] + k * flops["audio"])
        print(f"one frame, {k} audio windows (best of {repeats}): image encoded once {once * 1e3:.0f} ms, "
              f"once per window {each * 1e3:.0f} ms: {each / once:.2f}x faster (FLOP ratio {ideal:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
