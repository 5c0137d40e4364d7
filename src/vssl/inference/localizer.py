"""`Localizer`: a model with its calibrated threshold, localizing sound in frames from files, arrays or tensors.

    import vssl
    loc = vssl.load_localizer("vssl-demo/models/sslsan")           # or "hf-hub:org/name"
    r = loc.localize("frame.jpg", "clip.wav")                        # one Localization
    r.abstain, r.score, r.threshold, r.box, r.peak, r.cosine_map    # decision, evidence, where
    rs = loc.localize("frame.jpg", [wave_a, wave_b, "clip.wav"])     # one frame, three clips: a list

Every distinct frame is encoded once and every clip once, then each (frame, clip) pair costs one
dot product per map location: one frame with many clips (the audio windows of a video, silence and
noise checks) pays the image encoder once. Inputs go through the model's own preprocessing config.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from PIL import Image

from vssl.audio import center_window
from vssl.errors import VsslError
from vssl.inference.calibration import (
    DEFAULT_RULE,
    GIVEN_RULE,
    UNIT_SCALE,
    Threshold,
    UncalibratedModelWarning,
    read_calibration,
)
from vssl.inference.hub import resolve_model_path
from vssl.inference.inputs import AudioInput, ImageInput, as_frames, as_waves
from vssl.inference.result import Localization, make_results
from vssl.maps import paired_maps
from vssl.models.localizer import AVLocalizer, ModelConfig
from vssl.models.release import load_model as load_release
from vssl.vision import eval_transform


class Localizer:
    """Localize sound with ``model``; decide "no visible source" at ``threshold`` (None: no decision)."""

    def __init__(
        self,
        model: AVLocalizer,
        threshold: Threshold | None = None,
        device: str | torch.device | None = None,
        batch_size: int = 16,
    ):
        self.model = model if device is None else model.to(device)
        self.threshold = threshold
        self.batch_size = batch_size
        self._transform = eval_transform(model.cfg.image)

    @property
    def cfg(self) -> ModelConfig:
        return self.model.cfg

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @contextmanager
    def _inference(self) -> Iterator[None]:
        """Eval mode (BatchNorm on running statistics) and no gradients; the model's mode is restored."""
        was_training = self.model.training
        try:
            self.model.eval()
            with torch.no_grad():
                yield
        finally:
            self.model.train(was_training)

    def image_features(self, frames: Sequence[Image.Image]) -> torch.Tensor:
        """RGB frames -> unit image features ``[N, D, h, w]`` on the model's device."""
        out = []
        with self._inference():
            for start in range(0, len(frames), self.batch_size):
                batch = torch.stack([self._transform(f) for f in frames[start : start + self.batch_size]])
                out.append(self.model.encode_image(batch.to(self.device)))  # [b, 3, S, S] -> [b, D, h, w]
        return torch.cat(out)

    def audio_embeddings(self, waves: Sequence[torch.Tensor]) -> torch.Tensor:
        """Mono waveforms ``[T]`` at the model's rate -> unit embeddings ``[M, D]`` of their central windows
        (shorter clips are tiled, as in training)."""
        out = []
        with self._inference():
            for start in range(0, len(waves), self.batch_size):
                chunk = waves[start : start + self.batch_size]
                windows = torch.stack([center_window(w.float(), self.cfg.audio) for w in chunk])  # [b, 48000]
                out.append(self.model.encode_waveform(windows.to(self.device)))
        return torch.cat(out)

    def decide(
        self, features: torch.Tensor, embeddings: torch.Tensor, frames: Sequence[Image.Image | None]
    ) -> list[Localization]:
        """Paired features ``[N, D, h, w]`` and embeddings ``[N, D]`` -> N results (``frames[i]`` for coordinates)."""
        cosine = paired_maps(features, embeddings).float().cpu()  # [N, h, w]
        return make_results(cosine, list(frames), self.threshold)

    def localize_pairs(
        self, frames: Sequence[Image.Image], waves: Sequence[torch.Tensor], frame_of: Sequence[int]
    ) -> list[Localization]:
        """Clip ``j`` with frame ``frame_of[j]``: each frame and each clip is encoded once."""
        features = self.image_features(frames)
        embeddings = self.audio_embeddings(waves)
        index = torch.as_tensor(list(frame_of), device=features.device)
        return self.decide(features[index], embeddings, [frames[i] for i in frame_of])

    def localize(self, image: ImageInput, audio: AudioInput) -> Localization | list[Localization]:
        """Localize ``audio`` in ``image`` (formats: `vssl.inference.inputs`).

        One image and one clip give one `Localization`; a batch on either side gives a list: N images with
        N clips pair up, and a single image (or clip) is paired with every clip (or image) of the other side.
        """
        frames, frames_batched = as_frames(image)
        waves, waves_batched = as_waves(audio, self.cfg.audio)
        n = max(len(frames), len(waves))
        if len(frames) not in (1, n) or len(waves) not in (1, n):
            raise VsslError(f"cannot pair {len(frames)} images with {len(waves)} audio clips")
        if len(frames) == 1:
            results = self.localize_pairs(frames, waves, [0] * n)
        else:
            features = self.image_features(frames)
            embeddings = self.audio_embeddings(waves).expand(n, -1)
            results = self.decide(features, embeddings, frames)
        return results if frames_batched or waves_batched else results[0]


def load_localizer(
    name_or_path: str | Path,
    device: str = "cpu",
    rule: str = DEFAULT_RULE,
    threshold: float | None = None,
    threshold_scale: str = UNIT_SCALE,
    batch_size: int = 16,
) -> Localizer:
    """A `Localizer` from a model folder, ``hf-hub:org/name`` or a size name.

    The threshold is the folder's calibrated ``rule`` (``max``, ``max10``, ``maxq3``), unless ``threshold`` is
    given (on ``threshold_scale``). A model without a calibration localizes but does not decide: its results
    have ``abstain``, ``box`` and ``mask`` None, and an `UncalibratedModelWarning` says so.
    """
    path = resolve_model_path(name_or_path)
    model = load_release(path, device=device)
    if threshold is not None:
        chosen: Threshold | None = Threshold(float(threshold), threshold_scale, GIVEN_RULE)
    else:
        calibration = read_calibration(path) if Path(path).is_dir() else None
        chosen = calibration.threshold(rule) if calibration else None
        if chosen is None:
            warnings.warn(
                f"{name_or_path}: the model has no calibration (run vssl eval --write-calibration); results "
                "carry no abstain decision, box or mask",
                UncalibratedModelWarning,
                stacklevel=2,
            )
    return Localizer(model, chosen, batch_size=batch_size)


def localize(
    model: AVLocalizer, frame: ImageInput, wave: AudioInput, threshold: Threshold | None = None
) -> Localization:
    """One frame (PIL image, array, tensor or path) and one clip (waveform ``[T]`` at the model's rate or path)."""
    result = Localizer(model, threshold).localize(frame, wave)
    if isinstance(result, list):
        raise VsslError("localize() takes one frame and one clip; use Localizer.localize for batches")
    return result


def localize_files(model: AVLocalizer, image_path: str | Path, audio_path: str | Path) -> Localization:
    """Localize the sound of an audio (or video) file in an image file; raises `MediaError` for bad files."""
    return localize(model, Path(image_path), Path(audio_path))
