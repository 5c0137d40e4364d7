"""Load on ``vssl serve``: N requests from C concurrent clients on loopback; errors, throughput, latency.

Launches the web app in this process on a free loopback port (default limits, queue and concurrency) with a
tiny model release (the registered ``test`` size, random weights, a calibration so decisions are made) or a
model folder, then C threads, each with its own `gradio_client.Client`, send requests until N are done. A
request uploads a 64x48 JPEG and a 2 s wav and waits for the overlay, summary and JSON (the overlay PNG is
downloaded, as a browser would); with ``--video-every K``, every K-th request is instead a 2 s video analysed
at 2 frames/s. Reports errors (there should be none), throughput, latency percentiles per kind of request,
and the files left in Gradio's upload folder once the server has stopped (there should be none).
Usage: python benchmarks/app_load.py [--requests 200] [--clients 8] [--video-every 10] [--model DIR]
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
from PIL import Image

from vssl.data.synth.video import write_video
from vssl.inference import Localizer, load_localizer

CALIBRATION = {"thresholds": {"max": 0.52, "max10": 0.572, "maxq3": 0.55}, "map_scale": "(cos+1)/2"}


def tiny_release(folder: Path) -> Path:
    """A release folder of the ``test`` model size (random weights, seed 0) with a calibration."""
    from vssl import save_release
    from vssl.models.registry import create_model

    torch.manual_seed(0)
    return save_release(create_model("test").eval(), folder, extra={"calibration": CALIBRATION})


def write_media(folder: Path) -> dict[str, Path]:
    """The uploads: ``image`` (64x48 JPEG), ``audio`` (2 s wav, 16 kHz) and ``video`` (2 s MP4 with a tone)."""
    rng = np.random.default_rng(0)
    image, audio = folder / "frame.jpg", folder / "clip.wav"
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(image, quality=90)
    sf.write(audio, (rng.standard_normal(32000) * 0.1).astype(np.float32), 16000, subtype="PCM_16")
    return {"image": image, "audio": audio, "video": write_video(folder / "clip.mp4", seconds=2.0, size=(64, 48))}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(localizer: Localizer, upload_dir: Path) -> Iterator[str]:
    """The app served on a free loopback port with its uploads in ``upload_dir``; yields its URL."""
    from vssl.app import serve

    previous = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(upload_dir)  # Gradio reads it at build time and on every request
    app = None
    try:
        app, url = serve(localizer, port=_free_port(), name="load", block=False)
        yield url
    finally:
        if app is not None:
            app.close()
        if previous is None:
            os.environ.pop("GRADIO_TEMP_DIR")
        else:
            os.environ["GRADIO_TEMP_DIR"] = previous


def run_load(url: str, media: dict[str, Path], requests: int, clients: int, video_every: int = 0) -> dict[str, Any]:
    """Send ``requests`` from ``clients`` threads -> ``{"requests", "clients", "errors", "error_messages",
    "seconds", "per_s", "latency": {kind: {"n", "p50", "p90", "p99", "max"}}}`` (latencies in seconds)."""
    from gradio_client import Client, handle_file

    counter, lock = iter(range(requests)), threading.Lock()
    latencies: dict[str, list[float]] = {"image": [], "video": []}
    errors: list[str] = []
    downloads = tempfile.TemporaryDirectory(prefix="vssl-load-")

    def client_loop() -> None:
        client = Client(url, verbose=False, download_files=downloads.name, analytics_enabled=False)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            kind = "video" if video_every and i % video_every == video_every - 1 else "image"
            t0 = time.perf_counter()
            try:
                if kind == "image":
                    args = (handle_file(str(media["image"])), handle_file(str(media["audio"])), "uploaded audio")
                    text = client.predict(*args, api_name="/on_image")[1]
                else:
                    text = client.predict(handle_file(str(media["video"])), "silence", 2, api_name="/on_video")[1]
                if not text.startswith(("decision: ", "frames analysed: ")):
                    raise RuntimeError(f"unexpected summary {text[:80]!r}")
            except Exception as exc:  # every failure counts, whatever it is
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                continue
            with lock:
                latencies[kind].append(time.perf_counter() - t0)

    with downloads:
        # gradio_client leaves an empty folder per downloaded file in the system temp folder: keep them in ours
        previous, tempfile.tempdir = tempfile.tempdir, downloads.name
        threads = [threading.Thread(target=client_loop) for _ in range(clients)]
        t0 = time.perf_counter()
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            tempfile.tempdir = previous
        seconds = time.perf_counter() - t0
    stats = {}
    for kind, values in latencies.items():
        if values:
            p50, p90, p99 = np.percentile(values, [50, 90, 99])
            stats[kind] = {"n": len(values), "p50": p50, "p90": p90, "p99": p99, "max": max(values)}
    return {
        "requests": requests,
        "clients": clients,
        "errors": len(errors),
        "error_messages": errors[:5],
        "seconds": seconds,
        "per_s": (requests - len(errors)) / seconds,
        "latency": stats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests in all (default 200)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--video-every", type=int, default=10, help="every K-th request is a video (0: none)")
    parser.add_argument("--model", help="model folder (default: a tiny random release of the test size)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="vssl-load-") as tmp:
        tmp = Path(tmp)
        model = args.model or tiny_release(tmp / "model")
        localizer, media = load_localizer(model), write_media(tmp)
        with running_app(localizer, tmp / "uploads") as url:
            report = run_load(url, media, args.requests, args.clients, args.video_every)
        time.sleep(1)  # Gradio deletes its files as the server shuts down
        left = sum(p.is_file() for p in (tmp / "uploads").rglob("*"))
    model_name = args.model or "tiny test release"
    print(f"model: {model_name}; torch threads: {torch.get_num_threads()}; {os.cpu_count()} CPUs")
    print(
        f"{report['requests']} requests from {report['clients']} clients in {report['seconds']:.1f} s: "
        f"{report['errors']} errors, {report['per_s']:.1f} requests/s"
    )
    for kind, s in report["latency"].items():
        print(
            f"  {kind:5s} n={s['n']:3d}  p50 {s['p50'] * 1e3:6.0f} ms  p90 {s['p90'] * 1e3:6.0f} ms  "
            f"p99 {s['p99'] * 1e3:6.0f} ms  max {s['max'] * 1e3:6.0f} ms"
        )
    for message in report["error_messages"]:
        print(f"  error: {message}")
    print(f"files left in the upload folder after shutdown: {left}")
    if report["errors"] or left:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
