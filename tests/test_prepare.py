"""``vssl prepare``: tiny videos made with PyAV in the test — good, corrupt, silent (no audio stream), too short."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from vssl.cli import main
from vssl.data import prepare as prepare_module
from vssl.data.formats import read_items
from vssl.data.prepare import FAILURES_FILE, PrepareConfig, prepare
from vssl.data.synth.video import brightness, write_video
from vssl.errors import ConfigError, DatasetError

GOOD_NAME = "---g-f_I2yQ_1000_11000"  # a VGGSound download name: start and end in milliseconds
GOOD_ID = "---g-f_I2yQ_000001"
FPS, SECONDS = 10, 4.0


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("videos")
    write_video(folder / f"{GOOD_NAME}.mp4", seconds=SECONDS, fps=FPS)
    (folder / "sub").mkdir()
    write_video(folder / "sub" / "silent.mp4", audio=False)  # videos are found in subfolders too
    write_video(folder / "one_second.mp4", seconds=1.0, fps=FPS)
    write_video(folder / "radio.mp4", video=False)
    (folder / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    (folder / "notes.txt").write_text("not a video")
    return folder


def _grey(path: Path) -> float:
    return float(np.asarray(Image.open(path).convert("L"), dtype=np.float64).mean())


def test_each_failure_is_reported_and_the_good_clip_is_readable(videos, tmp_path):
    out = tmp_path / "out"
    summary = prepare(videos, out, PrepareConfig(workers=1), progress=False)
    kinds = {f.video.name: f.kind for f in summary.failures}
    assert kinds == {
        "corrupt.mp4": "corrupt",
        "silent.mp4": "no audio stream",
        "radio.mp4": "no video stream",
        "one_second.mp4": "too short",
    }
    assert "less than 3 s" in next(f.detail for f in summary.failures if f.kind == "too short")
    assert (summary.ids, summary.prepared, summary.skipped) == ([GOOD_ID], 1, 0)
    assert "corrupt 1, no audio stream 1, no video stream 1, too short 1" in summary.text()
    assert (out / "train.txt").read_text() == f"{GOOD_ID}\n"
    rows = (out / FAILURES_FILE).read_text().splitlines()
    assert rows[0] == "video\tkind\tdetail" and len(rows) == 5

    (item,) = read_items(f"vggsound:{out}", "train")
    assert item.id == GOOD_ID
    info = sf.info(str(item.audio))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert abs(info.duration - SECONDS) < 0.1
    num_frames = round(SECONDS * FPS)
    middle = brightness(num_frames // 2, num_frames)  # the frame shown at 2.0 s
    assert abs(_grey(item.image) - middle) < 4
    assert not list(out.rglob("*.tmp"))


def test_resume_skips_finished_clips_and_redoes_half_finished_ones(videos, tmp_path, monkeypatch):
    out = tmp_path / "out"

    def interrupted(path, image, quality):
        raise KeyboardInterrupt  # the run is stopped between the audio and the frame of a clip

    with monkeypatch.context() as patch:
        patch.setattr(prepare_module, "_write_jpeg", interrupted)
        with pytest.raises(KeyboardInterrupt):
            prepare(videos, out, PrepareConfig(workers=1), progress=False)
    assert (out / "audio" / f"{GOOD_ID}.wav").is_file() and not list((out / "frames").iterdir())
    assert not list(out.rglob("*.tmp"))

    first = prepare(videos, out, PrepareConfig(workers=1), progress=False)
    assert (first.prepared, first.skipped) == (1, 0)
    frame = out / "frames" / f"{GOOD_ID}.jpg"
    stamp = frame.stat().st_mtime_ns
    again = prepare(videos, out, PrepareConfig(workers=1), progress=False)
    assert (again.prepared, again.skipped, again.ids, len(again.failures)) == (0, 1, [GOOD_ID], 4)
    assert frame.stat().st_mtime_ns == stamp


def test_worker_processes_give_the_same_files(videos, tmp_path):
    serial = prepare(videos, tmp_path / "serial", PrepareConfig(workers=1), progress=False)
    parallel = prepare(videos, tmp_path / "parallel", PrepareConfig(workers=2), progress=False)
    assert parallel.ids == serial.ids and parallel.counts() == serial.counts()
    for sub in ("audio", "frames"):
        for path in (tmp_path / "serial" / sub).iterdir():
            assert path.read_bytes() == (tmp_path / "parallel" / sub / path.name).read_bytes(), path.name


def test_frames_at_given_times_with_their_audio_window(videos, tmp_path):
    only_good = tmp_path / "in"
    only_good.mkdir()
    shutil.copy(videos / f"{GOOD_NAME}.mp4", only_good)
    out = tmp_path / "out"
    summary = prepare(
        only_good, out, PrepareConfig(frames_at=(0.5, 2.0, 3.9), workers=1, split="times"), progress=False
    )
    assert summary.ids == [f"{GOOD_ID}@0.5", f"{GOOD_ID}@2", f"{GOOD_ID}@3.9"]
    num_frames = round(SECONDS * FPS)
    for item in read_items(f"vggsound:{out}", "times"):
        t = float(item.id.split("@")[1])
        assert abs(_grey(item.image) - brightness(int(t * FPS), num_frames)) < 4, item.id
        assert sf.info(str(item.audio)).duration == pytest.approx(3.0)
    beyond = prepare(only_good, tmp_path / "beyond", PrepareConfig(frames_at=(5.0,), workers=1), progress=False)
    assert [f.kind for f in beyond.failures] == ["too short"] and "lasts 4.00 s" in beyond.failures[0].detail


def test_min_duration_zero_keeps_short_clips(videos, tmp_path):
    summary = prepare(videos, tmp_path / "out", PrepareConfig(workers=1, min_duration=0), progress=False)
    assert "one_second" in summary.ids
    assert sorted(f.kind for f in summary.failures) == ["corrupt", "no audio stream", "no video stream"]


def test_bad_inputs_are_refused(tmp_path):
    with pytest.raises(DatasetError, match="videos folder not found"):
        prepare(tmp_path / "nowhere", tmp_path / "out", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no video files"):
        prepare(tmp_path / "empty", tmp_path / "out", progress=False)
    with pytest.raises(ConfigError, match="repeat"):
        PrepareConfig(frames_at=(1.0, 1.0))
    with pytest.raises(ConfigError, match=">= 0"):
        PrepareConfig(frames_at=(-1.0,))


def test_cli_prepare(videos, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["prepare", str(videos), str(out), "--workers", "1", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "prepared 1 clips" in printed and "no audio stream" in printed and f"vggsound:{out}" in printed
    with pytest.raises(SystemExit) as exc:
        main(["prepare", "--help"])
    assert exc.value.code == 0
