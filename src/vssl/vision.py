"""Image front end: file -> RGB PIL image -> normalised tensor ``[3, size, size]``.

The evaluation transform matches the EZ-VSL family (bicubic resize of the whole frame to
``size × size``, no crop, so boxes stay in full-frame coordinates); training augmentation resizes
the shorter side, crops at random and flips.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import ExifTags, Image
from torchvision import transforms

from vssl.errors import MediaError, require_file

__all__ = [
    "MAX_IMAGE_PIXELS",
    "ImageConfig",
    "View",
    "apply_view",
    "augment_image",
    "crop_and_flip",
    "draw_view",
    "eval_transform",
    "load_image",
    "resize_shorter",
]

MAX_IMAGE_PIXELS: int | None = 100_000_000
"""`load_image` refuses images with more pixels than this (None: no limit of ours).

Pillow's own guard (``PIL.Image.MAX_IMAGE_PIXELS``, an error at twice its value) still applies
when the file is opened; raise both to read larger images.
"""

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")

_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
"""EXIF orientation -> the transposition that shows the image upright (1 and invalid values: none)."""


@dataclass(frozen=True)
class ImageConfig:
    """How a frame becomes the network's input (defaults: the EZ-VSL front end)."""

    size: int = 224
    """Side of the square network input, in pixels."""
    train_resize: int = 246
    """Shorter side before the random crop at train time, for ``size=224`` (scaled with ``size``)."""
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    """Per-channel mean subtracted after scaling to [0, 1] (ImageNet)."""
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    """Per-channel standard deviation divided by after the mean (ImageNet)."""

    @property
    def train_short_side(self) -> int:
        """Shorter side before the random crop: ``train_resize`` scaled by ``size / 224``."""
        return int(self.size * self.train_resize / 224)


def load_image(path: str | Path) -> Image.Image:
    """Open an image file as a fully decoded RGB image, EXIF orientation applied.

    Any mode is converted to RGB (alpha is dropped, as the reference code does; 16-bit
    grey levels are scaled to 8 bits rather than saturated). Raises `MediaError` naming the
    file when it is missing, not an image, corrupt, truncated, larger than `MAX_IMAGE_PIXELS`
    (checked from the header, before any pixel is decoded) or has EXIF metadata Pillow cannot parse.
    """
    path = require_file(path)
    try:
        with Image.open(path) as img:
            width, height = img.size
            if MAX_IMAGE_PIXELS is not None and width * height > MAX_IMAGE_PIXELS:
                raise MediaError(path, f"image has {width}×{height} pixels, above the limit {MAX_IMAGE_PIXELS}")
            img.load()  # decode now, so corrupt or truncated files fail here
            return _to_rgb(_upright(img, path))
    except MediaError:
        raise
    except Image.DecompressionBombError as err:
        raise MediaError(path, f"image is too large for Pillow's limit: {err}") from err
    except (OSError, SyntaxError, ValueError) as err:  # what Pillow raises for unreadable data
        raise MediaError(path, f"cannot read image: {err}") from err


def _upright(img: Image.Image, path: Path) -> Image.Image:
    """``img`` turned as its EXIF (or XMP) orientation says; `MediaError` when that cannot be read.

    Unlike ``ImageOps.exif_transpose`` this leaves the metadata alone (it is dropped with the conversion to
    RGB): rewriting it fails on some malformed tags even after the orientation was read.
    """
    try:
        orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception as err:  # Pillow's EXIF parser raises struct.error, TypeError, ... on a garbled block
        raise MediaError(path, f"unreadable EXIF metadata (orientation unknown): {err}") from err
    method = _UPRIGHT.get(orientation) if isinstance(orientation, int) else None
    return img if method is None else img.transpose(method)


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB (a new image, independent of the open file)."""
    if img.mode in _SIXTEEN_BIT_MODES:
        # Pillow saturates 16-bit grey at 255 when converting; scale the full range instead.
        grey = np.asarray(img, dtype=np.int64).clip(0, 65535)
        img = Image.fromarray(((grey + 128) // 257).astype(np.uint8))
    return img.convert("RGB")


def eval_transform(cfg: ImageConfig = ImageConfig()) -> transforms.Compose:
    """PIL RGB image -> ``[3, size, size]``: bicubic resize of the whole frame, no crop, normalise."""
    return transforms.Compose(
        [
            transforms.Resize((cfg.size, cfg.size), interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.ToTensor(),
            transforms.Normalize(cfg.mean, cfg.std),
        ]
    )


def resize_shorter(image: Image.Image, cfg: ImageConfig) -> Image.Image:
    """Bicubic resize so the shorter side is ``cfg.train_short_side`` (the first, deterministic training step)."""
    return transforms.functional.resize(image, cfg.train_short_side, interpolation=transforms.InterpolationMode.BICUBIC)


class View(NamedTuple):
    """A training view of a :func:`resize_shorter` output: the crop's top-left corner and whether it is flipped."""

    left: int
    top: int
    flip: bool


def draw_view(size: tuple[int, int], cfg: ImageConfig, rng: np.random.Generator) -> View:
    """A random ``cfg.size`` square crop of an image of ``size`` (width, height) and a coin for the flip."""
    width, height = size
    left = int(rng.integers(width - cfg.size + 1))
    top = int(rng.integers(height - cfg.size + 1))
    return View(left, top, bool(rng.random() < 0.5))


def apply_view(image: Image.Image, view: View, cfg: ImageConfig) -> torch.Tensor:
    """``image`` cropped and flipped as ``view`` says, normalised: ``[3, size, size]``."""
    image = image.crop((view.left, view.top, view.left + cfg.size, view.top + cfg.size))
    if view.flip:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return transforms.functional.normalize(transforms.functional.to_tensor(image), cfg.mean, cfg.std)


def crop_and_flip(image: Image.Image, cfg: ImageConfig, rng: np.random.Generator) -> torch.Tensor:
    """Random ``size x size`` crop and horizontal flip of a :func:`resize_shorter` output, normalised.

    The randomness comes from ``rng`` alone (not torch's global state), so a seeded epoch is reproducible
    in any worker process and after a resume.
    """
    return apply_view(image, draw_view(image.size, cfg, rng), cfg)


def augment_image(image: Image.Image, cfg: ImageConfig, rng: np.random.Generator) -> torch.Tensor:
    """Training view ``[3, size, size]``: shorter side resized, random crop, random flip, normalised."""
    return crop_and_flip(resize_shorter(image, cfg), cfg, rng)
