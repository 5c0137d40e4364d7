"""Video localization: analysed times, sliding windows, shared image features, timeline JSON, overlay MP4."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image
from support import CALIBRATION

from vssl import save_release
from vssl.audio import AudioConfig, load_audio
from vssl.cli import main
from vssl.data.synth.video import brightness, write_video
from vssl.errors import MediaError
from vssl.inference.video import localize_video, window_at
from vssl.inference.video_writer import write_still_video


@pytest.fixture(scope="module")
def ramp_video(tmp_path_factory) -> Path:
    """4 s at 10 fps, frame i a grey of level brightness(i, 40), a 440 Hz tone (AAC)."""
    return write_video(tmp_path_factory.mktemp("video") / "ramp.mp4", seconds=4.0, fps=10, size=(64, 48))


def test_windows_are_centred_and_stay_inside_the_clip():
    cfg = AudioConfig()
    wave = torch.arange(10 * 16000, dtype=torch.float32)
    assert window_at(wave, 5.0, cfg)[0] == 5 * 16000 - 24000 and len(window_at(wave, 5.0, cfg)) == 48000
    assert window_at(wave, 0.2, cfg)[0] == 0  # shifted right at the start
    assert window_at(wave, 9.9, cfg)[-1] == wave[-1]  # shifted left at the end
    short = torch.ones(16000)
    assert torch.equal(window_at(short, 0.5, cfg), torch.ones(48000))  # tiled as in training


def test_timeline_frames_and_windows_line_up(localizer, ramp_video, tmp_path):
    out = tmp_path / "overlay.mp4"
    timeline = localize_video(localizer, ramp_video, out, fps=4, progress=False, keep_results=True)
    assert timeline.times == [k / 4 for k in range(16)]
    wave = load_audio(ramp_video, 16000)
    for k in (0, 5, 15):  # the frame shown at t and the window centred on t
        result = timeline.results[k]
        level = np.asarray(result.frame).mean()
        assert abs(level - brightness(int(timeline.times[k] * 10 + 1e-9), 40)) < 3  # the frame starting at or before t
        alone = localizer.localize(result.frame, window_at(wave, timeline.times[k], localizer.cfg.audio))
        np.testing.assert_allclose(result.cosine_map, alone.cosine_map, atol=1e-6)
    record = timeline.to_json()
    assert record["fps"] == 4 and record["window_s"] == 3.0 and record["threshold"] == 0.55
    assert record["frame_size"] == [64, 48] and len(record["frames"]) == 16
    assert set(record["frames"][3]) == {"time", "max", "score", "abstain", "box", "peak"}
    with av.open(str(out)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert sum(1 for _ in container.decode(video)) == 16 and float(video.average_rate) == 4
        assert audio.codec_context.name == "aac" and audio.codec_context.sample_rate == 16000  # the original stream
    with av.open(str(ramp_video)) as source, av.open(str(out)) as copy:
        original = [bytes(p) for p in source.demux(source.streams.audio[0]) if p.size]
        copied = [bytes(p) for p in copy.demux(copy.streams.audio[0]) if p.size]
        assert copied == original  # muxed back unchanged
    assert [p.name for p in tmp_path.iterdir()] == ["overlay.mp4"]  # written atomically


def test_image_features_are_shared_across_windows(localizer, ramp_video, tmp_path):
    fast = localize_video(localizer, ramp_video, fps=20, progress=False, batch_windows=100, keep_results=True)
    assert len(fast.times) == 80  # two windows per video frame, each frame encoded once
    assert fast.image_encodes == len({id(r.frame) for r in fast.results}) <= 40  # equal decoded frames count once
    y, x = np.mgrid[0:96, 0:128]
    pixels = np.stack([x * 2, y * 2, (x * y) % 256], axis=-1).astype(np.uint8)  # a still picture with detail
    still = write_still_video(tmp_path / "still.mp4", Image.fromarray(pixels), np.zeros(6 * 16000, np.float32))
    timeline = localize_video(localizer, still, fps=5, progress=False, batch_windows=16)
    assert len(timeline.times) == 30 and timeline.image_encodes == 2  # one picture (codec noise aside), per batch
    exact = localize_video(localizer, still, fps=5, progress=False, still_tolerance=0)
    drift = max(abs(a["max"] - b["max"]) for a, b in zip(exact.frames, timeline.frames, strict=True))
    assert exact.image_encodes > 2 and drift < 1e-3  # what sharing costs: nothing visible


def test_negative_audio_replaces_the_video_sound(localizer, ramp_video, tmp_path):
    out = tmp_path / "silence.mp4"
    timeline = localize_video(localizer, ramp_video, out, negative="silence", fps=2, progress=False, keep_results=True)
    silent = localizer.localize(timeline.results[0].frame, torch.zeros(48000))
    np.testing.assert_allclose(timeline.results[0].cosine_map, silent.cosine_map, atol=1e-6)
    assert timeline.to_json()["audio"] == "silence"
    assert load_audio(out, 16000).abs().max() < 1e-3  # the analysed audio is what the overlay video plays


def test_bad_videos_are_named(localizer, tmp_path):
    silent_only = write_video(tmp_path / "mute.mp4", seconds=1.0, audio=False)
    with pytest.raises(MediaError, match="mute.mp4.*no audio stream"):
        localize_video(localizer, silent_only, progress=False)
    assert len(localize_video(localizer, silent_only, negative="noise", fps=2, progress=False).times) == 2
    sound_only = write_video(tmp_path / "sound.mp4", seconds=1.0, video=False)
    with pytest.raises(MediaError, match="no video stream"):
        localize_video(localizer, sound_only, progress=False)


def test_cli_video(tmp_path, localizer, ramp_video, capsys):
    folder = save_release(localizer.model, tmp_path / "model", extra={"calibration": CALIBRATION})
    out, record = tmp_path / "o.mp4", tmp_path / "t.json"
    cmd = ["localize", "--model", str(folder), "--video", str(ramp_video), "--fps", "2", "--no-progress"]
    assert main([*cmd, "--out", str(out), "--json", str(record)]) == 0
    assert "8 frames at 2 fps" in capsys.readouterr().out
    saved = json.loads(record.read_text())
    assert [f["time"] for f in saved["frames"]] == [k / 2 for k in range(8)] and out.stat().st_size > 1000
