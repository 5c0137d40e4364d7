"""``vssl serve`` under concurrent load: a smaller run of ``benchmarks/app_load.py`` (40 requests, 4 clients)."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

from vssl import load_localizer

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "app_load.py"


def _benchmark():
    spec = importlib.util.spec_from_file_location("app_load", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_concurrent_requests_all_succeed_and_leave_no_files(tmp_path, require):
    require("gradio_client", "app")
    load = _benchmark()
    localizer, media = load_localizer(load.tiny_release(tmp_path / "model")), load.write_media(tmp_path)
    with load.running_app(localizer, tmp_path / "uploads") as url:
        report = load.run_load(url, media, requests=40, clients=4, video_every=10)
    assert report["errors"] == 0, report["error_messages"]
    assert report["latency"]["image"]["n"] == 36 and report["latency"]["video"]["n"] == 4
    deadline = time.monotonic() + 10  # Gradio deletes its files as the server shuts down
    while (left := [p for p in (tmp_path / "uploads").rglob("*") if p.is_file()]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == []
