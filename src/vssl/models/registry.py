"""Named model sizes: ``resnet18`` (the published architecture), ``small`` (demo), ``test``.

Each size also comes in the variants of the other published methods (SPEC §3):

* ``slavc_<size>``: two projection heads per modality and momentum encoders, SLAVC's key names; m = 0.999
  (published) for ``resnet18``, 0.99 for the CPU sizes, whose runs of a few hundred steps would leave
  0.999-momentum encoders (which draw the maps at inference) near their initialisation;
* ``lvs_<size>``: no projection heads and a stride-1 last image layer, so maps are twice as fine
  (14x14 from ResNet-18 at 224), as LVS and its descendants (SSL-Align, SSL-TIE);
* ``lvs_official_resnet18``: ``lvs_resnet18`` with the audio trunk's last layer at stride 1 too. The published
  LVS code builds both trunks from one ResNet class whose layer4 has stride 1; on a spectrogram that changes
  the max-pooled audio vector, so official LVS / SSL-Align checkpoints (``vssl convert``) need this size.
"""

from __future__ import annotations

from dataclasses import replace

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

SLAVC_MOMENTUM = 0.999  # SLAVC's published --m_img / --m_aud
SHORT_RUN_MOMENTUM = 0.99  # EMA horizon of ~100 steps, for the sizes trained a few hundred steps on a CPU

_BASE_SIZES: dict[str, ModelConfig] = {
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


def slavc_variant(cfg: ModelConfig, momentum: float = SLAVC_MOMENTUM) -> ModelConfig:
    """Two heads per modality and momentum encoders."""
    return replace(cfg, name=f"slavc_{cfg.name}", heads=2, momentum=momentum)


def lvs_variant(cfg: ModelConfig) -> ModelConfig:
    """No projection heads, stride-1 last image layer; the audio trunk's last layer is made as wide as the image's."""
    image = replace(cfg.image_backbone, last_stride=1)
    width = image.out_channels
    audio = replace(cfg.audio_backbone, widths=(*cfg.audio_backbone.widths[:-1], width))
    return replace(cfg, name=f"lvs_{cfg.name}", image_backbone=image, audio_backbone=audio, embed_dim=width, heads=0)


def lvs_official_variant(cfg: ModelConfig) -> ModelConfig:
    """`lvs_variant` whose audio trunk's last layer also has stride 1, as in LVS's official ``base_models.py``."""
    lvs = lvs_variant(cfg)
    audio = replace(lvs.audio_backbone, last_stride=1)
    return replace(lvs, name=f"lvs_official_{cfg.name}", audio_backbone=audio)


MODEL_SIZES: dict[str, ModelConfig] = {
    **_BASE_SIZES,
    **{
        f"slavc_{name}": slavc_variant(cfg, SLAVC_MOMENTUM if name == "resnet18" else SHORT_RUN_MOMENTUM)
        for name, cfg in _BASE_SIZES.items()
    },
    **{f"lvs_{name}": lvs_variant(cfg) for name, cfg in _BASE_SIZES.items()},
    "lvs_official_resnet18": lvs_official_variant(_BASE_SIZES["resnet18"]),
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
