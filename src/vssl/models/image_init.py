"""Where a model's image trunk starts: from scratch, from torchvision's ImageNet ResNet-18, or from a weights file.

Every published EZ-VSL-family model (EZ-VSL, SLAVC, FNAC) starts its image encoder from torchvision's ImageNet
ResNet-18 (SPEC §3): object-aware features from the first step. ``image_init`` (a `TrainConfig` key) says which:

* ``none``: the architecture's own random initialisation;
* ``imagenet``: ``torchvision.models.ResNet18_Weights.IMAGENET1K_V1`` through torchvision's weights API, which
  downloads once into torch's hub cache (``$TORCH_HOME``, by default ``~/.cache/torch``) and reads it from there
  afterwards; only for trunks of ResNet-18's shape (``resnet18`` sizes);
* a path: a ``.safetensors`` (or weights-only ``.pt``/``.pth``) file holding the trunk's state dict, torchvision
  key names (``conv1.weight``, ``layer1.0.bn1.running_mean``, ...), e.g. the demo's pretrained trunk.

The classification head of a torchvision checkpoint (``fc.*``) is dropped; any other missing, unexpected or
misshapen key is an error that lists them. Momentum copies (SLAVC) start from the same weights.

The audio trunk's start (``audio_init``) is ``none`` or a weights file of the audio trunk, loaded the same way
(`init_audio_trunk`; the demo's pretrained one comes from `vssl.train.pretrain_audio`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from vssl.errors import ConfigError
from vssl.models.localizer import MOMENTUM_PREFIX, AVLocalizer
from vssl.models.torch_files import load_torch_file

IMAGE_INITS = ("none", "imagenet")
HEAD_PREFIX = "fc."


def imagenet_state_dict() -> dict[str, torch.Tensor]:
    """torchvision's ImageNet ResNet-18 weights (downloaded once into torch's hub cache, then read from it)."""
    from torchvision.models import ResNet18_Weights

    return ResNet18_Weights.IMAGENET1K_V1.get_state_dict(progress=False, map_location="cpu", weights_only=True)


def read_trunk_file(path: Path, key: str = "image_init") -> dict[str, torch.Tensor]:
    """The state dict in a safetensors or weights-only torch file (``key``: the config key that named it)."""
    if not path.is_file():
        raise ConfigError(f"{key}: {path} is not a file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(path)
        except Exception as exc:  # safetensors raises its own error (or OSError) on damaged bytes
            raise ConfigError(f"{key}: {path} is not a readable safetensors file ({exc})") from exc
    state = load_torch_file(path)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{key}: {path} does not hold a state dict (names -> tensors)")
    return state


def image_trunk_state(image_init: str) -> dict[str, torch.Tensor] | None:
    """The weights ``image_init`` names (None for ``none``)."""
    if image_init == "none":
        return None
    if image_init == "imagenet":
        return imagenet_state_dict()
    return read_trunk_file(Path(image_init))


def init_image_trunk(model: AVLocalizer, image_init: str) -> None:
    """Load the image trunk's starting weights named by ``image_init`` into ``model`` (and its momentum copy)."""
    state = image_trunk_state(image_init)
    if state is not None:
        trunk_state = {k: v for k, v in state.items() if not k.startswith(HEAD_PREFIX)}
        _load_trunk(model, "imgnet", trunk_state, f"image_init={image_init}")


def init_audio_trunk(model: AVLocalizer, audio_init: str) -> None:
    """Load the audio trunk's starting weights from the file ``audio_init`` (``none``: keep the initialisation)."""
    if audio_init != "none":
        _load_trunk(model, "audnet", read_trunk_file(Path(audio_init), "audio_init"), f"audio_init={audio_init}")


def _load_trunk(model: AVLocalizer, trunk: str, state: dict[str, torch.Tensor], key: str) -> None:
    """``state`` into ``model``'s trunk ``trunk`` (and its momentum copy); every key and shape must match, else an
    error that starts with ``key`` (the config key and value that named the weights)."""
    own = getattr(model, trunk).state_dict()
    missing, unexpected = sorted(own.keys() - state.keys()), sorted(state.keys() - own.keys())
    misshapen = sorted(k for k in own.keys() & state.keys() if own[k].shape != state[k].shape)
    if missing or unexpected or misshapen:
        problems = [
            f"{label}: {keys[:6]}{' ...' if len(keys) > 6 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", misshapen))
            if keys
        ]
        kind = "image" if trunk == "imgnet" else "audio"
        raise ConfigError(f"{key}: does not fit the {kind} trunk of model {model.cfg.name!r} ({'; '.join(problems)})")
    for prefix in ("", MOMENTUM_PREFIX) if model.cfg.momentum is not None else ("",):
        getattr(model, prefix + trunk).load_state_dict(state)
