"""``vssl convert --format slavc``: an official-layout SLAVC checkpoint gives the official model's maps.

The checkpoint is synthetic: torchvision ResNet-18 trunks, 1x1 convs and linears built as SLAVC's
``model.py`` builds them (``imgnet``, ``img_proj1/2``, ``audnet``, ``aud_proj1/2`` and ``momentum_*``
copies of each), with random weights and BatchNorm statistics. The expected map is computed from those
torchvision modules directly, as SLAVC's evaluation does (momentum encoders, mean of the two heads).
"""

from __future__ import annotations

import json

import pytest
import torch
import torchvision
from torch import nn

from vssl import load_model
from vssl.models.convert import convert
from vssl.models.registry import MODEL_SIZES

HEADS = (1, 2)


def _trunk(in_channels: int) -> nn.Module:
    net = torchvision.models.resnet18()
    if in_channels == 1:
        net.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    net.fc = nn.Identity()
    return net


class OfficialBranch(nn.Module):
    """One of SLAVC's two branches (online or momentum), named as in its model.py."""

    def __init__(self):
        super().__init__()
        self.imgnet, self.audnet = _trunk(3), _trunk(1)
        for k in HEADS:
            self.add_module(f"img_proj{k}", nn.Conv2d(512, 512, kernel_size=1))
            self.add_module(f"aud_proj{k}", nn.Linear(512, 512))
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):  # eval-mode statistics that matter
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)

    @torch.no_grad()
    def maps(self, images: torch.Tensor, specs: torch.Tensor) -> torch.Tensor:
        """Mean over the two heads of the cosine of image i with audio i: ``[B, 7, 7]``."""
        trunk = nn.Sequential(*list(self.imgnet.children())[:-2])  # up to layer4
        img = trunk(images)
        aud = torch.amax(nn.Sequential(*list(self.audnet.children())[:-2])(specs), dim=(2, 3))
        per_head = []
        for k in HEADS:
            v = nn.functional.normalize(getattr(self, f"img_proj{k}")(img), dim=1)
            a = nn.functional.normalize(getattr(self, f"aud_proj{k}")(aud), dim=1)
            per_head.append((v * a[:, :, None, None]).sum(dim=1))
        return torch.stack(per_head).mean(dim=0)


@pytest.fixture(scope="module")
def official():
    torch.manual_seed(0)
    online, momentum = OfficialBranch().eval(), OfficialBranch().eval()
    state = dict(online.state_dict())
    state |= {f"momentum_{k}": v for k, v in momentum.state_dict().items()}
    return {"state": state, "online": online, "momentum": momentum}


def test_converted_slavc_gives_the_official_momentum_maps(tmp_path, official):
    path = tmp_path / "slavc.pth"
    torch.save({"model": {f"module.{k}": v for k, v in official["state"].items()}, "epoch": 20}, path)
    out = convert(path, "slavc", tmp_path / "model")
    assert json.loads((out / "config.json").read_text())["converted_from"]["format"] == "slavc"
    model = load_model(out)
    assert model.cfg == MODEL_SIZES["slavc_resnet18"]
    converted = model.state_dict()
    assert set(converted) == set(official["state"])
    assert all(torch.equal(converted[k], v) for k, v in official["state"].items())

    images, specs = torch.randn(2, 3, 224, 224), torch.randn(2, 1, 257, 200)
    with torch.no_grad():
        ours = torch.einsum("bdhw,bd->bhw", model.encode_image(images), model.encode_audio(specs))
    expected = official["momentum"].maps(images, specs)
    assert ours.shape == (2, 7, 7)
    assert torch.allclose(ours, expected, atol=1e-5), (ours - expected).abs().max()
    assert not torch.allclose(official["online"].maps(images, specs), expected, atol=1e-3)


def test_a_checkpoint_without_momentum_encoders_is_refused(tmp_path, official):
    path = tmp_path / "ezvsl_like.pth"
    torch.save({"model": {k: v for k, v in official["state"].items() if not k.startswith("momentum_")}}, path)
    with pytest.raises(Exception, match=r"missing keys \(\d+\): momentum_aud_proj1.bias"):
        convert(path, "slavc", tmp_path / "model")
    assert not (tmp_path / "model").exists()
