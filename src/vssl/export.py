"""``vssl export onnx``: the localizer as an ONNX graph, from raw waveform to cosine map.

Graph ``model.onnx`` (batch dimension dynamic):

    inputs   image     [B, 3, S, S]   normalised frames (the model's eval preprocessing: bicubic resize, ImageNet norm)
             waveform  [B, N]          mono windows at the model's rate (N = 48 000: 3 s at 16 kHz), in [-1, 1]
    outputs  image_features   [B, D, h, w]  unit vectors
             audio_embedding  [B, D]        unit vector
             cosine_map       [B, h, w]     cosine of image i with audio i (the absolute map; threshold it on
                                            the calibration's scale, e.g. (cos+1)/2 > t)

The spectrogram runs inside the graph as strided convolutions with a windowed DFT basis (per-segment mean
removal folded in by linearity), equal to `vssl.audio.log_spectrogram` within float32 rounding, so no FFT
operator is needed (SSL-TIE's ``mel_db`` kind: a reflect pad, the same convolution and the mel matrix).
``--parts`` also writes ``*.image.onnx`` (image -> image_features) and ``*.audio.onnx`` (waveform ->
audio_embedding) to encode a frame once for many audio windows. The graph's metadata holds the
model config (preprocessing included) and the calibration, as JSON strings.
"""

from __future__ import annotations

import importlib
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vssl.atomic import atomic_path
from vssl.audio import AudioConfig, _mel_filterbank, _tukey
from vssl.config import to_dict
from vssl.errors import ConfigError, VsslError
from vssl.maps import paired_maps
from vssl.models.localizer import AVLocalizer

OPSET = 18
EXPORT_FORMATS = ("onnx",)
"""What ``vssl export FORMAT`` writes."""


@dataclass(frozen=True)
class ExportConfig:
    """``vssl export``: which model, to what, and whether the export is checked."""

    model: str = ""
    """model folder (vssl train / convert / demo) or hf-hub:ORG/NAME[/SUBFOLDER][@REVISION]; its calibration goes
    into the graph's metadata"""
    format: str = EXPORT_FORMATS[0]
    """export format: onnx (one graph, dynamic batch; also the positional FORMAT)"""
    parts: bool = False
    """also write OUT.image.onnx and OUT.audio.onnx: each encoder alone, to encode a frame once for many audio
    windows"""
    check: bool = True
    """compare onnxruntime's outputs with PyTorch's on random inputs and print the largest difference"""

    def __post_init__(self) -> None:
        if self.format not in EXPORT_FORMATS:
            raise ConfigError(f"format {self.format!r} unknown; choose one of {list(EXPORT_FORMATS)}")


def _dft_basis(window: torch.Tensor, bins: int) -> torch.Tensor:
    """``[2 * bins, n]`` float64: the real and imaginary rows of the DFT of a segment times ``window``."""
    n = len(window)
    angle = 2 * math.pi * torch.outer(torch.arange(bins, dtype=torch.float64), torch.arange(n, dtype=torch.float64))
    angle = angle / n
    return torch.cat([window * torch.cos(angle), -window * torch.sin(angle)])


class ConvSpectrogram(nn.Module):
    """`vssl.audio.log_spectrogram` as convolutions: ``[B, N] -> [B, 1, F, frames]`` (``[B, 1, 257, 200]``)."""

    def __init__(self, cfg: AudioConfig):
        super().__init__()
        self.cfg = cfg
        n, bins = cfg.nperseg, cfg.num_freqs
        window = _tukey(n, cfg.tukey_alpha, torch.device("cpu"), torch.float64)
        basis = _dft_basis(window, bins)
        # one-sided density: |X|^2 / (fs * sum(w^2)), doubled except at DC (and Nyquist for even n)
        scale = torch.full((bins,), 2.0 / (cfg.sample_rate * float(window.square().sum())), dtype=torch.float64)
        scale[0] /= 2
        if n % 2 == 0:
            scale[-1] /= 2
        self.register_buffer("basis", basis[:, None].float())  # [2F, 1, n]
        self.register_buffer("window_dft", basis.sum(dim=1)[None, :, None].float())  # DFT of the window [1, 2F, 1]
        self.register_buffer("scale", scale[None, :, None].float())  # [1, F, 1]

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        x = waves[:, None]  # [B, 1, N]
        hop, n = self.cfg.hop, self.cfg.nperseg
        projected = F.conv1d(x, self.basis, stride=hop)  # [B, 2F, frames]: DFT of the windowed segments
        means = F.avg_pool1d(x, n, stride=hop)  # [B, 1, frames]: each segment's mean (detrend='constant')
        detrended = projected - means * self.window_dft  # DFT(w * (x - m)) = DFT(w * x) - m * DFT(w)
        real, imag = detrended.chunk(2, dim=1)
        power = (real.square() + imag.square()) * self.scale  # [B, F, frames]
        return (torch.log(power + self.cfg.log_eps) / self.cfg.log_divisor)[:, None]


class ConvMelSpectrogram(nn.Module):
    """`vssl.audio.mel_db_spectrogram` (SSL-TIE) as a reflect pad, a convolution and a matrix product:
    ``[B, N] -> [B, 1, n_mels, 1 + N // hop]``."""

    def __init__(self, cfg: AudioConfig):
        super().__init__()
        self.cfg = cfg
        n = cfg.nperseg
        window = torch.hann_window(n, periodic=True, dtype=torch.float64)
        self.register_buffer("basis", _dft_basis(window / window.square().sum().sqrt(), n // 2 + 1)[:, None].float())
        self.register_buffer("bands", _mel_filterbank(n // 2 + 1, cfg.n_mels, cfg.sample_rate).T.contiguous())

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        half = self.cfg.nperseg // 2
        x = F.pad(waves[:, None], (half, half), mode="reflect")  # [B, 1, N + nperseg]: centred frames
        real, imag = F.conv1d(x, self.basis, stride=self.cfg.hop).chunk(2, dim=1)  # [B, F, frames] each
        mel = torch.matmul(self.bands, real.square() + imag.square())  # [B, n_mels, frames]
        return (10.0 * torch.log10(mel.clamp(min=1e-10)))[:, None]


def conv_spectrogram(cfg: AudioConfig) -> nn.Module:
    """The graph module computing ``cfg``'s spectrogram kind."""
    return ConvMelSpectrogram(cfg) if cfg.features == "mel_db" else ConvSpectrogram(cfg)


class _Full(nn.Module):
    def __init__(self, model: AVLocalizer):
        super().__init__()
        self.model, self.spectrogram = model, conv_spectrogram(model.cfg.audio)

    def forward(self, image: torch.Tensor, waveform: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features = self.model.encode_image(image)
        embedding = self.model.encode_audio(self.spectrogram(waveform))
        return features, embedding, paired_maps(features, embedding)


class _ImagePart(nn.Module):
    def __init__(self, model: AVLocalizer):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(image)


class _AudioPart(nn.Module):
    def __init__(self, model: AVLocalizer):
        super().__init__()
        self.model, self.spectrogram = model, conv_spectrogram(model.cfg.audio)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.model.encode_audio(self.spectrogram(waveform))


def example_inputs(model: AVLocalizer, batch: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random ``image [B, 3, S, S]`` and ``waveform [B, N]`` (speech-level noise) for tracing and parity checks."""
    g = torch.Generator().manual_seed(seed)
    size, n = model.cfg.image.size, model.cfg.audio.num_samples
    return {
        "image": torch.randn(batch, 3, size, size, generator=g),
        "waveform": (torch.randn(batch, n, generator=g) * 0.1).clamp(-1, 1),
    }


def _export(module: nn.Module, inputs: dict[str, torch.Tensor], outputs: list[str], path: Path, meta: dict) -> Path:
    """Trace ``module`` with a dynamic batch dimension and write it to ``path`` (one file, atomically)."""
    try:
        onnx = importlib.import_module("onnx")
        importlib.import_module("onnxscript")
    except ImportError:
        raise VsslError(
            "ONNX export needs onnx and onnxscript (pip install -e '.[onnx]' in the vssl checkout)"
        ) from None
    batch = torch.export.Dim("batch", min=1, max=4096)
    shapes = {name: {0: batch} for name in inputs}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*axis name.*")  # both inputs share the batch dimension
        program = torch.onnx.export(
            module.eval(),
            tuple(inputs.values()),
            input_names=list(inputs),
            output_names=outputs,
            dynamic_shapes=shapes,
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    proto = program.model_proto
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    with atomic_path(path) as tmp:
        onnx.save_model(proto, str(tmp))
    return path


def export_onnx(
    model: AVLocalizer, out: str | Path, parts: bool = False, metadata: dict[str, Any] | None = None
) -> list[Path]:
    """Write ``out`` (image + waveform -> features, embedding, map) and, with ``parts``, ``*.image.onnx`` and
    ``*.audio.onnx`` beside it. ``metadata`` (e.g. ``{"calibration": ...}``) is stored with the model config."""
    out = Path(out)
    model = model.eval().cpu()
    meta = {"vssl_model": to_dict(model.cfg), **{f"vssl_{k}": v for k, v in (metadata or {}).items()}}
    inputs = example_inputs(model)
    written = [_export(_Full(model), inputs, ["image_features", "audio_embedding", "cosine_map"], out, meta)]
    if parts:
        stem = out.with_suffix("")
        image = {"image": inputs["image"]}
        written.append(_export(_ImagePart(model), image, ["image_features"], stem.with_suffix(".image.onnx"), meta))
        wave = {"waveform": inputs["waveform"]}
        written.append(_export(_AudioPart(model), wave, ["audio_embedding"], stem.with_suffix(".audio.onnx"), meta))
    return written


def onnx_parity(model: AVLocalizer, path: str | Path, inputs: dict[str, torch.Tensor] | None = None) -> float:
    """Largest absolute difference between onnxruntime's outputs for ``path`` and PyTorch's (the real model,
    FFT spectrogram included) on ``inputs`` (default: `example_inputs` with batch 3)."""
    try:
        ort = importlib.import_module("onnxruntime")
    except ImportError:
        raise VsslError(
            "checking an ONNX export needs onnxruntime (pip install -e '.[onnx]' in the vssl checkout)"
        ) from None
    model = model.eval().cpu()
    inputs = inputs or example_inputs(model, batch=3, seed=1)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    got = session.run(None, {n: inputs[n].numpy() for n in names})
    with torch.no_grad():
        features = model.encode_image(inputs["image"]) if "image" in names else None
        embedding = model.encode_waveform(inputs["waveform"]) if "waveform" in names else None
    expected_by_name = {"image_features": features, "audio_embedding": embedding}
    if features is not None and embedding is not None:
        expected_by_name["cosine_map"] = paired_maps(features, embedding)
    outputs = [o.name for o in session.get_outputs()]
    return max(float(np.abs(g - expected_by_name[name].numpy()).max()) for g, name in zip(got, outputs, strict=True))
