"""Live streams: SOURCE syntax, the audio ring buffer, decisions on a real-time MPEG-TS stream (named pipe, UDP),
frame dropping, the JSON lines of ``vssl localize --live``, Ctrl-C, bad sources.

The streams are written while the test runs by `vssl.data.synth.stream.stream_video` (a thread of the test
process), paced at wall-clock speed; frame i of the grey ramp shows level ``brightness(i, frames)`` so a test can
tell which frame a decision analysed.
"""

from __future__ import annotations

import json
import math
import os
import queue
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from vssl.audio import load_audio
from vssl.cli import main
from vssl.data.synth.stream import stream_video
from vssl.data.synth.video import brightness
from vssl.errors import MediaError
from vssl.inference import LiveDecision, live_decisions
from vssl.inference.live import GRID_TOLERANCE_S
from vssl.inference.live_reader import AudioRing
from vssl.inference.live_source import parse_source

FPS = 10  # frames per second of the test streams
LATENCY_BUDGET_MS = 400  # median decision latency with the tiny test model: about 10 ms of compute on 2 idle cores,
# far more when other processes hold the cores (torch's threads then wait for each other)
LATENCY_LIMIT_MS = 2000  # any single decision


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """The tiny test model on one thread: on a machine whose cores other processes hold, torch's threads wait for
    each other at every layer, and the timings these tests check would measure that instead of the live path."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@contextmanager
def streaming(target: str | Path, seconds: float, **kwargs) -> Iterator[list[float]]:
    """Stream ``seconds`` of the synthetic video to ``target`` from a thread; yields a list that receives the
    stream's start (`time.monotonic`). A named pipe nobody opened is unblocked at the end."""
    started: list[float] = []
    thread = threading.Thread(
        target=stream_video, args=(str(target), seconds), kwargs={"on_start": started.append, **kwargs}, daemon=True
    )
    thread.start()
    try:
        yield started
    finally:
        if Path(str(target)).is_fifo() and not started:
            os.close(os.open(target, os.O_RDONLY | os.O_NONBLOCK))  # the writer's open returns, its writes fail
        thread.join(seconds + 10)


def _fifo(tmp_path: Path) -> Path:
    fifo = tmp_path / "live.ts"
    os.mkfifo(fifo)
    return fifo


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tone_then_silence(seconds: float, sound_s: float) -> np.ndarray:
    t = np.arange(round(seconds * 16000)) / 16000
    return (0.5 * np.sin(2 * np.pi * 440.0 * t) * (t < sound_s)).astype(np.float32)


# ---------------------------------------------------------------- SOURCE and the ring buffer


def test_source_syntax(tmp_path):
    pair = parse_source("v4l2:/dev/video0+alsa:default")
    assert (pair.kind, pair.video, pair.video_format, pair.audio, pair.audio_format) == (
        "devices",
        "/dev/video0",
        "video4linux2",
        "default",
        "alsa",
    )
    assert parse_source("v4l2:/dev/video2+alsa:plughw:1,0").audio == "plughw:1,0"  # ALSA names hold ':' and ','
    pulse = parse_source("v4l2:/dev/video0+pulse:alsa_input.usb-Cam.analog-stereo")
    assert (pulse.audio_format, pulse.audio) == ("pulse", "alsa_input.usb-Cam.analog-stereo")
    for url in ("udp://127.0.0.1:5000", "rtsp://camera.local/stream", "http://host:8080/live.ts", "SRT://h:1"):
        assert parse_source(url).kind == "url" and parse_source(url).video == url
    fifo = _fifo(tmp_path)
    assert (parse_source(str(fifo)).kind, parse_source(str(fifo)).video_format) == ("path", "mpegts")
    bad = {
        "": "empty live source",
        "v4l2:/dev/video0": "needs its pair",
        "alsa:default": "needs its pair",
        "ftp://host/x.ts": "unknown URL scheme 'ftp'",
        str(tmp_path / "nothing.ts"): "no such file or named pipe",
        str(tmp_path): "not a named pipe or a regular file",
    }
    for text, problem in bad.items():
        with pytest.raises(MediaError, match=problem) as err:
            parse_source(text)
        assert str(err.value).startswith(f"{text}: ")  # the message names the source first


def test_audio_ring_pads_fills_gaps_and_wraps():
    ring = AudioRing(sample_rate=10, capacity=40)
    ring.write(np.arange(1, 6, dtype=np.float32), time=0.5)  # samples 5..9: the audio starts after the video
    window, audio_s, end = ring.window(1.0, 8)
    assert window.tolist() == [0, 0, 0, 1, 2, 3, 4, 5] and audio_s == 0.5 and end == 1.0  # zero-padded on the left
    window, _, end = ring.window(2.0, 4)  # the audio has not reached 2.0 s: the window ends at its last sample
    assert end == 1.0 and window.tolist() == [2, 3, 4, 5]
    ring.write(np.full(5, 7, np.float32), time=2.0)  # 1.0 s of lost audio: zeros in its place
    assert ring.gap_samples == 10 and ring.window(2.5, 15)[0].tolist() == [1, 2, 3, 4, 5, *[0] * 10, *[7] * 5][-15:]
    ring.write(np.full(5, 8, np.float32), time=None)  # no timestamp: right after
    ring.write(np.full(3, 9, np.float32), time=3.01)  # 0.01 s off: within the tolerance, no gap
    assert ring.end == 33 and ring.gap_samples == 10
    ring.write(np.arange(100, 130, dtype=np.float32), time=3.3)  # wraps around the 40-sample buffer
    assert ring.read(55, 63).tolist() == list(range(122, 130)) and ring.end == 63
    assert ring.read(10, 14).tolist() == [0, 0, 0, 0]  # overwritten long ago: zeros, never stale samples


# ---------------------------------------------------------------- decisions on a live stream


def test_decisions_follow_a_live_stream_through_a_named_pipe(localizer, tmp_path, monkeypatch):
    windows: list[torch.Tensor] = []
    embed = localizer.audio_embeddings
    monkeypatch.setattr(localizer, "audio_embeddings", lambda waves: windows.extend(waves) or embed(waves))
    fifo = _fifo(tmp_path)
    decisions: list[tuple[float, LiveDecision]] = []  # (wall time of the decision, decision)
    with streaming(fifo, 4.0, fps=FPS, wave=_tone_then_silence(4.0, 2.0)) as started:
        for d in live_decisions(localizer, str(fifo), fps=5, timeout=5):
            decisions.append((time.monotonic(), d))
    times = [d.time for _, d in decisions]
    assert len(decisions) >= 10 and times == sorted(set(times))  # in stream order, none twice
    for i, (_, d) in enumerate(decisions):  # on the 0.2 s grid: every point served or counted as dropped
        assert d.slot == i + d.dropped and abs(d.time - times[0] - 0.2 * d.slot) < 0.11, times
    assert decisions[-1][1].dropped <= len(decisions) // 2, times  # about 10 ms a decision: few drops, if any
    latencies = [d.latency_ms for _, d in decisions]
    assert statistics.median(latencies) < LATENCY_BUDGET_MS and max(latencies) < LATENCY_LIMIT_MS, latencies
    # decisions keep up: each is made soon after its frame left the writer (demuxing holds back about 0.3 s)
    assert all(wall - started[0] - d.time < 0.3 + LATENCY_LIMIT_MS / 1e3 for wall, d in decisions[1:])
    for (_, d), window in zip(decisions, windows[1:], strict=True):  # windows[0]: the warm-up
        level = np.asarray(d.result.frame).mean()
        assert abs(level - brightness(round(d.time * FPS), round(4.0 * FPS))) < 4  # the frame shown at d.time
        assert d.audio_end == pytest.approx(d.time, abs=1e-3) and d.to_json()["time"] == round(d.time, 4)
        assert d.audio_s == pytest.approx(min(3.0, d.time), abs=0.05)  # zero-padded on the left at first
        tail = window[-1600:].abs().max()  # the last 0.1 s: the sound up to the frame's time, never later
        if d.time < 1.85:
            assert tail > 0.2, (d.time, tail)
        elif d.time > 2.15:
            assert tail < 0.05, (d.time, tail)
        padding = 48000 - round(d.audio_s * 16000)
        assert window[: max(0, padding - 400)].abs().sum() == 0  # the padding is silence


def test_a_growing_file_is_followed_from_its_live_edge(localizer, tmp_path):
    path = tmp_path / "growing.ts"
    with streaming(path, 3.0, fps=FPS) as started:
        while not started:
            time.sleep(0.01)
        time.sleep(1.5)  # 1.5 s already written when reading starts
        decisions = list(live_decisions(localizer, str(path), fps=5, timeout=1.0))
    times = [d.time for d in decisions]
    # the backlog is skipped, neither analysed nor counted (demuxing holds back the last 0.2-0.3 s)
    assert times[0] >= 1.0 and decisions[0].dropped == 0, times
    assert times == sorted(set(times)) and times[-1] > 2.5 and len(times) >= 6  # followed as it grew


def test_a_slow_model_drops_frames_and_stays_with_the_stream(localizer, tmp_path, monkeypatch):
    encode = localizer.image_features

    def slow(frames):
        time.sleep(0.3)
        return encode(frames)

    monkeypatch.setattr(localizer, "image_features", slow)
    port = _free_udp_port()
    decisions: list[tuple[float, LiveDecision]] = []
    with streaming(f"udp://127.0.0.1:{port}", 5.0, fps=FPS) as started:
        for d in live_decisions(localizer, f"udp://127.0.0.1:{port}", fps=FPS, timeout=1.5):
            decisions.append((time.monotonic(), d))
    assert 6 <= len(decisions) <= 20  # one decision per 0.3 s or more (a loaded machine), 10 frames a second
    ds = [d for _, d in decisions]
    assert ds[-1].dropped >= len(ds)  # most frames dropped, and counted
    for i, d in enumerate(ds):  # every grid point since the first decision is either served or counted as dropped
        assert d.slot == i + d.dropped
    # while the stream is live (at its end the demuxer lets go of the frames it held back, at once)
    live = [(wall - started[0] - d.time, d) for wall, d in decisions if wall - started[0] < 4.8]
    times = [d.time for _, d in live]
    assert all(b - a > 0.15 for a, b in zip(times, times[1:], strict=False)), times  # the newest frame, not the next
    lags = [lag for lag, _ in live]
    # no drift: a queue would fall behind by 2/3 s a second (10 frames a second, 0.3 s each), 2.5 s by now
    assert max(lags[1:]) < 2.0 and statistics.mean(lags[-2:]) < statistics.mean(lags[1:3]) + 0.5, lags
    assert ds[-1].time > 4.5  # the decisions reached the end of the stream
    assert max(d.latency_ms for d in ds[1:]) < 300 + LATENCY_LIMIT_MS


# ---------------------------------------------------------------- the command line


def test_cli_live_writes_json_lines_and_an_overlay_video(calibrated_release, tmp_path, capsys, caplog):
    caplog.set_level("INFO")
    port = _free_udp_port()
    out = tmp_path / "live.mp4"
    cmd = ["localize", "--model", str(calibrated_release), "--live", f"udp://127.0.0.1:{port}", "--fps", "5"]
    with streaming(f"udp://127.0.0.1:{port}", 3.0, fps=FPS):
        assert main([*cmd, "--timeout", "1.5", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    records = [json.loads(line) for line in lines]  # stdout holds the decisions and nothing else
    assert len(records) >= 8
    assert {"time", "latency_ms", "abstain", "score", "box", "peak", "dropped"} <= set(records[0])
    assert [r["time"] for r in records] == sorted(r["time"] for r in records)
    assert f"live udp://127.0.0.1:{port}: {len(records)} decisions" in caplog.text and "latency median" in caplog.text
    assert "overlay video written" in caplog.text
    with av.open(str(out)) as container:
        shown = sum(1 for _ in container.decode(video=0))
        assert container.streams.audio[0].codec_context.name == "aac"
    last = records[-1]
    # one overlay per grid point up to the last one served, dropped or frameless points holding the previous overlay;
    # a decision serves the grid point at or before its frame's time (a frame between two points serves the earlier)
    last_point = math.floor((last["time"] - records[0]["time"]) * 5 + GRID_TOLERANCE_S * 5)
    assert shown == last_point + 1
    heard = load_audio(out, 16000)
    assert heard.abs().max() > 0.1 and len(heard) >= (shown - 1) * 16000 / 5  # the stream's sound, as long
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live.mp4"]  # written atomically


def test_cli_live_ctrl_c_ends_cleanly(calibrated_release, tmp_path):
    fifo = _fifo(tmp_path)
    out = tmp_path / "live.mp4"
    cmd = [sys.executable, "-m", "vssl.cli", "localize", "--model", str(calibrated_release), "--live", str(fifo)]
    with streaming(fifo, 30.0, fps=FPS):
        proc = subprocess.Popen([*cmd, "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True)
        reader.start()
        try:
            first = [lines.get(timeout=60) for _ in range(3)]  # three decisions, as they happen (flushed)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
        reader.join(5)
        err = proc.stderr.read()
    assert proc.returncode == 130, err
    records = [json.loads(line) for line in first + list(lines.queue)]
    assert len(records) >= 3 and all("abstain" in r for r in records)
    assert "Traceback" not in err and "interrupted: Ctrl-C" in err and f"{len(records)} decisions" in err
    with av.open(str(out)) as container:  # the overlay video is finished, not cut off
        assert sum(1 for _ in container.decode(video=0)) >= len(records) - 1  # Ctrl-C may beat the last overlay


# ---------------------------------------------------------------- bad sources


def test_bad_sources_are_named(localizer, tmp_path, caplog):
    def refused(source: str, problem: str, timeout: float = 1.0) -> None:
        with pytest.raises(MediaError, match=problem) as err:
            next(live_decisions(localizer, source, timeout=timeout))
        assert str(err.value).startswith(f"{source}: ")

    refused(str(tmp_path / "missing.ts"), "no such file or named pipe")
    refused(str(_fifo(tmp_path)), "no data in the named pipe within 0.5 s", timeout=0.5)  # no writer: no hang
    garbage = tmp_path / "garbage.ts"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    refused(str(garbage), "cannot open the live source|no MPEG-TS stream found within 1 s|no video and no audio")
    refused(f"udp://127.0.0.1:{_free_udp_port()}", "no stream found within 1 s")
    if any("video4linux2" in names.split(",") for names in av.formats_available):
        refused("v4l2:/dev/no-such-video+alsa:default", "no video device /dev/no-such-video")
    mute = tmp_path / "mute.ts"
    with av.open(str(mute), "w", format="mpegts") as container:  # video only
        stream = container.add_stream("mpeg2video", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            container.mux(stream.encode(av.VideoFrame.from_image(Image.new("RGB", (64, 48), (i * 20, 0, 0)))))
        container.mux(stream.encode(None))
    refused(str(mute), r"no audio stream \(streams: video\)")
    assert main(["localize", "--model", "test", "--live", str(tmp_path / "missing.ts")]) == 2
    assert f"{tmp_path / 'missing.ts'}: no such file or named pipe" in caplog.text
    assert main(["localize", "--model", "test", "--live", str(garbage), "--silence"]) == 2
    assert "--json, --audio, --silence and --noise do not apply" in caplog.text


@pytest.mark.skipif(not Path("/dev/video0").exists(), reason="no video device /dev/video0 on this machine")
def test_a_camera_and_a_microphone(localizer):
    decisions = live_decisions(localizer, "v4l2:/dev/video0+alsa:default", fps=2, timeout=5)
    first, second = next(decisions), next(decisions)
    assert second.time > first.time and first.result.frame is not None
    decisions.close()
