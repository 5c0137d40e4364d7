"""A training method as data: its objective, the network it needs, its OGL rule and its official checkpoints.

Each method module (``vssl/models/objectives/<name>.py``) ends with one `Method` record; the registry
(`vssl.models.objectives.METHODS`) lists them, and everything else derives from it: the objective names
(``objective.name=<name>`` and ``sslsan+<name>``), the model sizes ``<name>_<size>`` of a method with its own
architecture (`vssl.models.registry`), the demo's model for a method, the OGL rules (`vssl.models.ogl.MIX_RULES`)
and the official checkpoint formats (`vssl.models.convert.FORMATS`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from vssl.models.checkpoint_formats import CheckpointFormat
from vssl.models.localizer import ModelConfig
from vssl.models.ogl_mix import MixRule

if TYPE_CHECKING:  # the method modules import this one from inside the objectives package
    from vssl.models.objectives.base import BaseObjective


@dataclass(frozen=True)
class Method:
    """One training method, e.g. ``Method("slavc", SLAVC, SLAVCConfig, slavc_architecture, (mix_slavc, 0.9))``."""

    name: str
    """``objective.name`` (also under SSL-SaN: ``sslsan+<name>``), and the prefix of its own model sizes."""
    objective: Callable[[Any], BaseObjective]
    """Builds the objective from its settings: an instance of ``config`` (None when ``config`` is None)."""
    config: type | None = None
    """The dataclass of its settings, defaults = published values. `ObjectiveConfig`'s field named ``name``, when
    it has one, holds them (``objective.<name>.<key>=...``); else the defaults are used."""
    architecture: Callable[[ModelConfig], ModelConfig] | None = None
    """The network it trains, from a base size's (SLAVC: two heads and momentum encoders; LVS: no heads, finer
    maps). None: the base network as is (EZ-VSL, FNAC). Each base size ``S`` then has a size ``<name>_S``."""
    ogl: tuple[MixRule, float] | None = None
    """Its published object-guided localization rule and alpha (`vssl.models.ogl_mix`); None: none published."""
    formats: tuple[CheckpointFormat, ...] = ()
    """How its official checkpoints are laid out (``vssl convert --format <format name>``)."""

    def create(self, objective_cfg: Any) -> BaseObjective:
        """The objective, with its settings from ``objective_cfg`` (an `ObjectiveConfig`)."""
        if self.config is None:
            return self.objective(None)
        settings = getattr(objective_cfg, self.name, None)
        return self.objective(self.config() if settings is None else settings)

    def model_size(self, size: str) -> str:
        """The model size this method trains in place of base size ``size``: ``<name>_<size>``, or ``size`` when
        the method needs no architecture of its own."""
        return size if self.architecture is None else f"{self.name}_{size}"

    def model_config(self, base: ModelConfig) -> ModelConfig:
        """The network of `model_size` (``base.name``): ``architecture(base)``, named ``<name>_<base.name>``."""
        if self.architecture is None:
            return base
        return replace(self.architecture(base), name=self.model_size(base.name))
