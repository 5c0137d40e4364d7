import torch

from vssl.audio import AudioConfig
from vssl.maps import paired_maps, pairwise_maps
from vssl.models.encoders import BackboneConfig, ResNetTrunk
from vssl.models.objectives import Batch, ObjectiveConfig, create_objective
from vssl.models.objectives.ezvsl import mil_scores, symmetric_ce
from vssl.models.objectives.sslsan import SSLSaNConfig
from vssl.models.registry import MODEL_SIZES, create_model


def test_resnet18_trunk_has_torchvision_keys():
    import torchvision

    ours = ResNetTrunk(BackboneConfig()).state_dict()
    theirs = {k: v for k, v in torchvision.models.resnet18().state_dict().items() if not k.startswith("fc.")}
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in theirs.items()}


def test_resnet18_localizer_has_official_ezvsl_keys(fixtures_dir):
    import json

    shapes = json.loads((fixtures_dir / "reference" / "ezvsl_state_dict_shapes.json").read_text())["state_dict_shapes"]
    model = create_model("resnet18")
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == shapes


def test_shapes_and_unit_norm_for_every_size():
    for name in ("small", "test"):
        model = create_model(name).eval()
        size = model.cfg.image.size
        img, aud = model(torch.randn(2, 3, size, size), torch.randn(2, AudioConfig().num_samples) * 0.1)
        assert img.shape[:2] == (2, model.cfg.embed_dim) and aud.shape == (2, model.cfg.embed_dim)
        assert torch.allclose(img.norm(dim=1), torch.ones(1), atol=1e-5)
        assert torch.allclose(aud.norm(dim=1), torch.ones(1), atol=1e-5)
        maps = paired_maps(img, aud)
        assert maps.shape == (2, *img.shape[2:]) and maps.abs().max() <= 1 + 1e-5
    assert MODEL_SIZES["small"].image.size == 112
    model = create_model("small").eval()
    assert model.encode_image(torch.randn(1, 3, 112, 112)).shape[-2:] == (7, 7)


def test_ezvsl_loss_by_hand_on_a_2x2_batch():
    # Two images of 1x2 locations, D = 2; audio 0 matches location 1 of image 0, audio 1 location 0 of image 1.
    img = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]], [[[0.6, 1.0]], [[0.8, 0.0]]]])  # [2, 2, 1, 2]
    aud = torch.tensor([[0.0, 1.0], [0.6, 0.8]])
    tau = 0.5
    # max over locations of cosine: image0/audio0 = max(0, 1) = 1; image0/audio1 = max(0.6, 0.8) = 0.8
    # image1/audio0 = max(0.8, 0) = 0.8; image1/audio1 = max(0.36+0.64, 0.6) = 1.0
    expected_logits = torch.tensor([[1.0, 0.8], [0.8, 1.0]]) / tau
    assert torch.allclose(mil_scores(img, aud, tau), expected_logits)
    p = torch.exp(torch.tensor(2.0)) / (torch.exp(torch.tensor(2.0)) + torch.exp(torch.tensor(1.6)))
    expected_loss = 2 * -torch.log(p)  # both directions, both rows identical by symmetry
    assert torch.allclose(symmetric_ce(expected_logits), expected_loss)
    assert pairwise_maps(img, aud).shape == (2, 2, 1, 2)


def _train_steps(objective_cfg: ObjectiveConfig, steps: int) -> list[float]:
    torch.manual_seed(0)
    model = create_model("test")
    objective = create_objective(objective_cfg, num_samples=AudioConfig().num_samples, seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    images = torch.randn(4, 3, 64, 64, generator=g)
    t = torch.arange(AudioConfig().num_samples) / 16000
    waves = torch.stack([0.3 * torch.sin(2 * torch.pi * f * t) for f in (220.0, 440.0, 880.0, 1760.0)])
    losses = []
    for step in range(steps):
        out = objective(model, Batch(images=images, waves=waves, step=step))
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        losses.append(float(out["loss"].detach()))
    return losses


def test_both_objectives_learn_a_fixed_batch():
    for cfg in (ObjectiveConfig(name="ezvsl"), ObjectiveConfig(name="sslsan")):
        losses = _train_steps(cfg, 12)
        assert losses[-1] < losses[0] * 0.8, (cfg.name, losses)


def test_sslsan_parts_switch_off_to_the_base_objective():
    torch.manual_seed(0)
    model = create_model("test").eval()
    n = AudioConfig().num_samples
    batch = Batch(images=torch.randn(3, 3, 64, 64), waves=torch.randn(3, n) * 0.1, step=0)
    off = SSLSaNConfig(negative_columns=False, flatness_weight=0.0, level_weight=0.0)
    with torch.no_grad():
        base = create_objective(ObjectiveConfig(name="ezvsl"), n, 0)(model, batch)["loss"]
        ablated = create_objective(ObjectiveConfig(name="sslsan", sslsan=off), n, 0)(model, batch)
        full = create_objective(ObjectiveConfig(name="sslsan"), n, 0)(model, batch)
    assert torch.allclose(base, ablated["loss"], atol=1e-5)
    assert "flatness_loss" not in ablated and "flatness_loss" in full
    assert full["loss"] > base  # extra columns can only raise the cross-entropy; the hinge is >= 0


def test_group_norm_trunk_computes_the_same_in_training_and_inference():
    trunk = ResNetTrunk(BackboneConfig(widths=(8, 16), blocks=(1, 1), stem_width=8, norm="group"), in_channels=1)
    x = torch.randn(3, 1, 64, 64)
    x[0] = -1.3  # a constant, silence-like input among others
    trained = trunk.train()(x)
    assert torch.allclose(trained[0], trunk.eval()(x[:1])[0], atol=1e-5)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in trunk.modules())


def test_flatness_pushes_negative_maps_down_without_lifting_the_positive_peak():
    """The hinge's bar (the positive peak) gets no gradient unless ``lift_positive``: with BatchNorm in eval
    mode the positive clips then reach the loss through the contrastive term only."""
    torch.manual_seed(0)
    model = create_model("test").eval()
    n = AudioConfig().num_samples
    images = torch.randn(3, 3, 64, 64)

    def wave_gradient(flatness_weight: float, lift_positive: bool = False) -> torch.Tensor:
        waves = (torch.randn(3, n, generator=torch.Generator().manual_seed(1)) * 0.1).requires_grad_()
        cfg = SSLSaNConfig(
            negative_columns=False,
            flatness_weight=flatness_weight,
            margin=5.0,
            lift_positive=lift_positive,
            level_weight=0.0,
        )
        out = create_objective(ObjectiveConfig(name="sslsan", sslsan=cfg), n, 0)(model, Batch(images, waves, 0))
        assert flatness_weight == 0 or out["flatness_loss"] > 0  # margin 5: every hinge is active
        out["loss"].backward()
        return waves.grad

    base = wave_gradient(0.0)
    change = (wave_gradient(1.0) - base).abs().max() / base.abs().max()
    lifted = (wave_gradient(1.0, lift_positive=True) - base).abs().max() / base.abs().max()
    assert change < 1e-5 and lifted > 1e-2, (change, lifted)  # float rounding only, vs a real push
