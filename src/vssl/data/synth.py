"""The built-in synthetic audio-visual benchmark "synth".

Every frame shows ONE sounding object and up to ``max_distractors`` equally salient SILENT objects of
other classes on a cluttered background; the audio is the sounding class's signature plus faint
ambience. A model that only learned "what is salient" lights up distractors (and does so for silence
and noise too); a model that listens picks the sounding object.

Each class pairs a look (shape, hue, texture) with a sound (see ``SYNTH_CLASSES``; the sounds are made in
:mod:`vssl.data.synth_sounds`). A sample is fully determined by ``(seed, split, index)``: its generator
is seeded with ``SeedSequence([seed, split_id, index])``, so any sample can be regenerated alone and
split sizes never change other samples.

On-disk layout written by :func:`generate` (``{id}`` is e.g. ``train_000123``)::

    root/frames/{id}.jpg        RGB, image_size x image_size, JPEG quality 92
    root/audio/{id}.wav         mono, sample_rate Hz, PCM_16, duration s
    root/masks/{id}.png         L, 255 on the visible pixels of the sounding object, 0 elsewhere
    root/annotations.json       written last and atomically:
        {"version": 1, "config": {SynthConfig fields}, "classes": [name, ...],
         "items": [{"id", "split": "train" | "calibration" | "test", "label": class name,
                    "box": [xmin, ymin, xmax, ymax] (pixels, max exclusive: the tight box of the mask),
                    "objects": [[xmin, ymin, xmax, ymax], ...] (every object, sounding first, then the
                    distractors in the order of classes_in_frame; a distractor's box is its whole shape),
                    "width", "height", "classes_in_frame": [sounding class, distractor classes...],
                    "inaudible": the source cannot be heard (train split only),
                    "track": "audible" | "quiet" | "muted" | "noisy" | "offscreen"}, ...]}
"""

from __future__ import annotations

import colorsys
import io
import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf
from PIL import Image, ImageDraw
from tqdm import tqdm

from vssl.data.items import AVItem
from vssl.data.synth_sounds import render_audio
from vssl.errors import ConfigError, DatasetError

logger = logging.getLogger(__name__)

SPLITS = ("train", "calibration", "test")
PRETRAIN_STREAM = len(SPLITS)  # the seed stream of the frames-only images of the image pretraining (no split)
FORMAT_VERSION = 2  # 2: items carry every object's box ("objects")
_ID_PATTERN = re.compile(r"^(train|calibration|test)_\d{6}$")
_SUPERSAMPLE = 4  # shapes are drawn 4x larger then box-filtered: anti-aliased edges
_MAX_ROTATION = 25.0  # degrees; more would turn a square into a diamond


@dataclass(frozen=True)
class SynthConfig:
    """What :func:`generate` builds; the same config always yields byte-identical files."""

    seed: int = 0
    """Root seed; sample (split, index) is drawn from SeedSequence([seed, split_id, index])."""
    n_train: int = 2000
    """Number of training samples."""
    n_calibration: int = 200
    """Held-out samples for calibrating universal thresholds."""
    n_test: int = 300
    """Evaluation samples."""
    image_size: int = 224
    """Side of the stored square frames, in pixels."""
    num_classes: int = 8
    """How many classes of the table are used (2..12)."""
    max_distractors: int = 2
    """Silent objects of other classes per frame: 0..max_distractors, uniformly."""
    sample_rate: int = 16000
    """Audio sample rate in Hz."""
    duration: float = 3.0
    """Audio clip length in seconds (the sound itself lasts at least half of it)."""
    level_db: tuple[float, float] = (-40.0, -3.0)
    """Range of the sounding object's peak level, dBFS (uniform): from loud down to faint sources at the level
    of the room ambience, as in-the-wild video holds. Faint positives are where a positive-only model's maps
    fall to the level of its silence and noise maps."""
    ambience_db: tuple[float, float] = (-45.0, -30.0)
    """Range of the background ambience's RMS level, dBFS (uniform)."""
    inaudible_fraction: float = 0.15
    """Training pairs whose source is recorded too quietly to hear (peak in ``inaudible_db``). Uncurated
    training sets hold such pairs; curated test sets (VGG-SS) were checked for an audible source, so the
    calibration and test splits have none. They teach a positive-only model that silence goes with
    whatever is salient."""
    inaudible_db: tuple[float, float] = (-75.0, -55.0)
    """Peak level range of an inaudible source, dBFS: below the spectrogram's floor."""
    muted_fraction: float = 0.0
    """Training pairs whose audio track is digital silence (a muted or silent track, as uncurated video
    holds). A positive-only model learns from them to pair true silence with what is visible."""
    noisy_fraction: float = 0.1
    """Training pairs recorded in loud broadband noise (wind, traffic, a bad microphone) that buries an
    inaudible source: white or pink noise at an RMS level in ``noisy_db``. They teach a positive-only model
    to answer loud noise with whatever is visible."""
    noisy_db: tuple[float, float] = (-18.0, -6.0)
    """RMS level range of the noise of a noisy pair, dBFS."""
    offscreen_fraction: float = 0.0
    """Training pairs whose track is the sound of a class that is not in the frame (the source is off screen,
    the visible objects are silent), as in a large part of uncurated video (e.g. VGGSound)."""

    def __post_init__(self):
        if not 2 <= self.num_classes <= len(SYNTH_CLASSES):
            raise ConfigError(f"synth num_classes must be in 2..{len(SYNTH_CLASSES)}, got {self.num_classes}")
        if not 0 <= self.max_distractors < self.num_classes:
            raise ConfigError(f"synth max_distractors must be in 0..num_classes-1, got {self.max_distractors}")
        fractions = (self.inaudible_fraction, self.muted_fraction, self.noisy_fraction, self.offscreen_fraction)
        if min(fractions) < 0.0 or sum(fractions) > 1.0:
            raise ConfigError(
                "synth inaudible_fraction, muted_fraction, noisy_fraction and offscreen_fraction must be >= 0 "
                f"with a sum <= 1, got {fractions}"
            )
        if min(self.n_train, self.n_calibration, self.n_test) < 0:
            raise ConfigError("synth split sizes must be >= 0")
        if self.image_size < 32:
            raise ConfigError(f"synth image_size must be >= 32, got {self.image_size}")
        if self.sample_rate < 8000 or self.duration <= 0:
            raise ConfigError("synth needs sample_rate >= 8000 and duration > 0")


@dataclass(frozen=True)
class SynthClass:
    """One class: how it looks (shape, hue in degrees, texture) and how it sounds (kind + parameters)."""

    name: str
    shape: str
    hue: float
    texture: str
    sound: str
    params: Mapping[str, float]


SYNTH_CLASSES: tuple[SynthClass, ...] = (
    SynthClass("red-circle-hum", "circle", 0, "solid", "hum", {"f0_hz": 140, "vibrato_hz": 5, "depth": 0.03}),
    SynthClass(
        "yellow-square-static",
        "square",
        55,
        "stripes",
        "noise",
        {"centre_hz": 2500, "octaves": 8.0, "drive": 3.0, "am_hz": 4},
    ),
    SynthClass(
        "green-triangle-tick", "triangle", 120, "dots", "clicks", {"rate_hz": 6, "low_hz": 1000, "high_hz": 6000}
    ),
    SynthClass(
        "cyan-star-chirp",
        "star",
        185,
        "checker",
        "sweeps",
        {"start_hz": 400, "end_hz": 2400, "period_s": 0.5, "duty": 0.8},
    ),
    SynthClass("blue-ring-beep", "ring", 235, "solid", "beeps", {"freq_hz": 1000, "rate_hz": 4, "duty": 0.5}),
    SynthClass(
        "magenta-cross-drone",
        "cross",
        300,
        "stripes",
        "hum",
        {"f0_hz": 330, "vibrato_hz": 0, "depth": 0, "tremolo_hz": 11, "odd_only": 1},
    ),
    SynthClass("orange-hexagon-rumble", "hexagon", 28, "dots", "noise", {"centre_hz": 300, "octaves": 1.2, "am_hz": 2}),
    SynthClass(
        "violet-diamond-swoop",
        "diamond",
        270,
        "checker",
        "sweeps",
        {"start_hz": 3500, "end_hz": 700, "period_s": 0.75, "duty": 0.8},
    ),
    SynthClass(
        "lime-crescent-buzz", "crescent", 90, "solid", "clicks", {"rate_hz": 40, "low_hz": 2000, "high_hz": 4500}
    ),
    SynthClass(
        "azure-pentagon-siren", "pentagon", 210, "stripes", "siren", {"low_hz": 650, "high_hz": 870, "rate_hz": 1.6}
    ),
    SynthClass(
        "teal-arrow-whistle", "arrow", 160, "dots", "warble", {"centre_hz": 2000, "depth_hz": 300, "rate_hz": 3}
    ),
    SynthClass("pink-heart-knock", "heart", 330, "checker", "knocks", {"freq_hz": 180, "period_s": 0.6, "gap_s": 0.18}),
)


def synth_class_names(num_classes: int) -> list[str]:
    """Names of the first ``num_classes`` classes of the table, e.g. ``"red-circle-hum"``."""
    if not 1 <= num_classes <= len(SYNTH_CLASSES):
        raise ConfigError(f"synth supports 1..{len(SYNTH_CLASSES)} classes, got {num_classes}")
    return [c.name for c in SYNTH_CLASSES[:num_classes]]


class SynthSample(NamedTuple):
    """One rendered sample; ``box`` is pixel (xmin, ymin, xmax, ymax) with max exclusive, ``mask`` is [H, W] bool."""

    image: Image.Image
    waveform: np.ndarray
    box: tuple[int, int, int, int]
    mask: np.ndarray
    label: str
    classes_in_frame: list[str]
    track: str  # "audible"; training split only: "quiet" (source inaudible), "muted" (zeros), "noisy", "offscreen"
    objects: list[tuple[int, int, int, int]]  # every object's box, in the order of classes_in_frame

    @property
    def inaudible(self) -> bool:
        """The source cannot be heard on the track."""
        return self.track != "audible"


def render_sample(cfg: SynthConfig, split: str, index: int) -> SynthSample:
    """Render sample ``index`` of ``split`` in memory; the waveform is float32 [N] in [-1, 1]."""
    if split not in SPLITS:
        raise DatasetError(f"unknown synth split {split!r}; valid splits: {', '.join(SPLITS)}")
    (image, mask, objects), layout_rng, audio_seq, label, distractors = _render_frame(cfg, SPLITS.index(split), index)
    others = [c for c in range(cfg.num_classes) if c != label]
    track = _track(cfg, layout_rng.random()) if split == "train" else "audible"
    audio_rng = np.random.default_rng(audio_seq)
    heard, absent = label, [c for c in others if c not in distractors]
    if track == "offscreen":  # the sound of a class absent from the frame (none absent: the pair stays audible)
        heard, track = (int(layout_rng.choice(absent)), track) if absent else (label, "audible")
    level_db = cfg.level_db if track in ("audible", "offscreen") else cfg.inaudible_db
    sound = SYNTH_CLASSES[heard]
    waveform = render_audio(
        audio_rng,
        sound.sound,
        sound.params,
        level_db,
        duration=cfg.duration,
        sample_rate=cfg.sample_rate,
        ambience_db=cfg.ambience_db,
    )
    if track == "muted":
        waveform = np.zeros_like(waveform)
    elif track == "noisy":
        waveform = np.clip(waveform + _broadband(audio_rng, len(waveform), cfg.noisy_db), -1.0, 1.0)
    names = [SYNTH_CLASSES[c].name for c in [label, *distractors]]
    return SynthSample(image, waveform, _tight_box(mask), mask, names[0], names, track, objects)


def render_frame(cfg: SynthConfig, index: int, stream: int = PRETRAIN_STREAM) -> tuple[Image.Image, list[int]]:
    """Frame ``index`` of a frames-only stream (no audio) and the classes it shows (sounding and silent alike):
    the images of the demo's image pretraining. ``stream`` keeps its seeds apart from every split's."""
    (image, _, _), _, _, label, distractors = _render_frame(cfg, stream, index)
    return image, [label, *distractors]


def _render_frame(cfg: SynthConfig, stream: int, index: int):
    """The frame of sample ``index`` of seed stream ``stream`` (a split's index in SPLITS, or another): ((image,
    mask, object boxes), the layout generator left for the track, the audio seed, label, distractors)."""
    image_seq, audio_seq, layout_seq = np.random.SeedSequence([cfg.seed, stream, index]).spawn(3)
    label = index % cfg.num_classes  # balanced classes, independent of split sizes
    layout_rng = np.random.default_rng(layout_seq)
    others = [c for c in range(cfg.num_classes) if c != label]
    n_distractors = int(layout_rng.integers(0, cfg.max_distractors + 1))
    distractors = [int(c) for c in layout_rng.choice(others, size=n_distractors, replace=False)]
    frame = _render_image(np.random.default_rng(image_seq), cfg.image_size, label, distractors)
    return frame, layout_rng, audio_seq, label, distractors


def _tight_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(xmin, ymin, xmax, ymax) of the True pixels, max exclusive."""
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _track(cfg: SynthConfig, u: float) -> str:
    """The kind of a training pair's audio track from a uniform draw ``u`` (the fractions in order)."""
    for track, upto in (
        ("quiet", cfg.inaudible_fraction),
        ("muted", cfg.inaudible_fraction + cfg.muted_fraction),
        ("noisy", cfg.inaudible_fraction + cfg.muted_fraction + cfg.noisy_fraction),
        ("offscreen", cfg.inaudible_fraction + cfg.muted_fraction + cfg.noisy_fraction + cfg.offscreen_fraction),
    ):
        if u < upto:
            return track
    return "audible"


def _broadband(rng: np.random.Generator, n: int, level_db: tuple[float, float]) -> np.ndarray:
    """White or pink Gaussian noise at an RMS level drawn from ``level_db`` (dBFS), float32 ``[n]``."""
    noise = rng.standard_normal(n)
    if rng.random() < 0.5:  # pink: 1/f power
        spectrum = np.fft.rfft(noise)
        noise = np.fft.irfft(spectrum / np.sqrt(np.arange(len(spectrum)).clip(min=1)), n)
    noise *= 10 ** (rng.uniform(*level_db) / 20) / (np.sqrt(np.mean(noise**2)) + 1e-12)
    return noise.astype(np.float32)


# ----------------------------------------------------------------------------------------------- images


def _render_image(rng: np.random.Generator, size: int, label: int, distractors: list[int]):
    """Background + objects; returns (PIL RGB image, [H, W] bool mask of the sounding object, the box of every
    object: the sounding one's first, then the distractors')."""
    canvas = _background(rng, size)
    placements = _place_objects(rng, size, 1 + len(distractors))
    boxes = []
    for cls, placement in zip(distractors, placements[1:], strict=True):
        boxes.append(_tight_box(_object_mask(size, *_paste_object(rng, canvas, SYNTH_CLASSES[cls], placement))))
    # The sounding object is drawn last, so it is never hidden even if placement had to overlap.
    mask = _object_mask(size, *_paste_object(rng, canvas, SYNTH_CLASSES[label], placements[0]))
    canvas += 0.012 * rng.standard_normal(canvas.shape, dtype=np.float32)  # sensor noise, so nothing is perfectly flat
    pixels = np.clip(canvas * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB"), mask, [_tight_box(mask), *boxes]


def _object_mask(size: int, alpha: np.ndarray, corner: tuple[int, int]) -> np.ndarray:
    """``[size, size]`` bool: the pixels an object of coverage ``alpha`` pasted at ``corner`` (x0, y0) covers."""
    x0, y0 = corner
    mask = np.zeros((size, size), dtype=bool)
    mask[y0 : y0 + alpha.shape[0], x0 : x0 + alpha.shape[1]] = alpha >= 0.5
    return mask


def _paste_object(rng: np.random.Generator, canvas: np.ndarray, cls: SynthClass, placement) -> tuple:
    """Alpha-blend one object into ``canvas`` in place; returns (alpha [D, D], top-left (x0, y0))."""
    cx, cy, diameter = placement
    alpha, colour = _object_patch(rng, cls, diameter)
    x0, y0 = int(round(cx - diameter / 2)), int(round(cy - diameter / 2))
    region = canvas[y0 : y0 + diameter, x0 : x0 + diameter]
    region += alpha[..., None] * (colour - region)
    return alpha, (x0, y0)


def _muted_colour(rng: np.random.Generator) -> np.ndarray:
    """A low-saturation, mid-value colour: background material that should not look like an object."""
    return np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.05, 0.3), rng.uniform(0.35, 0.75)))


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Cluttered, low-contrast background, float32 [H, W, 3] in [0, 1]: gradient, blobs, texture, shapes, lines.

    The smooth layers are drawn at a quarter of the resolution and upsampled (4x to 16x cheaper).
    """
    low = max(16, size // 4)
    yy, xx = (np.mgrid[0:low, 0:low].astype(np.float32) + 0.5) / low
    angle = rng.uniform(0, 2 * math.pi)
    ramp = xx * math.cos(angle) + yy * math.sin(angle)
    ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6)
    c0, c1 = _muted_colour(rng), _muted_colour(rng)
    canvas = c0 + ramp[..., None] * (c1 - c0)
    for _ in range(rng.integers(5, 11)):  # soft blobs
        cx, cy, rx, ry = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.25), rng.uniform(0.05, 0.25)
        blob = np.exp(-((((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2) ** 2))
        canvas += rng.uniform(0.1, 0.3) * blob[..., None] * (_muted_colour(rng) - canvas)
    coarse = Image.fromarray((rng.random((8, 8)) * 255).astype(np.uint8), "L").resize((low, low), Image.BILINEAR)
    canvas += (np.asarray(coarse, dtype=np.float32)[..., None] / 255.0 - 0.5) * 0.08
    smooth = Image.fromarray(np.clip(canvas * 255 + 0.5, 0, 255).astype(np.uint8), "RGB")
    image = smooth.resize((size, size), Image.BICUBIC)
    lines = image.copy()
    draw = ImageDraw.Draw(lines)
    for _ in range(rng.integers(2, 5)):  # faint background shapes: clutter that is not a salient object
        x0, y0 = rng.uniform(-0.1, 0.9, 2) * size
        x1, y1 = x0 + rng.uniform(0.1, 0.5) * size, y0 + rng.uniform(0.1, 0.5) * size
        colour = tuple(int(v * 255) for v in _muted_colour(rng))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x1, y1], fill=colour)
    for _ in range(rng.integers(3, 9)):
        points = [tuple(float(v) for v in rng.uniform(0, size, 2)) for _ in range(2)]
        colour = tuple(int(v * 255) for v in _muted_colour(rng))
        draw.line(points, fill=colour, width=int(rng.integers(1, max(2, size // 75) + 1)))
    return np.asarray(Image.blend(image, lines, 0.35), dtype=np.float32) / 255.0


def _place_objects(rng: np.random.Generator, size: int, count: int) -> list[tuple[float, float, int]]:
    """(centre x, centre y, diameter) per object, inside the frame, non-overlapping when possible.

    Diameters are 18-40 % of the frame side for every object, sounding or not (equal salience).
    """
    placed: list[tuple[float, float, int]] = []
    for _ in range(count):
        diameter = int(round(rng.uniform(0.18, 0.40) * size))
        radius = diameter / 2
        best, best_clearance = None, -math.inf
        for _attempt in range(40):
            cx, cy = rng.uniform(radius, size - radius, 2)
            clearance = min((math.hypot(cx - px, cy - py) - radius - pd / 2 for px, py, pd in placed), default=0)
            if clearance > best_clearance:
                best, best_clearance = (float(cx), float(cy), diameter), clearance
            if clearance >= 2:
                break
        placed.append(best)
    return placed


def _shape_outline(shape: str, rotation: float) -> list[tuple[str, list[tuple[float, float]], int]]:
    """Drawing ops in unit coordinates (object inside the unit circle, y down): (kind, points, fill)."""

    def rotate(points):
        c, s = math.cos(rotation), math.sin(rotation)
        return [(x * c - y * s, x * s + y * c) for x, y in points]

    def regular(n, radius=1.0, start=-math.pi / 2):
        return [
            (radius * math.cos(start + 2 * math.pi * k / n), radius * math.sin(start + 2 * math.pi * k / n))
            for k in range(n)
        ]

    disc = [(-1.0, -1.0), (1.0, 1.0)]
    if shape == "circle":
        return [("ellipse", disc, 255)]
    if shape == "ring":
        return [("ellipse", disc, 255), ("ellipse", [(-0.55, -0.55), (0.55, 0.55)], 0)]
    if shape == "crescent":
        dx, dy = rotate([(0.45, -0.2)])[0]
        return [("ellipse", disc, 255), ("ellipse", [(dx - 0.85, dy - 0.85), (dx + 0.85, dy + 0.85)], 0)]
    if shape == "star":
        points = [p for k, p in enumerate(regular(10)) if k % 2 == 0]
        inner = regular(10, 0.45)
        points = [q for pair in zip(points, inner[1::2], strict=True) for q in pair]
    elif shape == "cross":
        a, b = 0.3, 0.95
        points = [
            (-a, -b),
            (a, -b),
            (a, -a),
            (b, -a),
            (b, a),
            (a, a),
            (a, b),
            (-a, b),
            (-a, a),
            (-b, a),
            (-b, -a),
            (-a, -a),
        ]
    elif shape == "arrow":
        points = [(-1, -0.22), (0.1, -0.22), (0.1, -0.6), (0.95, 0), (0.1, 0.6), (0.1, 0.22), (-1, 0.22)]
    elif shape == "heart":
        ts = np.linspace(0, 2 * math.pi, 48, endpoint=False)
        xs = 16 * np.sin(ts) ** 3 / 17
        ys = -(13 * np.cos(ts) - 5 * np.cos(2 * ts) - 2 * np.cos(3 * ts) - np.cos(4 * ts)) / 17 - 0.15
        points = list(zip(xs.tolist(), ys.tolist(), strict=True))
    else:
        points = {
            "square": [(-0.7, -0.7), (0.7, -0.7), (0.7, 0.7), (-0.7, 0.7)],
            "triangle": regular(3, start=-math.pi / 2),
            "diamond": [(0, -1), (0.6, 0), (0, 1), (-0.6, 0)],
            "hexagon": regular(6, start=0.0),
            "pentagon": regular(5),
        }[shape]
    return [("polygon", rotate(points), 255)]


def _shape_alpha(shape: str, diameter: int, rotation: float) -> np.ndarray:
    """Anti-aliased coverage [diameter, diameter] float in [0, 1] of a shape filling the patch's inscribed circle."""
    side = diameter * _SUPERSAMPLE
    image = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(image)
    half = side / 2

    def to_px(points):
        return [(half + x * (half - 1), half + y * (half - 1)) for x, y in points]

    for kind, points, fill in _shape_outline(shape, rotation):
        if kind == "ellipse":
            draw.ellipse(to_px(points), fill=fill)
        else:
            draw.polygon(to_px(points), fill=fill)
    return np.asarray(image.resize((diameter, diameter), Image.BOX), dtype=np.float64) / 255.0


def _texture(kind: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Share of the second tone per pixel (0 = base colour) in object coordinates (radius 1)."""
    if kind == "stripes":
        return np.clip(0.5 + 1.5 * np.sin(math.pi * (u + v) / 0.42), 0, 1)
    if kind == "dots":
        gu, gv = (u / 0.5) % 1 - 0.5, (v / 0.5) % 1 - 0.5
        return np.clip((0.2 - np.hypot(gu, gv)) / 0.06, 0, 1)
    if kind == "checker":
        return np.clip(0.5 + 1.5 * np.sin(math.pi * u / 0.45) * np.sin(math.pi * v / 0.45), 0, 1)
    return np.zeros_like(u)


def _object_patch(rng: np.random.Generator, cls: SynthClass, diameter: int) -> tuple[np.ndarray, np.ndarray]:
    """(alpha [D, D], colour [D, D, 3]) of one object with random rotation and colour jitter."""
    rotation = math.radians(rng.uniform(-_MAX_ROTATION, _MAX_ROTATION))
    alpha = _shape_alpha(cls.shape, diameter, rotation)
    hue = (cls.hue + rng.uniform(-6, 6)) / 360.0 % 1.0
    base = np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.75, 1.0), rng.uniform(0.8, 1.0)))
    luminance = float(base @ np.array([0.299, 0.587, 0.114]))
    # The texture's second tone stays in the same hue: darker for light colours, lighter for dark ones.
    second = base * 0.45 + (0.55 if luminance < 0.45 else 0.0)
    coords = (np.arange(diameter) + 0.5) / diameter * 2 - 1
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    c, s = math.cos(rotation), math.sin(rotation)
    share = _texture(cls.texture, xx * c + yy * s, -xx * s + yy * c)[..., None]
    return alpha, base + share * (second - base)


# ----------------------------------------------------------------------------------------- files on disk


def _split_sizes(cfg: SynthConfig) -> list[tuple[str, int]]:
    return [("train", cfg.n_train), ("calibration", cfg.n_calibration), ("test", cfg.n_test)]


def _is_current(annotations: Path, cfg: SynthConfig) -> bool:
    """Whether ``annotations`` is a finished dataset made with exactly this config."""
    try:
        data = json.loads(annotations.read_text())
    except (OSError, ValueError):
        return False
    expected = json.loads(json.dumps(asdict(cfg)))  # tuples become lists, as in the file
    return isinstance(data, dict) and data.get("version") == FORMAT_VERSION and data.get("config") == expected


def _write_sample(cfg: SynthConfig, root: Path, split: str, index: int) -> dict:
    """Render one sample, write its frame, audio and mask, return its annotation entry."""
    sample = render_sample(cfg, split, index)
    sample_id = f"{split}_{index:06d}"
    sample.image.save(root / "frames" / f"{sample_id}.jpg", quality=92)
    # Encoded in memory: writing through libsndfile to a path fsyncs every file (3 ms each).
    wav = io.BytesIO()
    sf.write(wav, sample.waveform, cfg.sample_rate, format="WAV", subtype="PCM_16")
    (root / "audio" / f"{sample_id}.wav").write_bytes(wav.getvalue())
    Image.fromarray(sample.mask.astype(np.uint8) * 255, "L").save(root / "masks" / f"{sample_id}.png")
    return {
        "id": sample_id,
        "split": split,
        "label": sample.label,
        "box": list(sample.box),
        "objects": [list(box) for box in sample.objects],
        "width": cfg.image_size,
        "height": cfg.image_size,
        "classes_in_frame": sample.classes_in_frame,
        "inaudible": sample.inaudible,
        "track": sample.track,
    }


def _write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON to a temporary file next to ``path`` and rename it: readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _remove_stale_files(root: Path, ids: set[str]) -> None:
    """Delete sample files of an earlier, larger generation (only names this module writes)."""
    for sub in ("frames", "audio", "masks"):
        for path in (root / sub).iterdir():
            if _ID_PATTERN.match(path.stem) and path.stem not in ids:
                path.unlink()


def generate(cfg: SynthConfig, root: Path, progress: bool = True) -> Path:
    """Write the dataset of ``cfg`` under ``root`` (layout in the module docstring) and return ``root``.

    If ``root/annotations.json`` already describes this exact config the dataset is reused untouched.
    ``annotations.json`` is written last and atomically, so an interrupted run leaves no valid dataset.
    """
    root = Path(root)
    annotations = root / "annotations.json"
    if _is_current(annotations, cfg):
        logger.info("synth dataset at %s is up to date; reusing it", root)
        return root
    annotations.unlink(missing_ok=True)  # invalidate an older dataset before touching its files
    for sub in ("frames", "audio", "masks"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    jobs = [(split, index) for split, count in _split_sizes(cfg) for index in range(count)]
    items = [
        _write_sample(cfg, root, split, index)
        for split, index in tqdm(jobs, desc="synth", unit="sample", disable=not progress)
    ]
    _remove_stale_files(root, {item["id"] for item in items})
    _write_json_atomic(
        annotations,
        {
            "version": FORMAT_VERSION,
            "config": asdict(cfg),
            "classes": synth_class_names(cfg.num_classes),
            "items": items,
        },
    )
    logger.info("wrote %d synth samples to %s", len(items), root)
    return root


def _item_from_entry(root: Path, entry: dict, has_masks: bool, source: Path) -> AVItem:
    """One annotation entry -> AVItem with the boxes normalised by the frame size."""
    try:
        sample_id, width, height = entry["id"], float(entry["width"]), float(entry["height"])
        boxes = [tuple(float(v) for v in box) for box in [entry["box"], *entry["objects"]]]
        label, classes = entry["label"], tuple(entry["classes_in_frame"])
        if any(len(box) != 4 for box in boxes):
            raise ValueError("a box needs 4 numbers")
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"{source}: malformed item {entry!r}: {exc}") from exc
    for xmin, ymin, xmax, ymax in boxes:
        if not (0 <= xmin < xmax <= width and 0 <= ymin < ymax <= height):
            raise DatasetError(
                f"{source}: item {sample_id}: box {[xmin, ymin, xmax, ymax]} is not inside its {width}x{height} frame"
            )
    normalised = [(x0 / width, y0 / height, x1 / width, y1 / height) for x0, y0, x1, y1 in boxes]
    return AVItem(
        id=sample_id,
        image=root / "frames" / f"{sample_id}.jpg",
        audio=root / "audio" / f"{sample_id}.wav",
        boxes=(normalised[0],),
        mask=root / "masks" / f"{sample_id}.png" if has_masks else None,
        label=label,
        classes=classes,
        objects=tuple(normalised[1:]),
    )


def read_synth(root: Path, split: str) -> list[AVItem]:
    """Items of one split ("train", "calibration" or "test") of a dataset written by :func:`generate`."""
    if split not in SPLITS:
        raise DatasetError(f"unknown synth split {split!r}; valid splits: {', '.join(SPLITS)}")
    root = Path(root)
    annotations = root / "annotations.json"
    if not annotations.is_file():
        raise DatasetError(f"{annotations}: missing; create the dataset with vssl.data.synth.generate()")
    for sub in ("frames", "audio"):
        if not (root / sub).is_dir():
            raise DatasetError(f"{root / sub}: missing directory of the synth dataset")
    try:
        data = json.loads(annotations.read_text())
        entries = data["items"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{annotations}: not a synth annotation file ({exc})") from exc
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise DatasetError(f"{annotations}: 'items' must be a list of objects")
    if data.get("version") != FORMAT_VERSION:
        raise DatasetError(f"{annotations}: version {data.get('version')!r}, expected {FORMAT_VERSION}")
    has_masks = (root / "masks").is_dir()
    return [_item_from_entry(root, e, has_masks, annotations) for e in entries if e.get("split") == split]
