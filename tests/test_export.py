"""``vssl export onnx``: the in-graph spectrogram, onnxruntime parity with PyTorch, metadata, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vssl import load_localizer, save_release
from vssl.audio import AudioConfig, center_window, load_audio, log_spectrogram
from vssl.cli import main
from vssl.export import ConvSpectrogram, example_inputs, export_onnx, onnx_parity
from vssl.models.registry import create_model
from vssl.vision import eval_transform, load_image

CALIBRATION = {"thresholds": {"max": 0.52, "max10": 0.572, "maxq3": 0.55}, "map_scale": "(cos+1)/2"}
PARITY = 1e-4


@pytest.fixture(scope="module")
def exported(tmp_path_factory, require) -> tuple[Path, Path]:
    """A calibrated ``test`` model folder and its ONNX export, written by the CLI."""
    require("onnx", "onnx"), require("onnxscript", "onnx"), require("onnxruntime", "onnx")
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("export")
    folder = save_release(create_model("test").eval(), root / "model", extra={"calibration": CALIBRATION})
    assert main(["export", "onnx", "--model", str(folder), "--out", str(root / "model.onnx")]) == 0
    return folder, root / "model.onnx"


def test_convolution_spectrogram_equals_the_fft_front_end():
    cfg = AudioConfig()
    g = torch.Generator().manual_seed(0)
    waves = torch.stack(
        [
            (torch.randn(48000, generator=g) * 0.1).clamp(-1, 1),
            torch.zeros(48000),  # silence: log(eps) everywhere
            torch.randn(48000, generator=g).clamp(-1, 1),  # the evaluation noise
            torch.sin(torch.arange(48000) * 0.05) * 0.5 + 0.3,  # a tone with a DC offset (detrend)
        ]
    )
    torch.testing.assert_close(ConvSpectrogram(cfg)(waves), log_spectrogram(waves, cfg), atol=2e-5, rtol=0)


def test_onnxruntime_matches_pytorch(exported):
    folder, path = exported
    model = load_localizer(folder).model
    assert onnx_parity(model, path) <= PARITY  # batch 3: the batch dimension is dynamic
    assert onnx_parity(model, path, example_inputs(model, batch=1, seed=5)) <= PARITY


def test_onnx_map_on_real_files_equals_the_localizer(exported, fixtures_dir, require):
    ort = require("onnxruntime", "onnx")
    folder, path = exported
    loc = load_localizer(folder)
    root = fixtures_dir / "real"
    frame, clip = root / "vggss" / "0F04c_rY4aw_000000.jpg", root / "avsbench_s4" / "0UN02RkbG_U.wav"
    image = eval_transform(loc.cfg.image)(load_image(frame))[None].numpy()
    wave = center_window(load_audio(clip, 16000), loc.cfg.audio)[None].numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    _, _, cosine = session.run(None, {"image": image, "waveform": wave})
    expected = loc.localize(frame, clip).cosine_map
    np.testing.assert_allclose(cosine[0], expected, atol=PARITY)


def test_metadata_carries_preprocessing_and_calibration(exported, require):
    onnx = require("onnx", "onnx")
    _, path = exported
    meta = {p.key: json.loads(p.value) for p in onnx.load(str(path)).metadata_props}
    assert meta["vssl_model"]["name"] == "test" and meta["vssl_model"]["image"]["size"] == 64
    assert meta["vssl_model"]["audio"]["sample_rate"] == 16000
    assert meta["vssl_calibration"]["thresholds"] == CALIBRATION["thresholds"]


@pytest.mark.slow
def test_encoder_parts(tmp_path, require):
    for module in ("onnx", "onnxscript", "onnxruntime"):
        require(module, "onnx")
    torch.manual_seed(1)
    model = create_model("test").eval()
    paths = export_onnx(model, tmp_path / "m.onnx", parts=True)
    assert [p.name for p in paths] == ["m.onnx", "m.image.onnx", "m.audio.onnx"]
    assert all(onnx_parity(model, p) <= PARITY for p in paths[1:])


def test_an_ssltie_model_exports_with_its_mel_front_end(tmp_path, require):
    """SSL-TIE's ``mel_db`` front end runs in the graph too (reflect pad, DFT convolution, mel matrix, dB)."""
    require("onnx", "onnx"), require("onnxscript", "onnx"), require("onnxruntime", "onnx")
    from dataclasses import replace

    from vssl.models.convert import FORMATS
    from vssl.models.registry import model_config

    torch.manual_seed(0)
    audio = replace(FORMATS["ssltie"].audio, duration=1.0)  # 1 s keeps the test fast; same frames per second
    model = create_model(replace(model_config("test"), audio=audio)).eval()
    path = export_onnx(model, tmp_path / "tie.onnx")[0]
    assert onnx_parity(model, path) <= PARITY
