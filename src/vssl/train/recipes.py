"""The published training recipes, as data: each method's hyper-parameters with where they come from.

One `Recipe` per method (SPEC §3, "Published recipes", read from each method's released training scripts and
code); `preset_values` reads the same fields out of a `TrainConfig` (through its model size and objective), and
`differences` compares the two. ``tests/test_recipes.py`` checks every shipped ``configs/vggsound144k_*.yaml``
against its method's recipe: a preset may differ from the paper only where the recipe says so (``ours``, with
the reason), so a preset can never drift silently from what it claims to reproduce.

SSL-SaN publishes no code; its recipe is ours: the EZ-VSL preset with ``objective.name=sslsan`` (EZ-VSL's
recipe, plus the negatives of `vssl.models.objectives.sslsan`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vssl.models.registry import model_config

FIELDS = (
    "image_init",
    "batch_size",
    "epochs",
    "lr",
    "weight_decay",
    "tau",
    "image_dropout",
    "momentum",
    "warmup_epochs",
    "audio_seconds",
    "spectrogram",
    "image_size",
)
"""The compared hyper-parameters (`Recipe` fields of the same names)."""
UNPUBLISHED = "unpublished"
"""A recipe value no publication or released code gives (the preset's choice is then ``ours``, with a reason)."""


@dataclass(frozen=True)
class Recipe:
    """One method's published training settings on VGGSound-144k; `UNPUBLISHED` where none is given."""

    method: str
    """The vssl objective that implements the method (``objective.name``)."""
    source: str
    """Where the values come from."""
    image_init: str
    """Image trunk's start: ``imagenet`` (torchvision's ResNet-18 IMAGENET1K_V1) or ``none``."""
    batch_size: int | str
    epochs: int | str
    lr: float | str
    """Adam's learning rate."""
    weight_decay: float | str
    tau: float
    """Temperature of the training logits (cosine / tau)."""
    image_dropout: float
    """Dropout on the image trunk's features during training."""
    momentum: float | None
    """EMA coefficient of momentum encoders (None: none)."""
    warmup_epochs: int
    """Epochs of the base loss alone before the method's extra terms join (FNAC)."""
    audio_seconds: float
    spectrogram: str
    """Network input: ``log_psd FxT`` (scipy-style log power spectral density) or ``mel_db FxT``."""
    image_size: int
    preset: str | None = None
    """The shipped preset that reproduces it (``configs/NAME``), if any."""
    ours: dict[str, str] = field(default_factory=dict)
    """Fields where the preset deliberately differs from (or fills in for) the publication, with the reason."""


EZVSL_SOURCE = "stoneMo/EZ-VSL scripts/train_vggsound144k.sh and model.py; SPEC §3"
RECIPES: dict[str, Recipe] = {
    "ezvsl": Recipe(
        method="ezvsl",
        source=EZVSL_SOURCE,
        image_init="imagenet",
        batch_size=128,
        epochs=20,
        lr=1e-4,
        weight_decay=0.0,
        tau=0.03,
        image_dropout=0.0,
        momentum=None,
        warmup_epochs=0,
        audio_seconds=3.0,
        spectrogram="log_psd 257x200",
        image_size=224,
        preset="vggsound144k_ezvsl.yaml",
    ),
    "slavc": Recipe(
        method="slavc",
        source="stoneMo/SLAVC scripts/train_vggsound144k.sh (--m_img/--m_aud 0.999, --dropout_img 0.9); SPEC §3",
        image_init="imagenet",
        batch_size=128,
        epochs=20,
        lr=1e-4,
        weight_decay=0.0,
        tau=0.03,
        image_dropout=0.9,
        momentum=0.999,
        warmup_epochs=0,
        audio_seconds=3.0,  # the script's audio_dur 5 is ignored by its loader: 3 s central windows
        spectrogram="log_psd 257x200",
        image_size=224,
        preset="vggsound144k_slavc.yaml",
    ),
    "fnac": Recipe(
        method="fnac",
        source="OpenNLPLab/FNAC_AVL train_vggss.sh (warm-up 5 epochs; the code's default is 3); SPEC §3",
        image_init="imagenet",
        batch_size=256,
        epochs=30,
        lr=1e-4,
        weight_decay=1e-4,
        tau=0.03,
        image_dropout=0.9,
        momentum=None,
        warmup_epochs=5,
        audio_seconds=3.0,
        spectrogram="log_psd 257x200",
        image_size=224,
        preset="vggsound144k_fnac.yaml",
    ),
    "lvs": Recipe(
        method="lvs",
        source="hche11/Localizing-Visual-Sounds-the-Hard-Way (model.py: ImageNet loading commented out; no "
        "training script released) and the CVPR 2021 paper (Adam, lr 1e-4); SPEC §3",
        image_init="none",
        batch_size=UNPUBLISHED,
        epochs=UNPUBLISHED,
        lr=1e-4,
        weight_decay=UNPUBLISHED,
        tau=0.07,
        image_dropout=0.0,
        momentum=None,
        warmup_epochs=0,
        audio_seconds=10.0,
        spectrogram="log_psd 257x671",
        image_size=224,
        preset="vggsound144k_lvs.yaml",
        ours={
            "batch_size": "not published: 128, the EZ-VSL family's budget",
            "epochs": "not published: 20, the EZ-VSL family's budget",
            "weight_decay": "not published: 0, as EZ-VSL",
            "audio_seconds": "3 s central windows (the EZ-VSL front end every vssl model shares), not LVS's 10 s",
            "spectrogram": "257x200 from the 3 s window, not 257x671",
        },
    ),
    "ssltie": Recipe(
        method="ssltie",
        source="jinxiang-liu/SSL-TIE (pretrained=False; batch 32, 100 epochs; Adam 1e-4, wd 1e-4); SPEC §3",
        image_init="none",
        batch_size=32,
        epochs=100,
        lr=1e-4,
        weight_decay=1e-4,
        tau=0.07,
        image_dropout=0.0,
        momentum=None,
        warmup_epochs=0,
        audio_seconds=10.0,
        spectrogram="mel_db 257 bands",
        image_size=224,
        # vssl evaluates converted SSL-TIE checkpoints; it does not train the method (its equivariance loss and
        # MoCo-v2 augmentations are not implemented), hence no preset.
    ),
}
"""Every method's published recipe, by objective name."""


def preset_values(cfg: Any) -> dict[str, Any]:
    """The `FIELDS` of a `TrainConfig` as a recipe states them (through its model size and objective)."""
    model = model_config(cfg.model)
    name = cfg.objective.name
    base = name.split("+", 1)[1] if "+" in name else "ezvsl" if name == "sslsan" else name
    method_cfg = getattr(cfg.objective, base, None)
    audio = model.audio
    return {
        "image_init": cfg.image_init,
        "batch_size": cfg.batch_size,
        "epochs": cfg.epochs,
        "lr": cfg.lr,
        "weight_decay": cfg.weight_decay,
        "tau": cfg.objective.lvs.logit_temperature if base == "lvs" else model.tau,
        "image_dropout": getattr(method_cfg, "image_dropout", 0.0),
        "momentum": model.momentum,
        "warmup_epochs": getattr(method_cfg, "warmup_epochs", 0),
        "audio_seconds": audio.duration,
        "spectrogram": f"{audio.features} {audio.num_freqs}x{audio.num_frames}",
        "image_size": model.image.size,
    }


def differences(recipe: Recipe, cfg: Any) -> list[str]:
    """Where ``cfg`` departs from ``recipe`` without the recipe saying so (empty: it reproduces the recipe)."""
    values = preset_values(cfg)
    out = []
    for name in FIELDS:
        published = getattr(recipe, name)
        if name in recipe.ours:
            continue
        if published == UNPUBLISHED:
            out.append(f"{name}: not published, and the recipe gives no reason for the preset's {values[name]!r}")
        elif values[name] != published:
            out.append(f"{name}: preset {values[name]!r}, published {published!r} ({recipe.source})")
    return out
