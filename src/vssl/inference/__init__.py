"""Inference: localize sound in images and videos, decide "no visible source" at the calibrated threshold.

Modules: `inputs` (paths, PIL, arrays, tensors -> frames and waveforms), `calibration` (thresholds stored with
a model), `localizer` (`Localizer`, `load_localizer`), `result` (`Localization`), `render` (overlays on the
absolute scale), `video` and `video_writer` (timelines and overlay MP4s), `hub` (``hf-hub:`` model names),
`uploads` (what the web app accepts: files checked by decoding, size and duration limits), `live` (decisions on a
live stream as they happen; its sources in `live_source`, its decoding thread in `live_reader`), `config` (the
configs of ``vssl localize`` and ``vssl serve``'s model: `LocalizeConfig`, `LocalizerConfig`).
Inference imports no training code.
"""

from vssl.inference.calibration import Calibration, Threshold, UncalibratedModelWarning, read_calibration
from vssl.inference.config import LocalizeConfig, LocalizerConfig
from vssl.inference.hub import load_model
from vssl.inference.inputs import noise_clip, silence_clip
from vssl.inference.live import LiveDecision, LiveStream, live_decisions
from vssl.inference.localizer import Localizer, load_localizer, localize, localize_files
from vssl.inference.render import COSINE_RANGE, render_overlay, write_overlay
from vssl.inference.result import MAP_SCALE, Localization, write_json

__all__ = [
    "COSINE_RANGE",
    "MAP_SCALE",
    "Calibration",
    "LiveDecision",
    "LiveStream",
    "Localization",
    "LocalizeConfig",
    "Localizer",
    "LocalizerConfig",
    "Threshold",
    "UncalibratedModelWarning",
    "live_decisions",
    "load_localizer",
    "load_model",
    "localize",
    "localize_files",
    "noise_clip",
    "read_calibration",
    "render_overlay",
    "silence_clip",
    "write_json",
    "write_overlay",
]
