"""How an official checkpoint is laid out (`CheckpointFormat`), and the layout shared by the LVS family.

A method declares the formats of its official checkpoints in its `vssl.models.method.Method` record;
`vssl.models.convert.FORMATS` collects them (with the formats of methods vssl evaluates but does not train) and
resolves each one's ``model_size`` into its ``architecture``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from vssl.audio import AudioConfig
from vssl.errors import VsslError
from vssl.models.localizer import ModelConfig

KeyShapes = tuple[tuple[str, tuple[int, ...]], ...]


@dataclass(frozen=True)
class CheckpointFormat:
    """How one method's official checkpoint is laid out, and which vssl architecture holds it."""

    name: str
    """Value of ``vssl convert --format``."""
    method: str
    """The method and where it was published."""
    state_key: str
    """Entry of the checkpoint dict that holds the model's state dict."""
    model_size: str
    """vssl registry size with the same network."""
    renamed: tuple[tuple[str, str], ...] = ()
    """(official key, vssl key) pairs of tensors that vssl stores under another name."""
    unused: KeyShapes = ()
    """(official key, shape) of tensors the official forward never reads: dropped when present (shape checked)."""
    unused_reason: str = ""
    """Why the ``unused`` tensors are never read (recorded in ``config.json``)."""
    audio: AudioConfig | None = None
    """Audio front end of the method's own test code; None: the registry size's (EZ-VSL's)."""
    audio_reason: str = ""
    """Where ``audio`` comes from (recorded in ``config.json``)."""
    architecture: ModelConfig | None = None
    """The network of ``model_size``: filled in when the format is registered (`vssl.models.convert.FORMATS`)."""

    def model_config(self) -> ModelConfig:
        """The registry size's config with this format's audio front end."""
        if self.architecture is None:
            raise VsslError(f"checkpoint format {self.name!r} is not registered (vssl.models.convert.FORMATS)")
        return self.architecture if self.audio is None else replace(self.architecture, audio=self.audio)


# LVS's ResNet (models/base_models.py; SSL-Align's models_lvs/ copy is identical, SSL-TIE's networks/ copy adds a
# dim_mapping built only for a dim_tgt its AVENet never passes) builds three stems and an ImageNet head in every
# trunk; forward(modal='vision') runs conv1, forward(modal='audio') runs conv1_a, and both stop after layer4, so the
# other stems and fc are never read (AVENet's Sigmoid and AdaptiveMaxPool hold no tensors).
LVS_UNUSED: KeyShapes = (
    ("imgnet.conv1_a.weight", (64, 1, 7, 7)),
    ("imgnet.conv1_flow.weight", (64, 6, 7, 7)),
    ("imgnet.fc.weight", (1000, 512)),
    ("imgnet.fc.bias", (1000,)),
    ("audnet.conv1.weight", (64, 3, 7, 7)),
    ("audnet.conv1_flow.weight", (64, 6, 7, 7)),
    ("audnet.fc.weight", (1000, 512)),
    ("audnet.fc.bias", (1000,)),
)
LVS_UNUSED_REASON = (
    "LVS's ResNet builds conv1 (RGB), conv1_a (1-channel) and conv1_flow (6-channel) stems and an ImageNet fc in "
    "both trunks; its forward runs conv1 in the image trunk, conv1_a in the audio trunk, and stops after layer4"
)
LVS_RENAMED = (("audnet.conv1_a.weight", "audnet.conv1.weight"),)
