"""Named model sizes: ``resnet18`` (the published architecture), ``small`` (demo), ``test``.

Each size also comes in the architecture of every method that needs its own (`Method.architecture`), named
``<method>_<size>`` (SPEC §3):

* ``slavc_<size>``: two projection heads per modality and momentum encoders, SLAVC's key names; m = 0.999
  (published) for ``resnet18``, 0.99 for the CPU sizes (`vssl.models.objectives.slavc.slavc_architecture`);
* ``lvs_<size>``: no projection heads and a stride-1 last image layer, so maps are twice as fine
  (14x14 from ResNet-18 at 224), as LVS and its descendants (SSL-Align, SSL-TIE);
* ``lvs_official_resnet18``: ``lvs_resnet18`` with the audio trunk's last layer at stride 1 too, the network of
  official LVS / SSL-Align / SSL-TIE checkpoints (``vssl convert``).

`register_model_size` and `register_method` add sizes and methods at run time (a plugin, a test); each keeps
the table complete (a new size in every method's architecture, a new method's architecture of every size).
"""

from __future__ import annotations

from dataclasses import replace

from vssl.errors import ConfigError
from vssl.models.encoders import BackboneConfig
from vssl.models.localizer import AVLocalizer, ModelConfig
from vssl.models.method import Method
from vssl.models.objectives import METHODS
from vssl.models.objectives.lvs import lvs_official_architecture
from vssl.models.objectives.slavc import SHORT_RUN_MOMENTUM, SLAVC_MOMENTUM  # noqa: F401  (re-exported)
from vssl.vision import ImageConfig

_TINY_AUDIO = BackboneConfig(widths=(16, 32, 64, 128), blocks=(1, 1, 1, 1), stem_width=16)
# Three stages, stride 16: 7x7 maps from 112x112 frames (as ResNet-18 at 224), and a receptive field near
# the size of an object. Trained from scratch, a deeper trunk sees the whole frame from every location and
# learns to match clips by context instead of localizing.
_TINY_IMAGE = BackboneConfig(widths=(16, 32, 64), blocks=(1, 1, 1), stem_width=16)
_TEST = BackboneConfig(widths=(8, 8, 16, 16), blocks=(1, 1, 1, 1), stem_width=8)

BASE_SIZES: dict[str, ModelConfig] = {
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
"""The sizes every method's architecture is derived from."""

MODEL_SIZES: dict[str, ModelConfig] = {
    **BASE_SIZES,
    **{
        method.model_size(name): method.model_config(cfg)
        for method in METHODS.values()
        if method.architecture is not None
        for name, cfg in BASE_SIZES.items()
    },
    "lvs_official_resnet18": replace(lvs_official_architecture(BASE_SIZES["resnet18"]), name="lvs_official_resnet18"),
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


def method_model_size(method: str, size: str) -> str:
    """The model size ``method`` trains in place of base size ``size`` (``slavc``, ``small`` -> ``slavc_small``;
    ``fnac``, ``small`` -> ``small``)."""
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    return METHODS[method].model_size(size)


def register_model_size(cfg: ModelConfig) -> ModelConfig:
    """Add ``cfg`` as the size ``cfg.name``, and its variant ``<method>_<cfg.name>`` for every method with an
    architecture of its own. Returns ``cfg``."""
    sizes = {cfg.name: cfg}
    for method in METHODS.values():
        sizes |= _method_sizes(method, {cfg.name: cfg})
    _add(sizes)
    BASE_SIZES[cfg.name] = cfg
    return cfg


def register_method(method: Method) -> Method:
    """Add ``method`` to `METHODS` (``objective.name=<name>`` and ``sslsan+<name>``, its OGL rule, its checkpoint
    formats) and, when it has an architecture of its own, its size ``<name>_<size>`` of every base size."""
    if method.name in METHODS or "+" in method.name:
        raise ConfigError(f"method name {method.name!r} is taken or contains '+'; registered: {', '.join(METHODS)}")
    _add(_method_sizes(method, BASE_SIZES))
    METHODS[method.name] = method
    return method


def _method_sizes(method: Method, bases: dict[str, ModelConfig]) -> dict[str, ModelConfig]:
    if method.architecture is None:
        return {}
    return {method.model_size(name): method.model_config(cfg) for name, cfg in bases.items()}


def _add(sizes: dict[str, ModelConfig]) -> None:
    """Add ``sizes`` to `MODEL_SIZES`, all or none."""
    if taken := sorted(sizes.keys() & MODEL_SIZES.keys()):
        raise ConfigError(f"model size(s) {', '.join(taken)} already registered")
    MODEL_SIZES.update(sizes)
