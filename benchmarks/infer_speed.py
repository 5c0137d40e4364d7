"""Inference speed on this machine: one image + audio (cold and warm), video frames/s, feature reuse, live streams.

Prints, for a model size (random weights, default ``resnet18`` at 224x224) or a model folder:
* the machine's limit: measured float32 matmul GFLOP/s (torch, all threads);
* the model's FLOP count per (frame, clip) pair: image encoder, audio encoder (spectrogram included), map;
* single image + audio latency from files (JPEG 640x480 + 10 s wav): cold (first call after loading) and
  warm, and the model alone on ready tensors, with the FLOP/s it reaches;
* video frames/s at 224x224 (every frame analysed; timeline only, and with the overlay MP4);
* one frame with K audio windows: image features computed once vs once per window;
* the live path (``vssl localize --live``): a real-time MPEG-TS stream of 224x224 frames and 16 kHz audio written
  by another process into a named pipe, decided as it plays: per-decision latency (median, p90) with the model
  idle between frames (5 decisions/s of a 25 fps stream), and decisions/s with the model always busy (every
  frame of a 50 fps stream due), beside the compute floor (FLOPs of image + audio + map / the matmul rate);
  float32 and bfloat16 (torch.autocast on the CPU); and one decision without a stream: PyTorch float32,
  bfloat16, ONNX Runtime. Each live figure is the best of ``--live-runs`` runs.
Timings are the fastest of several runs (and the median): on a shared machine the fastest is the closest to
what the hardware does. Usage: python benchmarks/infer_speed.py [--model resnet18] [--windows 8] [--threads N]
[--live-only] [--live-seconds 10] [--live-runs 3]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from vssl.data.synth.video import write_video
from vssl.inference import Localizer, Threshold, live_decisions
from vssl.inference.hub import load_model
from vssl.inference.result import make_results
from vssl.inference.video import localize_video
from vssl.maps import paired_maps


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Best float32 ``n x n`` matmul rate in GFLOP/s (2 n^3 per product)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best = min(_seconds(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _cpu_name() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "unknown CPU"
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown CPU")


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


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]


def live_stream_run(loc: Localizer, seconds: float, stream_fps: int, fps: float, bf16: bool) -> dict[str, float]:
    """The live path on a real-time 224x224 MPEG-TS stream written by another process into a named pipe, analysed
    at ``fps``: latency median and p90 (ms; the first decision left out), decisions/s and grid points dropped, over
    the decisions made while the stream played."""
    with tempfile.TemporaryDirectory() as tmp:
        fifo = Path(tmp) / "live.ts"
        os.mkfifo(fifo)
        cmd = [sys.executable, "-m", "vssl.data.synth.stream", str(fifo), "--seconds", str(seconds)]
        writer = subprocess.Popen([*cmd, "--fps", str(stream_fps), "--size", "224x224"], stdout=subprocess.PIPE)
        made = []
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext():
            for d in live_decisions(loc, str(fifo), fps=fps, timeout=10):
                made.append((time.monotonic(), d))
        writer.wait()
        started = float(writer.stdout.read().split()[0])
    during = [(wall, d) for wall, d in made[1:] if wall <= started + seconds]  # not the end-of-stream flush
    latencies = [d.latency_ms for _, d in during]
    return {
        "median": statistics.median(latencies),
        "p90": _p90(latencies),
        "per_s": (len(during) - 1) / (during[-1][0] - during[0][0]),
        "dropped": during[-1][1].dropped - during[0][1].dropped,
        "decisions": len(during),
    }


def decision_costs(loc: Localizer, repeats: int, folder: Path) -> dict[str, tuple[float, float]]:
    """(median, p90) ms of one decision on a 224x224 frame and a 3 s window, without a stream: the live path's
    `Localizer` calls in float32 and under bfloat16 autocast, and ONNX Runtime's image and audio graphs (``vssl
    export onnx --parts``) with the same preprocessing, map and decision."""
    rng = np.random.default_rng(0)
    frame = Image.fromarray(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8))
    wave = torch.randn(loc.cfg.audio.num_samples) * 0.1

    def torch_decision() -> None:
        loc.decide(loc.image_features([frame]), loc.audio_embeddings([wave]), [frame])

    def timed(fn: Callable[[], object], rounds: int = 3) -> tuple[float, float]:
        """(median, p90) of the round of ``repeats`` runs with the lowest median."""
        fn()
        best = min(([_seconds(fn) * 1e3 for _ in range(repeats)] for _ in range(rounds)), key=statistics.median)
        return statistics.median(best), _p90(best)

    out = {"PyTorch float32": timed(torch_decision)}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out["PyTorch bfloat16 autocast"] = timed(torch_decision)
    try:
        import onnxruntime as ort

        from vssl.export import export_onnx
    except ImportError as err:
        print(f"ONNX Runtime skipped: {err}")
        return out
    paths = export_onnx(loc.model, folder / "model.onnx", parts=True)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    image_part, audio_part = (ort.InferenceSession(str(p), options) for p in paths[1:])
    window = wave[None].numpy()

    def onnx_decision() -> None:
        x = loc._transform(frame)[None].numpy()
        features = torch.from_numpy(image_part.run(None, {"image": x})[0])
        embedding = torch.from_numpy(audio_part.run(None, {"waveform": window})[0])
        make_results(paired_maps(features, embedding), [frame], loc.threshold)

    out["ONNX Runtime float32"] = timed(onnx_decision)
    return out


def live_section(loc: Localizer, pair_gflop: float, machine: float, seconds: float, repeats: int, runs: int) -> None:
    """Each figure is the best of ``runs`` runs (lowest median latency, most decisions/s): another process that
    takes a core in the middle of a run slows every decision of it."""
    floor_ms = pair_gflop / machine * 1e3
    size = f"{loc.cfg.image.size}x{loc.cfg.image.size}"
    floor = f"{floor_ms:.1f} ms a decision ({pair_gflop:.2f} GFLOP / {machine:.0f} GFLOP/s) = {1e3 / floor_ms:.1f}/s"
    print(f"live path, {size}, {torch.get_num_threads()} threads: compute floor {floor}")
    for bf16 in (False, True):
        name = "bfloat16 autocast" if bf16 else "float32"
        idle = min((live_stream_run(loc, seconds, 25, 5.0, bf16) for _ in range(runs)), key=lambda r: r["median"])
        busy = max((live_stream_run(loc, seconds, 50, 50.0, bf16) for _ in range(runs)), key=lambda r: r["per_s"])
        print(f"  stream {name}: latency median {idle['median']:.1f} ms ({idle['median'] / floor_ms:.2f}x the "
              f"floor), p90 {idle['p90']:.1f} ms ({idle['decisions']} decisions at 5/s); every frame of 50 fps "
              f"due: {busy['per_s']:.1f} decisions/s, latency median {busy['median']:.1f} ms, p90 "
              f"{busy['p90']:.1f} ms, {busy['dropped']} grid points dropped")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for name, (median, p90) in decision_costs(loc, repeats, Path(tmp)).items():
            ratio = median / floor_ms
            print(f"  one decision, no stream, {name}: median {median:.1f} ms ({ratio:.2f}x the floor), "
                  f"p90 {p90:.1f} ms = {1e3 / median:.1f}/s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18", help="size name (random weights) or model folder")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of the 224x224, 10 fps test video")
    parser.add_argument("--windows", type=int, default=8, help="audio windows of one frame (reuse measure)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--live-only", action="store_true", help="only the live path (and the machine's limit)")
    parser.add_argument("--live-seconds", type=float, default=10.0, help="length of each live stream")
    parser.add_argument("--live-runs", type=int, default=3, help="runs of each live measure (the best is shown)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    machine = matmul_gflops()
    print(f"CPU: {_cpu_name()}, {os.cpu_count()} logical cores; torch threads: {torch.get_num_threads()}")
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
        if args.live_only:
            live_section(loc, pair, machine, args.live_seconds, args.repeats, args.live_runs)
            return
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
    live_section(loc, pair, machine, args.live_seconds, args.repeats, args.live_runs)


if __name__ == "__main__":
    main()
