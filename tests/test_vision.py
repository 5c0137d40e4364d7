"""Tests of the image front end: decoding any mode to RGB, bad files, transforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vssl import vision
from vssl.errors import MediaError
from vssl.vision import ImageConfig, augment_image, load_image

IS3_NAMES = ["lion_cat_872_cat", "cello_donkey_3905_cello", "chicken_bus_8050_chicken"]


def gradient(width: int = 40, height: int = 30) -> np.ndarray:
    """An RGB uint8 ``[H, W, 3]`` image that differs in every direction."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], axis=-1).astype(np.uint8)


def assert_media_error(path, match: str = ""):
    with pytest.raises(MediaError, match=match) as info:
        load_image(path)
    assert str(path) in str(info.value)


# ---------------------------------------------------------------- reference agreement


@pytest.mark.parametrize("name", IS3_NAMES)
def test_eval_transform_matches_ezvsl_reference(fixtures_dir, name):
    reference = np.load(fixtures_dir / "reference" / "ezvsl_seeded_reference.npz")[f"{name}/image_tensor"]
    ours = vision.eval_transform()(load_image(fixtures_dir / "real" / "is3plus" / f"{name}.jpg"))
    assert ours.shape == (3, 224, 224) and ours.dtype == torch.float32
    # Pillow resizes 8-bit images in integer arithmetic (the same pixels on every CPU); ToTensor and Normalize are
    # then 3 correctly rounded float32 operations per value (|value| <= 2.7): at most 3 ulp of 2.7 = 7.2e-7 apart.
    assert np.abs(ours.numpy() - reference).max() <= 3 * np.spacing(np.float32(2.7))


# ---------------------------------------------------------------- modes


def test_rgba_drops_alpha(tmp_path):
    rgba = np.concatenate([gradient(), np.full((30, 40, 1), 7, dtype=np.uint8)], axis=-1)
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba).save(path)
    img = load_image(path)
    assert img.mode == "RGB" and img.size == (40, 30)
    np.testing.assert_array_equal(np.asarray(img), rgba[..., :3])


def test_grayscale_becomes_three_equal_channels(tmp_path):
    grey = gradient()[..., 0]
    path = tmp_path / "grey.png"
    Image.fromarray(grey).save(path)
    rgb = np.asarray(load_image(path))
    assert rgb.shape == (30, 40, 3)
    for channel in range(3):
        np.testing.assert_array_equal(rgb[..., channel], grey)


def test_sixteen_bit_grey_is_scaled_not_saturated(tmp_path):
    grey = np.array([[0, 257 * 100, 1000, 65535]], dtype=np.uint16)
    path = tmp_path / "grey16.png"
    Image.fromarray(grey).save(path)
    rgb = np.asarray(load_image(path))
    np.testing.assert_array_equal(rgb[0, :, 0], [0, 100, 4, 255])


def test_palette_with_transparency(tmp_path):
    path = tmp_path / "palette.png"
    Image.fromarray(gradient()).convert("P").save(path, transparency=0)
    img = load_image(path)
    assert img.mode == "RGB" and img.size == (40, 30)


def test_cmyk_jpeg(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(gradient()).convert("CMYK").save(path, quality=95)
    img = load_image(path)
    assert img.mode == "RGB" and img.size == (40, 30)
    assert np.abs(np.asarray(img).astype(int) - gradient().astype(int)).mean() < 10


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :20] = (255, 0, 0)  # left half red
    pixels[:, 20:] = (0, 0, 255)  # right half blue
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif, quality=95)
    rgb = np.asarray(load_image(path)).astype(int)
    assert rgb.shape == (40, 20, 3)  # portrait once rotated
    assert rgb[5, 10, 0] > 200 and rgb[5, 10, 2] < 60  # the left (red) half is now on top
    assert rgb[35, 10, 2] > 200 and rgb[35, 10, 0] < 60


# ---------------------------------------------------------------- bad files


def test_truncated_jpeg(tmp_path):
    path = tmp_path / "truncated.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert_media_error(path, "cannot read image")


def test_not_an_image(tmp_path):
    path = tmp_path / "garbage.jpg"
    path.write_bytes(np.random.default_rng(1).bytes(1000))
    assert_media_error(path, "cannot read image")


def test_missing_and_empty(tmp_path):
    assert_media_error(tmp_path / "nope.jpg", "not found")
    empty = tmp_path / "empty.png"
    empty.touch()
    assert_media_error(empty, "cannot read image")


def test_pixel_limit(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.fromarray(gradient()).save(path)
    monkeypatch.setattr(vision, "MAX_IMAGE_PIXELS", 1000)
    assert_media_error(path, "40×30 pixels, above the limit 1000")
    monkeypatch.setattr(vision, "MAX_IMAGE_PIXELS", None)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow's own guard still ends in a MediaError
    assert_media_error(path, "too large")


# ---------------------------------------------------------------- transforms


@pytest.mark.parametrize("size", [224, 112])
def test_transform_shapes(size):
    cfg = ImageConfig(size=size)
    image = Image.fromarray(gradient(640, 480))
    assert vision.eval_transform(cfg)(image).shape == (3, size, size)
    assert augment_image(image, cfg, np.random.default_rng(0)).shape == (3, size, size)


def test_augmentation_is_determined_by_its_generator():
    image = Image.fromarray(gradient(640, 480))
    views = [augment_image(image, ImageConfig(size=112), np.random.default_rng(s)) for s in (1, 1, 2, 3, 4)]
    assert torch.equal(views[0], views[1])
    assert any(not torch.equal(views[0], v) for v in views[2:])


def test_train_short_side_scales_with_size():
    assert ImageConfig().train_short_side == 246
    assert ImageConfig(size=112).train_short_side == 123


def test_eval_transform_normalises_with_imagenet_statistics():
    grey = Image.fromarray(np.full((50, 70, 3), 128, dtype=np.uint8))
    tensor = vision.eval_transform()(grey)
    expected = (128 / 255 - torch.tensor(ImageConfig().mean)) / torch.tensor(ImageConfig().std)
    torch.testing.assert_close(tensor[:, 100, 100], expected)
