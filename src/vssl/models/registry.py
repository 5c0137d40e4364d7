"""Named model sizes: ``resnet18`` (the published architecture), ``small`` (demo), ``test``."""

from __future__ import annotations

from vssl.errors import ConfigError
from vssl.models.encoders import BackboneConfig
from vssl.models.localizer import AVLocalizer, ModelConfig
from vssl.vision import ImageConfig

_TINY_AUDIO = BackboneConfig(widths=(16, 32, 64, 128), blocks=(1, 1, 1, 1), stem_width=16)
# Three stages, stride 16: 7x7 maps from 112x112 frames (as ResNet-18 at 224), and a receptive field near
# the size of an object. Trained from scratch, a deeper trunk sees the whole frame from every location and
# learns to match clips by context instead of localizing.
_TINY_IMAGE = BackboneConfig(widths=(16, 32, 64), blocks=(1, 1, 1), stem_width=16)
_TEST = BackboneConfig(widths=(8, 8, 16, 16), blocks=(1, 1, 1, 1), stem_width=8)

MODEL_SIZES: dict[str, ModelConfig] = {
    # The EZ-VSL / SLAVC / FNAC architecture: two ResNet-18, 512-d embeddings, 224x224 frames, 7x7 maps.
    "resnet18": ModelConfig(name="resnet18"),
    # The demo's model: same design, narrow and shallow, 112x112 frames (7x7 maps), trains on a CPU in minutes.
    "small": ModelConfig(
        name="small", image_backbone=_TINY_IMAGE, audio_backbone=_TINY_AUDIO, embed_dim=128, image=ImageConfig(size=112)
    ),
    # For unit tests only: seconds per step.
    "test": ModelConfig(
        name="test", image_backbone=_TEST, audio_backbone=_TEST, embed_dim=16, image=ImageConfig(size=64)
    ),
}


def model_config(name: str) -> ModelConfig:
    try:
        return MODEL_SIZES[name]
    except KeyError:
        raise ConfigError(f"unknown model size {name!r}; known: {sorted(MODEL_SIZES)}") from None


def create_model(name_or_cfg: str | ModelConfig) -> AVLocalizer:
    """A freshly initialised localizer of a named size or explicit config."""
    cfg = model_config(name_or_cfg) if isinstance(name_or_cfg, str) else name_or_cfg
    return AVLocalizer(cfg)
