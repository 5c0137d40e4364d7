"""Inference API: inputs of every kind, absolute maps, the calibrated decision, box and peak, the JSON record."""

from __future__ import annotations

import json
import re
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from support import CALIBRATION

import vssl
from vssl import Localizer, load_localizer, load_model, save_release
from vssl.audio import load_audio, waveform_to_input
from vssl.errors import MediaError, VsslError
from vssl.infer import localize, localize_files
from vssl.inference import Threshold, UncalibratedModelWarning, noise_clip, silence_clip
from vssl.inference.hub import parse_hub_name
from vssl.inference.result import make_results, peak_component
from vssl.models.registry import create_model
from vssl.models.release import update_release_config
from vssl.vision import eval_transform, load_image


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save_release(create_model("test").eval(), tmp_path_factory.mktemp("release") / "test-model")


def test_maps_are_raw_cosine_at_native_and_224(model_dir, pair):
    model = load_model(model_dir)
    result = localize_files(model, *pair)
    side = model.cfg.image.size // 32
    assert result.cosine_map.shape == (side, side) and result.cosine_map.dtype == np.float32
    assert result.heatmap.shape == (224, 224) and result.map_scale == "cosine"
    assert (result.min, result.max) == (float(result.cosine_map.min()), float(result.cosine_map.max()))
    corners = ([0, 0, -1, -1], [0, -1, 0, -1])  # bilinear, align_corners=True: corners are the native corners
    np.testing.assert_allclose(result.heatmap[corners], result.cosine_map[corners], atol=1e-6)
    assert result.min - 1e-6 <= result.heatmap.min() and result.heatmap.max() <= result.max + 1e-6
    with torch.no_grad():  # the cosine itself, not cosine / tau
        img = model.encode_image(eval_transform(model.cfg.image)(result.frame)[None])
        aud = model.encode_audio(waveform_to_input(pair[1], model.cfg.audio)[None])
    np.testing.assert_allclose(result.cosine_map, torch.einsum("bdhw,bd->hw", img, aud).numpy(), atol=1e-6)
    assert result.abstain is None and result.threshold is None and result.box is None and result.mask is None


def test_a_model_in_training_mode_is_run_in_eval_mode_and_restored(model_dir, pair):
    model = load_model(model_dir)
    expected = localize_files(model, *pair)
    model.train()
    again = localize_files(model, *pair)
    assert model.training
    np.testing.assert_array_equal(again.cosine_map, expected.cosine_map)


def test_every_input_kind_gives_the_same_map(model_dir, pair):
    loc = Localizer(load_model(model_dir))
    frame = load_image(pair[0])
    wave = load_audio(pair[1], 16000)
    expected = loc.localize(pair[0], pair[1]).cosine_map
    pixels = np.array(frame)
    images = [str(pair[0]), frame, pixels, pixels.astype(np.float32) / 255, torch.from_numpy(pixels).permute(2, 0, 1)]
    audios = [str(pair[1]), wave, wave.numpy(), (load_audio(pair[1], 22050).numpy(), 22050)]
    for image in images:
        np.testing.assert_allclose(loc.localize(image, wave).cosine_map, expected, atol=1e-6)
    for audio in audios[:3]:
        np.testing.assert_allclose(loc.localize(frame, audio).cosine_map, expected, atol=1e-6)
    resampled = loc.localize(frame, audios[3]).cosine_map  # 16 -> 22.05 -> 16 kHz: band-limited, not identical
    np.testing.assert_allclose(resampled, expected, atol=2e-3)


def test_batches_pair_up_and_broadcast(model_dir, pair):
    loc = Localizer(load_model(model_dir), batch_size=2)
    frame = load_image(pair[0])
    clips = [load_audio(pair[1], 16000), silence_clip(), noise_clip(seed=3)]
    one_by_one = [loc.localize(frame, c).cosine_map for c in clips]
    batch = loc.localize(frame, clips)
    assert isinstance(batch, list) and len(batch) == 3
    for got, want in zip(batch, one_by_one, strict=True):
        np.testing.assert_allclose(got.cosine_map, want, atol=1e-6)
    stacked = np.stack([np.array(frame.resize((80, 60)))] * 2)  # [B, H, W, 3]
    per_image = loc.localize(stacked, clips[0])
    assert len(per_image) == 2 and per_image[0].frame_size == (80, 60)
    pairs = loc.localize([frame, frame.rotate(90)], torch.stack(clips[1:]))  # [B, T] waveforms
    np.testing.assert_allclose(pairs[0].cosine_map, one_by_one[1], atol=1e-6)
    with pytest.raises(VsslError, match="cannot pair 2 images with 3"):
        loc.localize([frame, frame], clips)


def test_one_frame_is_encoded_once_for_many_clips(model_dir, pair, monkeypatch):
    model = load_model(model_dir)
    calls = []
    original = model.encode_image
    monkeypatch.setattr(model, "encode_image", lambda x: calls.append(len(x)) or original(x))
    Localizer(model).localize(pair[0], [silence_clip(), noise_clip(), noise_clip(seed=1), pair[1]])
    assert calls == [1]


def test_bad_inputs_are_named(tmp_path, model_dir, pair):
    loc = Localizer(load_model(model_dir))
    with pytest.raises(MediaError, match="nowhere.wav"):
        loc.localize(pair[0], tmp_path / "nowhere.wav")
    with pytest.raises(VsslError, match="uint8 or float"):
        loc.localize(np.zeros((8, 8, 3), dtype=np.int64), silence_clip())
    with pytest.raises(VsslError, match=r"\[T\] or \[B, T\]"):
        loc.localize(pair[0], torch.zeros(1, 2, 100))
    with pytest.raises(VsslError, match="float"):
        loc.localize(pair[0], np.zeros(16000, dtype=np.int16))


def test_short_clips_are_tiled_like_the_training_front_end(model_dir):
    frame = Image.new("RGB", (80, 60), (120, 60, 30))
    result = localize(load_model(model_dir), frame, torch.sin(torch.arange(8000) * 0.3) * 0.2)  # half a second
    assert np.isfinite(result.cosine_map).all() and result.frame_size == (80, 60)


# ---------------------------------------------------------------- calibration and decision


def test_calibrated_model_decides_on_the_224_map_on_the_calibration_scale(calibrated_release, pair):
    loc = load_localizer(calibrated_release)
    assert loc.threshold == Threshold(0.55, "(cos+1)/2", "maxq3", "x")
    result = loc.localize(*pair)
    unit = (result.heatmap + 1) / 2
    assert result.score == pytest.approx(float(unit.max()), abs=1e-6)
    assert result.abstain == (result.score <= 0.55)
    np.testing.assert_array_equal(result.mask, unit > 0.55)
    for rule, value in CALIBRATION["thresholds"].items():
        assert load_localizer(calibrated_release, rule=rule).threshold.value == value


def test_threshold_on_either_side_of_the_score(model_dir, pair):
    model = load_model(model_dir)
    score = Localizer(model, Threshold(0.0)).localize(*pair).score
    above = Localizer(model, Threshold(score + 1e-4)).localize(*pair)
    assert above.abstain is True and above.box is None and not above.mask.any()
    below = Localizer(model, Threshold(score - 0.02)).localize(*pair)
    assert below.abstain is False and below.mask.any()
    x0, y0, x1, y1 = below.box
    width, height = below.frame_size
    assert 0 <= x0 <= below.peak[0] <= x1 <= width and 0 <= y0 <= below.peak[1] <= y1 <= height
    same = Localizer(model, Threshold(2 * (score - 0.02) - 1, scale="cosine")).localize(*pair)  # cosine scale
    np.testing.assert_array_equal(same.mask, below.mask)


def test_box_surrounds_the_part_of_the_mask_holding_the_peak():
    cosine = torch.full((1, 15, 15), -0.5)
    cosine[0, 2:5, 2:5] = 0.6  # a weaker blob top-left
    cosine[0, 9:13, 8:14] = 0.9  # the peak's blob bottom-right
    frame = Image.new("RGB", (448, 224))
    (result,) = make_results(cosine, [frame], Threshold(0.5, scale="cosine"))
    assert result.abstain is False
    x0, y0, x1, y1 = result.box
    assert x0 > 448 / 2 and y0 > 224 / 2  # only the bottom-right blob
    assert result.mask[:100, :100].any()  # while the mask holds both
    assert x0 <= result.peak[0] <= x1 and y0 <= result.peak[1] <= y1
    mask = torch.zeros(1, 8, 8, dtype=torch.bool)
    mask[0, 0, :3] = mask[0, 5:, 5:] = True
    assert peak_component(mask, torch.tensor([7 * 8 + 7]), cell=1).sum() == 9


def _dilated_component(mask: torch.Tensor, seeds: torch.Tensor, cell: int) -> torch.Tensor:
    """The slow, obvious reference of `peak_component`: 3x3 dilations from the seed block, within the mask's blocks,
    until nothing changes."""
    n, side = mask.shape[0], mask.shape[-1]
    blocks = torch.nn.functional.max_pool2d(mask[:, None].float(), cell, ceil_mode=True)
    grown = torch.zeros_like(blocks)
    grown[torch.arange(n), 0, seeds // side // cell, seeds % side // cell] = 1.0
    grown *= blocks
    while not torch.equal(nxt := torch.nn.functional.max_pool2d(grown, 3, stride=1, padding=1) * blocks, grown):
        grown = nxt
    full = grown.repeat_interleave(cell, dim=-1).repeat_interleave(cell, dim=-2)[:, 0, :side, :side]
    return (full > 0) & mask


@pytest.mark.parametrize(("side", "cell"), [(224, 4), (30, 4), (57, 3), (8, 1)])
def test_peak_component_equals_the_dilation_reference(side, cell):
    g = torch.Generator().manual_seed(side)
    for trial in range(40):
        n = 1 + trial % 4
        if trial % 5 == 0:  # speckle: many small parts, touching at corners
            mask = torch.rand(n, side, side, generator=g) > 0.5
        else:  # blobs of any extent, as upsampled maps make them
            grid = torch.rand(n, 1, max(2, side // 8), max(2, side // 8), generator=g)
            heat = torch.nn.functional.interpolate(grid, size=(side, side), mode="bilinear", align_corners=True)
            mask = heat[:, 0] > torch.rand(1, generator=g)
        seeds = torch.randint(0, side * side, (n,), generator=g)  # inside the mask or not
        assert torch.equal(peak_component(mask, seeds, cell), _dilated_component(mask, seeds, cell))


def test_uncalibrated_model_warns_and_does_not_decide(model_dir, pair):
    with pytest.warns(UncalibratedModelWarning, match="no calibration"):
        loc = load_localizer(model_dir)
    result = loc.localize(*pair)
    assert result.abstain is None and result.score is None and result.box is None
    record = result.to_json()
    assert record["abstain"] is None and record["threshold"] is None and record["box"] is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_localizer(model_dir, threshold=0.5).threshold.rule == "given"  # explicit: no warning


def test_bad_calibration_is_named(tmp_path, model_dir):
    folder = save_release(load_model(model_dir), tmp_path / "m")
    for bad, match in (({"thresholds": {}}, "non-empty"), ({"thresholds": {"maxq3": "x"}}, "numbers")):
        update_release_config(folder, calibration=bad)
        with pytest.raises(VsslError, match=match):
            load_localizer(folder)
    update_release_config(folder, calibration={"thresholds": {"max": 0.5}, "map_scale": "logits"})
    with pytest.raises(VsslError, match="config.json.*logits"):
        load_localizer(folder)
    update_release_config(folder, calibration={"thresholds": {"max": 0.5}})
    with pytest.raises(VsslError, match="no threshold 'maxq3'"):
        load_localizer(folder)


def test_json_record(tmp_path, calibrated_release, pair):
    from vssl.infer import write_json

    result = load_localizer(calibrated_release).localize(*pair)
    path = write_json(result, tmp_path / "out" / "map.json")
    record = json.loads(path.read_text())
    assert {"cosine_map", "min", "max", "map_scale", "abstain", "threshold", "box"} <= set(record)
    assert record["map_scale"] == "cosine" and record["threshold_scale"] == "(cos+1)/2" and record["rule"] == "maxq3"
    np.testing.assert_array_equal(np.array(record["cosine_map"], dtype=np.float32), result.cosine_map)
    assert record["abstain"] == result.abstain and record["frame_size"] == [1024, 1024]
    assert [p.name for p in path.parent.iterdir()] == ["map.json"]  # no temporary file left behind


def test_every_real_fixture_file(fixtures_dir, calibrated_release):
    """Short, stereo, 44.1 kHz float and the negative clips: finite maps and a decision for each."""
    real = fixtures_dir / "real"
    loc = load_localizer(calibrated_release)
    frames = sorted(real.glob("*/*.jpg"))
    clips = sorted(real.glob("*/*.wav"))
    assert len(frames) == 4 and len(clips) == 7
    for frame in frames:
        results = loc.localize(frame, clips)
        assert all(np.isfinite(r.cosine_map).all() and r.abstain in (True, False) for r in results)


# ---------------------------------------------------------------- Hugging Face Hub names


def test_hub_names_are_parsed():
    assert parse_hub_name("hf-hub:org/name") == ("org/name", "", None)
    assert parse_hub_name("hf-hub:org/name/models/sslsan@v1") == ("org/name", "models/sslsan", "v1")
    with pytest.raises(VsslError, match="expected hf-hub:ORG/NAME"):
        parse_hub_name("hf-hub:name")


def test_hub_model_is_downloaded_with_huggingface_hub(tmp_path, calibrated_release, monkeypatch, pair):
    repo = tmp_path / "snapshot"
    save_release(load_model(calibrated_release), repo / "models" / "sslsan", extra={"calibration": CALIBRATION})
    calls = []

    def snapshot_download(repo_id, revision=None, allow_patterns=None):
        calls.append((repo_id, revision, allow_patterns))
        return str(repo)

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(snapshot_download=snapshot_download))
    loc = vssl.load_localizer("hf-hub:org/demo/models/sslsan@main")
    assert calls == [("org/demo", "main", ["models/sslsan/config.json", "models/sslsan/model.safetensors"])]
    assert loc.threshold.value == 0.55
    expected = load_localizer(calibrated_release).localize(*pair).cosine_map
    np.testing.assert_array_equal(loc.localize(*pair).cosine_map, expected)
    assert vssl.load_model("hf-hub:org/demo/models/sslsan").cfg.name == "test"
    with pytest.raises(VsslError, match="not a vssl release folder"):
        vssl.load_model("hf-hub:org/demo")


def test_hub_without_the_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails
    with pytest.raises(VsslError, match=re.escape("pip install -e '.[hub]' in the vssl checkout")):
        vssl.load_model("hf-hub:org/name")
