"""The method registry: every table that derives from `METHODS` (objective names, model sizes, OGL rules, checkpoint
formats, the demo's models) says what the hand-written tables said before, and registering keeps them complete."""

from dataclasses import replace

import pytest
import torch

from vssl.demo import DemoConfig
from vssl.errors import ConfigError
from vssl.models.convert import FORMATS
from vssl.models.encoders import TRUNKS, BackboneConfig, ResNetTrunk, TrunkKind, create_trunk
from vssl.models.localizer import AVLocalizer, ModelConfig
from vssl.models.method import Method
from vssl.models.objectives import METHODS, OBJECTIVES, ObjectiveConfig
from vssl.models.objectives.ezvsl import EZVSL
from vssl.models.ogl import MIX_RULES, mix_ezvsl, mix_raw, mix_slavc
from vssl.models.registry import BASE_SIZES, MODEL_SIZES, register_method, register_model_size


def _slavc(cfg: ModelConfig, momentum: float) -> ModelConfig:
    """vssl's hand-written ``slavc_variant`` before methods were data."""
    return replace(cfg, name=f"slavc_{cfg.name}", heads=2, momentum=momentum)


def _lvs(cfg: ModelConfig) -> ModelConfig:
    """vssl's hand-written ``lvs_variant`` before methods were data."""
    image = replace(cfg.image_backbone, last_stride=1)
    audio = replace(cfg.audio_backbone, widths=(*cfg.audio_backbone.widths[:-1], image.widths[-1]))
    return replace(
        cfg, name=f"lvs_{cfg.name}", image_backbone=image, audio_backbone=audio, embed_dim=image.widths[-1], heads=0
    )


def test_derived_sizes_equal_the_hand_written_ones():
    assert list(MODEL_SIZES) == [
        "resnet18", "small", "test",
        "slavc_resnet18", "slavc_small", "slavc_test",
        "lvs_resnet18", "lvs_small", "lvs_test",
        "lvs_official_resnet18",
    ]  # fmt: skip
    for name, cfg in BASE_SIZES.items():
        assert MODEL_SIZES[f"slavc_{name}"] == _slavc(cfg, 0.999 if name == "resnet18" else 0.99)
        assert MODEL_SIZES[f"lvs_{name}"] == _lvs(cfg)
    official = _lvs(BASE_SIZES["resnet18"])
    official = replace(
        official, name="lvs_official_resnet18", audio_backbone=replace(official.audio_backbone, last_stride=1)
    )
    assert MODEL_SIZES["lvs_official_resnet18"] == official


def test_objectives_ogl_rules_formats_and_demo_models_derive_from_the_methods():
    assert set(OBJECTIVES) == {"ezvsl", "fnac", "slavc", "lvs", "sslsan"} | {f"sslsan+{m}" for m in METHODS}
    assert MIX_RULES == {
        "ezvsl": (mix_ezvsl, 0.4),
        "fnac": (mix_ezvsl, 0.4),
        "slavc": (mix_slavc, 0.9),
        "icassp25": (mix_raw, 0.4),
    }
    assert {name: fmt.model_size for name, fmt in FORMATS.items()} == {
        "ezvsl": "resnet18",
        "fnac": "resnet18",
        "slavc": "slavc_resnet18",
        "lvs": "lvs_official_resnet18",
        "sslalign": "lvs_official_resnet18",
        "ssltie": "lvs_official_resnet18",
    }
    sizes = {name: size for name, (_, size) in DemoConfig(compare=("slavc", "fnac", "lvs")).methods().items()}
    assert sizes == {
        "baseline": "small",
        "sslsan": "small",
        "slavc": "slavc_small",
        "sslsan+slavc": "slavc_small",
        "fnac": "small",
        "sslsan+fnac": "small",
        "lvs": "lvs_small",
        "sslsan+lvs": "lvs_small",
    }


def test_a_method_with_settings_has_its_section_in_objective_config():
    objective_cfg = ObjectiveConfig()
    for method in METHODS.values():
        if method.config is not None:
            assert isinstance(getattr(objective_cfg, method.name), method.config), method.name
        assert method.create(objective_cfg).name == method.name


def test_registering_keeps_the_size_table_complete():
    saved = [(table, dict(table)) for table in (METHODS, MODEL_SIZES, BASE_SIZES)]
    try:
        register_model_size(replace(BASE_SIZES["test"], name="wide", embed_dim=32))
        assert {"wide", "slavc_wide", "lvs_wide"} <= MODEL_SIZES.keys() and MODEL_SIZES["slavc_wide"].momentum == 0.99
        two_heads = Method("twoheads", lambda _: EZVSL(), architecture=lambda cfg: replace(cfg, heads=2))
        register_method(two_heads)
        assert {f"twoheads_{name}" for name in BASE_SIZES} <= MODEL_SIZES.keys()
        with pytest.raises(ConfigError, match="already registered"):  # all or nothing
            register_model_size(replace(BASE_SIZES["test"], name="twoheads_test"))
        assert "twoheads_twoheads_test" not in MODEL_SIZES
        with pytest.raises(ConfigError, match="taken or contains"):
            register_method(replace(two_heads, name="sslsan+x"))
    finally:
        for table, contents in saved:
            table.clear()
            table.update(contents)


def test_the_resnet_kind_builds_resnet_trunks_drawing_the_same_numbers():
    cfg = BackboneConfig(widths=(8, 16), blocks=(1, 1), stem_width=8)
    torch.manual_seed(0)
    ours, after_ours = create_trunk(cfg, in_channels=1), torch.rand(1)
    torch.manual_seed(0)
    reference, after_reference = ResNetTrunk(cfg, in_channels=1), torch.rand(1)
    assert type(ours) is ResNetTrunk and torch.equal(after_ours, after_reference)
    assert ours.state_dict().keys() == reference.state_dict().keys()
    assert all(
        torch.equal(a, b) for a, b in zip(ours.state_dict().values(), reference.state_dict().values(), strict=True)
    )


class _PatchTrunk(torch.nn.Module):
    """A registered kind of one's own: non-overlapping 8x8 patches, linearly embedded."""

    def __init__(self, width: int, in_channels: int):
        super().__init__()
        self.out_channels = width
        self.proj = torch.nn.Conv2d(in_channels, width, kernel_size=8, stride=8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


def test_a_trunk_kind_of_ones_own(monkeypatch):
    monkeypatch.setitem(TRUNKS, "patch", TrunkKind(lambda cfg, in_channels: _PatchTrunk(cfg.widths[-1], in_channels)))
    image = BackboneConfig(kind="patch", widths=(24,))
    assert image.out_channels == 24  # read off a trunk built on the meta device
    model = AVLocalizer(replace(BASE_SIZES["test"], image_backbone=image))
    assert isinstance(model.imgnet, _PatchTrunk) and model.img_proj.in_channels == 24
    assert model.localize(torch.randn(2, 3, 64, 64), torch.randn(2, 48000)).shape == (2, 8, 8)
