"""OGL: the frozen ResNet-18 object prior and the published mixing rules (never downloads weights)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision

from vssl.errors import VsslError
from vssl.models import ogl
from vssl.models.ogl import ObjectPrior, mix_ezvsl, mix_slavc, object_guided


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A random torchvision resnet18 (classifier included) with non-trivial BatchNorm statistics, saved to a file."""
    torch.manual_seed(0)
    net = torchvision.models.resnet18()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0.0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(net.state_dict(), path)
    return {"path": path, "net": net.eval()}


def test_prior_is_the_channel_mean_of_abs_layer4(weights):
    prior = ObjectPrior(weights["path"])
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        layer4 = torch.nn.Sequential(*list(weights["net"].children())[:-2])(images)  # torchvision, [2, 512, 7, 7]
    out = prior(images)
    assert out.shape == (2, 7, 7) and (out >= 0).all()
    assert torch.allclose(out, layer4.abs().mean(dim=1), atol=1e-5)
    assert torch.allclose(ObjectPrior(weights["net"].state_dict())(images), out)  # a state dict works too


def test_prior_is_frozen(weights):
    prior = ObjectPrior(weights["path"]).train()
    assert not prior.training and not any(p.requires_grad for p in prior.parameters())
    before = prior.trunk.bn1.running_mean.clone()
    prior(torch.randn(2, 3, 64, 64))
    assert torch.equal(prior.trunk.bn1.running_mean, before)  # ImageNet statistics stay


def test_imagenet_weights_come_from_torchvisions_weight_api(monkeypatch, weights):
    calls, build = [], torchvision.models.resnet18

    def fake_resnet18(weights=None):  # stands in for the download
        calls.append(weights)
        return build()

    monkeypatch.setattr(torchvision.models, "resnet18", fake_resnet18)
    ObjectPrior()
    assert calls == [torchvision.models.ResNet18_Weights.IMAGENET1K_V1]


def test_bad_weights_are_named(tmp_path, weights):
    with pytest.raises(VsslError, match="not found"):
        ObjectPrior(tmp_path / "none.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(VsslError, match="not a readable"):
        ObjectPrior(tmp_path / "junk.pth")
    state = torch.load(weights["path"], weights_only=True)
    del state["layer4.1.bn2.weight"]
    with pytest.raises(VsslError, match="layer4.1.bn2.weight"):
        ObjectPrior(state)


AV = torch.tensor([[[-0.2, 0.1], [0.4, 0.0]]])  # [1, 2, 2] cosine
OBJ = torch.tensor([[[1.0, 2.0], [0.5, 3.0]]])  # [1, 2, 2] prior


def test_ezvsl_rule_by_hand():
    # minmax(AV) = [[0, .5], [1, 1/3]]; minmax(OBJ) = [[.2, .6], [0, 1]]
    mixed = 0.4 * torch.tensor([[0.0, 0.5], [1.0, 1 / 3]]) + 0.6 * torch.tensor([[0.2, 0.6], [0.0, 1.0]])
    # = [[.12, .56], [.4, 2/15 + .6]]: min .12, max .7333...
    expected = (mixed - 0.12) / (0.4 / 3 + 0.6 - 0.12)
    assert torch.allclose(mix_ezvsl(AV, OBJ), expected[None], atol=1e-6)
    assert torch.allclose(mix_ezvsl(AV / 0.03, OBJ), mix_ezvsl(AV, OBJ), atol=1e-6)  # any AV scale
    assert torch.allclose(object_guided("fnac", AV, OBJ), mix_ezvsl(AV, OBJ))


def test_slavc_rule_by_hand():
    expected = torch.tensor([[[0.9 * 0.4 + 0.04, 0.9 * 0.55 + 0.08], [0.9 * 0.7 + 0.02, 0.9 * 0.5 + 0.12]]])
    assert torch.allclose(mix_slavc(AV, OBJ), expected, atol=1e-6)
    assert torch.allclose(object_guided("slavc", AV, OBJ), expected, atol=1e-6)
    with pytest.raises(VsslError, match="no published OGL rule for 'lvs'"):
        object_guided("lvs", AV, OBJ)


def test_icassp25_rule_mixes_the_raw_maps():
    expected = 0.4 * AV + 0.6 * OBJ  # no min-max, no scale change (the ICASSP'25 code)
    assert torch.allclose(object_guided("icassp25", AV, OBJ), expected, atol=1e-7)


def test_different_resolutions_are_mixed_at_224():
    av, obj = torch.rand(2, 14, 14) * 2 - 1, torch.rand(2, 7, 7) * 2.5

    def up(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x[:, None], size=(224, 224), mode="bilinear", align_corners=True)[:, 0]

    assert torch.allclose(mix_slavc(av, obj), 0.9 * (up(av) + 1) / 2 + 0.1 * up(obj) / 2.5, atol=1e-6)
    assert mix_ezvsl(av, obj).shape == (2, 224, 224)
    same = torch.rand(2, 7, 7)
    assert mix_ezvsl(same, obj).shape == (2, 7, 7)  # equal resolutions: mixed where they are
    assert mix_ezvsl(same, obj, size=224).shape == (2, 224, 224)  # as the reference test code does
    assert ogl.OBJ_SCALE == 2.5
