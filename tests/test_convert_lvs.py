"""``vssl convert --format lvs|sslalign|ssltie``: official-layout checkpoints give the official maps.

The checkpoints are synthetic: `OfficialAVENet` mirrors the module structure of LVS's ``model.py`` /
``models/base_models.py`` (copied unchanged into SSL-Align's ``model_lvs.py``; SSL-TIE's ``models/model.py`` adds
``vision_fc1``, ``conv3`` and ``norm3``), so its state dict has the official key names and shapes: per trunk three
stems (``conv1`` RGB, ``conv1_a`` 1-channel, ``conv1_flow`` 6-channel), ``bn1``, ``layer1..4`` with layer4 at
stride 1, and an ImageNet ``fc``. The expected maps come from `official_maps`, the official forward written out
with plain torch ops on that state dict (image stem ``conv1``, audio stem ``conv1_a``, global max over the audio
map, cosine of L2-normalised features), independent of vssl's modules.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import signal
from torch import nn
from torchvision.models.resnet import BasicBlock

from vssl import load_model
from vssl.audio import center_window, mel_db_spectrogram
from vssl.errors import VsslError
from vssl.models.convert import FORMATS, CheckpointFormat, convert, map_official_keys
from vssl.models.registry import MODEL_SIZES, create_model

FORMAT_NAMES = ("lvs", "sslalign", "ssltie")
LAYER_STRIDES = (1, 2, 2, 1)  # layer1..layer4 of LVS's ResNet, in both trunks
TOLERANCE = 1e-5
SAMPLE_RATE = 16000

# ---------------------------------------------------------------- the official module structure (a stand-in)


class OfficialResNet(nn.Module):
    """LVS's ``base_models.ResNet`` as its state dict sees it (the forward is `official_trunk`)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1_a = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.conv1_flow = nn.Conv2d(6, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = 64
        for i, (planes, stride) in enumerate(zip((64, 128, 256, 512), LAYER_STRIDES, strict=True)):
            downsample = None
            if stride != 1 or inplanes != planes:
                downsample = nn.Sequential(
                    nn.Conv2d(inplanes, planes, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(planes)
                )
            blocks = [BasicBlock(inplanes, planes, stride, downsample), BasicBlock(planes, planes)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            inplanes = planes
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, 1000)


class OfficialAVENet(nn.Module):
    """LVS's / SSL-Align's ``AVENet`` (``ssltie=True``: SSL-TIE's, with its three extra modules)."""

    def __init__(self, ssltie: bool = False) -> None:
        super().__init__()
        self.imgnet = OfficialResNet()
        self.audnet = OfficialResNet()
        self.m = nn.Sigmoid()
        self.avgpool = nn.AdaptiveMaxPool2d((1, 1))
        if ssltie:
            self.vision_fc1 = nn.Conv2d(1024, 512, kernel_size=(1, 1))
            self.relu = nn.ReLU(inplace=True)
            self.conv3 = nn.Conv2d(1, 1, 1)
            self.norm3 = nn.BatchNorm2d(1)
            self.vpool3 = nn.MaxPool2d(14, stride=14)
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):  # eval-mode statistics and affine terms that matter
                    m.weight.normal_(1.0, 0.1)
                    m.bias.normal_(0.0, 0.1)
                    m.running_mean.normal_(0.0, 0.1)
                    m.running_var.uniform_(0.5, 1.5)


def official_state(seed: int, ssltie: bool = False) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return dict(OfficialAVENet(ssltie).state_dict())


# ---------------------------------------------------------------- the official forward, written out


def _bn(x: torch.Tensor, sd: dict[str, torch.Tensor], p: str) -> torch.Tensor:
    w, b, mean, var = (sd[f"{p}.{n}"] for n in ("weight", "bias", "running_mean", "running_var"))
    return F.batch_norm(x, mean, var, w, b, training=False, eps=1e-5)


def official_trunk(x: torch.Tensor, sd: dict[str, torch.Tensor], trunk: str, stem: str) -> torch.Tensor:
    """``base_models.ResNet._forward_impl``: the modality's stem, bn1, relu, maxpool, layer1..4 (no pooling, no fc)."""
    x = F.conv2d(x, sd[f"{trunk}.{stem}.weight"], stride=2, padding=3)
    x = F.max_pool2d(F.relu(_bn(x, sd, f"{trunk}.bn1")), kernel_size=3, stride=2, padding=1)
    for layer, stride in enumerate(LAYER_STRIDES, start=1):
        for block in range(2):
            p, s = f"{trunk}.layer{layer}.{block}", stride if block == 0 else 1
            out = F.relu(_bn(F.conv2d(x, sd[f"{p}.conv1.weight"], stride=s, padding=1), sd, f"{p}.bn1"))
            out = _bn(F.conv2d(out, sd[f"{p}.conv2.weight"], padding=1), sd, f"{p}.bn2")
            if f"{p}.downsample.0.weight" in sd:
                x = _bn(F.conv2d(x, sd[f"{p}.downsample.0.weight"], stride=s), sd, f"{p}.downsample.1")
            x = F.relu(out + x)
    return x


@torch.no_grad()
def official_maps(sd: dict[str, torch.Tensor], images: torch.Tensor, specs: torch.Tensor) -> torch.Tensor:
    """``AVENet.forward``'s map A of image i with audio i: ``[B, 14, 14]`` at 224."""
    img = F.normalize(official_trunk(images, sd, "imgnet", "conv1"), dim=1)
    aud = F.normalize(torch.amax(official_trunk(specs, sd, "audnet", "conv1_a"), dim=(2, 3)), dim=1)
    return (img * aud[:, :, None, None]).sum(dim=1)


def official_spectrogram(clip: np.ndarray, fmt: str) -> torch.Tensor:
    """The test dataloader's input for a 10 s, 16 kHz clip: LVS's ``datasets/dataloader.py``, SSL-Align's
    ``datasets_lvs.py`` (seconds 3.5-6.5) -> ``[1, 257, frames]``."""
    if fmt == "lvs":
        window, noverlap = clip[: SAMPLE_RATE * 10], 274
    else:
        window, noverlap = clip[: SAMPLE_RATE * 10][int(SAMPLE_RATE * 3.5) : int(SAMPLE_RATE * 6.5)], 353
    _, _, spec = signal.spectrogram(window, SAMPLE_RATE, nperseg=512, noverlap=noverlap)
    return torch.from_numpy(np.log(spec + 1e-7) / 12.0).float()[None]


# ---------------------------------------------------------------- helpers and fixtures


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return official_state(seed=0)


def _save(tmp_path: Path, checkpoint: dict, name: str = "official.pth.tar") -> Path:
    path = tmp_path / name
    torch.save(checkpoint, path)
    return path


def _checkpoint(state: dict[str, torch.Tensor], prefix: str = "", fmt: str = "lvs") -> dict:
    """The official layout: the weights under ``model_state_dict`` (SSL-TIE: ``state_dict``) beside training state."""
    return {FORMATS[fmt].state_key: {prefix + k: v for k, v in state.items()}, "epoch": 20, "optimizer_state_dict": {}}


def _inputs(size: int = 112, frames: int = 64, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Random images ``[2, 3, size, size]`` and log-spectrograms ``[2, 1, 257, frames]`` (small: CPU seconds)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 3, size, size, generator=g), torch.randn(2, 1, 257, frames, generator=g) * 0.3 - 0.8


def _maps(model, images: torch.Tensor, specs: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.einsum("bdhw,bd->bhw", model.encode_image(images), model.encode_audio(specs))


# ---------------------------------------------------------------- supported formats


# LVS's own test.py loads into nn.DataParallel (module.* keys); SSL-Align's adds the prefix itself (none stored).
@pytest.mark.parametrize("fmt,prefix", [("lvs", "module."), ("sslalign", ""), ("ssltie", "module.")])
def test_converted_checkpoint_gives_the_official_maps(tmp_path, fmt, prefix):
    state = official_state(seed=0, ssltie=fmt == "ssltie")
    out = convert(_save(tmp_path, _checkpoint(state, prefix, fmt)), fmt, tmp_path / "model")
    model = load_model(out)
    assert model.cfg == FORMATS[fmt].model_config()
    assert model.cfg.name == "lvs_official_resnet18"
    converted = model.state_dict()
    assert converted["audnet.conv1.weight"].shape == (64, 1, 7, 7)
    assert torch.equal(converted["audnet.conv1.weight"], state["audnet.conv1_a.weight"])
    assert torch.equal(converted["imgnet.conv1.weight"], state["imgnet.conv1.weight"])
    assert all(torch.equal(converted[k], v) for k, v in state.items() if k in converted and k != "audnet.conv1.weight")

    images, specs = _inputs(size=224, frames=model.cfg.audio.num_frames)
    ours, expected = _maps(model, images, specs), official_maps(state, images, specs)
    assert ours.shape == (2, 14, 14)
    assert torch.allclose(ours, expected, atol=TOLERANCE), (ours - expected).abs().max()


@pytest.mark.parametrize("fmt", ["lvs", "sslalign"])
def test_the_model_carries_the_official_audio_front_end(tmp_path, state, fmt):
    model = load_model(convert(_save(tmp_path, _checkpoint(state)), fmt, tmp_path / "model"))
    g = torch.Generator().manual_seed(2)
    clips = (torch.rand(2, SAMPLE_RATE * 10, generator=g, dtype=torch.float64) - 0.5).numpy()
    expected_specs = torch.stack([official_spectrogram(c, fmt) for c in clips])
    windows = center_window(torch.from_numpy(clips).float(), model.cfg.audio)
    specs = model.spectrogram(windows)
    assert specs.shape == expected_specs.shape == (2, 1, 257, {"lvs": 671, "sslalign": 299}[fmt])
    assert torch.allclose(specs, expected_specs, atol=TOLERANCE), (specs - expected_specs).abs().max()

    images = _inputs()[0]
    ours = model.localize(images, windows)
    expected = official_maps(state, images, expected_specs)
    # float32 spectrograms against scipy's float64 ones: the inputs already differ by ~1e-6
    assert torch.allclose(ours, expected, atol=1e-4), (ours - expected).abs().max()


def test_the_lvs_training_size_would_not_reproduce_the_official_audio_vector(state):
    """``lvs_resnet18`` takes the same keys and shapes, but its audio layer4 has stride 2: other maps."""
    mapped = map_official_keys(state, FORMATS["lvs"])
    trained = create_model("lvs_resnet18").eval()
    trained.load_state_dict(mapped.state, strict=True)
    assert MODEL_SIZES["lvs_resnet18"].audio_backbone.last_stride == 2
    assert MODEL_SIZES["lvs_official_resnet18"].audio_backbone.last_stride == 1
    images, specs = _inputs()
    assert not torch.allclose(_maps(trained, images, specs), official_maps(state, images, specs), atol=1e-3)


def test_config_json_records_the_key_mapping(tmp_path, state):
    out = convert(_save(tmp_path, _checkpoint(state, "module."), "lvs_vggss.pth.tar"), "lvs", tmp_path / "model")
    config = json.loads((out / "config.json").read_text())
    source = config["converted_from"]
    assert source["format"] == "lvs" and source["file"] == "lvs_vggss.pth.tar" and len(source["sha256"]) == 64
    assert source["renamed_keys"] == {"audnet.conv1_a.weight": "audnet.conv1.weight"}
    idle = {"imgnet": "conv1_a.weight", "audnet": "conv1.weight"}  # the stem of the other modality
    assert source["dropped_unused_keys"] == sorted(
        f"{trunk}.{name}" for trunk in idle for name in ("conv1_flow.weight", "fc.weight", "fc.bias", idle[trunk])
    )
    assert "conv1_a" in source["dropped_because"] and "layer4" in source["dropped_because"]
    assert "noverlap 274" in source["audio_front_end"]
    assert config["model"]["audio"]["duration"] == 10.0 and config["model"]["audio"]["noverlap"] == 274
    assert config["model"]["audio_backbone"]["last_stride"] == 1


def test_absent_unused_tensors_are_not_required(tmp_path, state):
    # The official loaders update the model's own state dict with the checkpoint's: idle tensors may be absent.
    unused = dict(FORMATS["sslalign"].unused)
    lean = {k: v for k, v in state.items() if k not in unused}
    out = convert(_save(tmp_path, _checkpoint(lean)), "sslalign", tmp_path / "model")
    assert "dropped_unused_keys" not in json.loads((out / "config.json").read_text())["converted_from"]
    model = load_model(out)
    images, specs = _inputs()
    assert torch.allclose(_maps(model, images, specs), official_maps(state, images, specs), atol=TOLERANCE)


# ---------------------------------------------------------------- errors


def test_problems_are_all_listed_under_the_official_names(tmp_path, state):
    broken = dict(state)
    del broken["audnet.conv1_a.weight"], broken["imgnet.layer4.1.bn2.running_var"]
    broken["img_proj.weight"] = torch.zeros(512, 512, 1, 1)
    broken["imgnet.fc.weight"] = torch.zeros(10, 512)
    broken["audnet.layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)
    path = _save(tmp_path, _checkpoint(broken, "module."))
    with pytest.raises(VsslError) as info:
        convert(path, "lvs", tmp_path / "model")
    message = str(info.value)
    assert str(path) in message and "lvs_official_resnet18" in message
    assert "missing keys (2): audnet.conv1_a.weight, imgnet.layer4.1.bn2.running_var" in message
    assert "unexpected keys (1): img_proj.weight" in message
    assert "shape mismatches (1): audnet.layer1.0.conv1.weight [64, 64, 1, 1] (model [64, 64, 3, 3])" in message
    assert "unexpected shape (another architecture?) (1): imgnet.fc.weight [10, 512] (official [1000, 512])" in message
    assert not (tmp_path / "model").exists()


def test_an_ezvsl_checkpoint_is_not_taken_for_an_lvs_one(tmp_path):
    ezvsl = create_model("resnet18").state_dict()
    with pytest.raises(VsslError, match=r"entry 'model_state_dict'; found \['model'\]"):
        convert(_save(tmp_path, {"model": ezvsl}), "lvs", tmp_path / "model")
    # Under the right entry, its 1-channel audnet.conv1 is not LVS's idle RGB stem, and its heads are unknown.
    with pytest.raises(VsslError) as info:
        convert(_save(tmp_path, {"model_state_dict": ezvsl}, "renamed.pth"), "sslalign", tmp_path / "model")
    message = str(info.value)
    assert "audnet.conv1.weight [64, 1, 7, 7] (official [64, 3, 7, 7])" in message
    assert "missing keys (1): audnet.conv1_a.weight" in message
    assert "unexpected keys (4): aud_proj.bias, aud_proj.weight, img_proj.bias, img_proj.weight" in message


def test_a_rename_onto_a_present_key_is_refused():
    fmt = CheckpointFormat("x", "X", "model", "test", renamed=(("a", "b"),))
    mapped = map_official_keys({"a": torch.zeros(1), "b": torch.ones(1)}, fmt)
    assert mapped.renamed == {} and mapped.problems == ["renamed keys whose vssl name is already taken (1): a -> b"]


def test_ssltie_drops_its_idle_modules_and_feeds_mel_bands_in_db(tmp_path):
    state = official_state(seed=3, ssltie=True)
    path = _save(tmp_path, {"state_dict": state, "epoch": 1, "best_miou": 0.3}, "ssltie.pth.tar")
    out = convert(path, "ssltie", tmp_path / "model")
    source = json.loads((out / "config.json").read_text())["converted_from"]
    assert {"vision_fc1.weight", "conv3.weight", "norm3.num_batches_tracked"} <= set(source["dropped_unused_keys"])
    assert "vision_fc1 is never called" in source["dropped_because"] and "MelSpectrogram" in source["audio_front_end"]

    # its front end (checked against torchaudio in test_audio_mel.py) feeds the official network
    model = load_model(out)
    assert model.cfg.audio == FORMATS["ssltie"].audio and model.cfg.audio.features == "mel_db"
    g = torch.Generator().manual_seed(2)
    windows = center_window(torch.rand(2, SAMPLE_RATE * 10, generator=g) - 0.5, model.cfg.audio)
    specs = mel_db_spectrogram(windows, model.cfg.audio)
    assert specs.shape == (2, 1, 257, 670)
    images = _inputs()[0]
    expected = official_maps(state, images, specs)
    assert torch.allclose(model.localize(images, windows), expected, atol=TOLERANCE)
