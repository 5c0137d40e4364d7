"""Any timm model as a trunk: ``timm.create_model(name, features_only=True)``, one feature level out.

timm is an optional extra (``pip install 'vssl[timm]'``); it is imported only when such a trunk is built or its
width asked for. Models are always created with ``pretrained=False``: vssl never downloads weights on its own
(a trunk's starting weights come from ``image_init``, a weights file of this trunk's state dict).
"""

from __future__ import annotations

from types import ModuleType

import torch
from torch import nn

from vssl.errors import ConfigError


def import_timm() -> ModuleType:
    """The timm module, or a `ConfigError` naming the extra that installs it."""
    try:
        import timm
    except ImportError as exc:
        raise ConfigError(f"kind='timm' needs the timm package: pip install 'vssl[timm]' ({exc})") from exc
    return timm


def _features(model: str, in_channels: int, out_index: int, last_stride: int) -> nn.Module:
    """timm's ``features_only`` network returning the single level ``out_index`` (negative: from the end)."""
    timm = import_timm()
    kwargs = {"pretrained": False, "features_only": True, "out_indices": (out_index,), "in_chans": in_channels}
    try:
        if last_stride == 1:  # as ResNetTrunk's last_stride=1: the level's output stride halved (by dilation)
            with torch.device("meta"):
                reduction = timm.create_model(model, **kwargs).feature_info.reduction()[-1]
            kwargs["output_stride"] = reduction // 2
        return timm.create_model(model, **kwargs)
    except RuntimeError as exc:  # timm's "Unknown model (...)"
        raise ConfigError(f"timm trunk {model!r}: {exc}") from exc
    except (TypeError, ValueError, AssertionError, IndexError) as exc:  # an option the model does not take
        detail = f"{type(exc).__name__}: {exc}"
        raise ConfigError(
            f"timm trunk {model!r} (out_index={out_index}, last_stride={last_stride}) cannot be built: {detail}"
        ) from exc


class TimmTrunk(nn.Module):
    """``[B, in_channels, H, W] -> [B, out_channels, H/r, W/r]``: level ``out_index`` of a timm model's features.

    ``r`` is that level's reduction (32 for the last level of most CNNs; half of it with ``last_stride=1``).
    State dict keys are ``body.`` + timm's ``features_only`` keys.
    """

    def __init__(self, model: str, in_channels: int = 3, out_index: int = -1, last_stride: int = 2):
        super().__init__()
        if last_stride not in (1, 2):
            raise ConfigError(f"timm trunk {model!r}: last_stride must be 1 or 2, got {last_stride}")
        self.body = _features(model, in_channels, out_index, last_stride)
        self.out_channels: int = self.body.feature_info.channels()[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)[-1]
