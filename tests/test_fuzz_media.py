"""Fuzzing the media loaders: every file ends in a correct result or a typed vssl error that names it.

`load_audio`, `load_image` and `localize_video` get random bytes and mutated valid files (hypothesis), and
hand-made cases: empty, truncated and misnamed files, NaN/Inf samples, 1 sample and 10 minutes of audio,
8-192 kHz and odd rates, 1-8 channels, every PCM depth and float, every image mode, EXIF orientations and
garbled EXIF, 1x1 and huge images, videos without audio or without video, non-UTF-8 tags, a named pipe.
A result is checked (shape, dtype, finite values, orientation, resampled length); an error must be a
`VsslError` whose message names the file. Anything else fails: another exception type, or a run past a
timeout (a hang).

Budgets are CI-sized (the file runs in well under a minute). ``VSSL_FUZZ_EXAMPLES=N`` gives every property
N examples instead: ``benchmarks/fuzz_media.py`` runs this file so and prints `OUTCOMES`.
"""

from __future__ import annotations

import io
import math
import os
import re
import resource
import signal
import struct
import warnings
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TypeVar

import av
import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image, ImageFile

from vssl import load_localizer, save_release, vision
from vssl.audio import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, load_audio, resample
from vssl.data.synth.video import write_video
from vssl.errors import VsslError
from vssl.inference.video import localize_video
from vssl.models.registry import create_model
from vssl.vision import load_image

T = TypeVar("T")

OUTCOMES: Counter[str] = Counter()
"""Every loader call in this file by outcome: ``ok``, the `VsslError` subclass, or ``LEAK <type>`` (a bug)."""
EXAMPLES = int(os.environ.get("VSSL_FUZZ_EXAMPLES", "0"))
"""Examples per property for a long run (0: the CI budgets below)."""
CALIBRATION = {"thresholds": {"max": 0.52, "max10": 0.572, "maxq3": 0.55}, "map_scale": "(cos+1)/2"}
SUFFIXES = (".wav", ".flac", ".mp3", ".mp4", ".mkv", ".png", ".jpg", ".tif", "")
STANDARD_RATES = (8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000, 176400, 192000)
SUBTYPES = ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")  # 8-bit wav is unsigned
ORIENTATION = ExifTags.Base.Orientation


def fuzz(max_examples: int) -> settings:
    """Hypothesis settings: ``max_examples`` (deterministic) in CI, ``VSSL_FUZZ_EXAMPLES`` (random) if set."""
    return settings(
        max_examples=EXAMPLES or max_examples,
        derandomize=not EXAMPLES,
        deadline=None,  # CI machines are shared: time is bounded by `within` instead
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )


@contextmanager
def within(seconds: float) -> Iterator[None]:
    """Raise TimeoutError in the block once it has run ``seconds``: a hang fails instead of stalling CI."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run(load: Callable[[Path], T], path: Path, timeout: float = 30.0) -> T | VsslError:
    """``load(path)``: its result, or the `VsslError` it raised, checked to name ``path``. Any other exception,
    or a run past ``timeout`` s, is tallied as a leak and fails the test."""
    try:
        with within(timeout):
            result = load(path)
    except VsslError as err:
        OUTCOMES[type(err).__name__] += 1
        assert str(path) in str(err), f"the error does not name the file: {err}"
        return err
    except BaseException as err:
        OUTCOMES[f"LEAK {type(err).__name__}"] += 1
        raise
    OUTCOMES["ok"] += 1
    return result


def accepted(load: Callable[[Path], T], path: Path, timeout: float = 30.0) -> T:
    """``load(path)``, which must succeed."""
    result = run(load, path, timeout)
    assert not isinstance(result, VsslError), f"refused: {result}"
    return result


def refused(load: Callable[[Path], object], path: Path, match: str) -> None:
    """``load(path)`` must end in a `VsslError` naming ``path`` whose message matches ``match``."""
    result = run(load, path)
    assert isinstance(result, VsslError), f"{path} was accepted"
    assert re.search(match, str(result)), f"{result!s} does not match {match!r}"


def either(load: Callable[[Path], T], path: Path, check: Callable[[T], object]) -> None:
    """``load(path)`` ends in a result that passes ``check``, or in a `VsslError` naming ``path``."""
    result = run(load, path)
    if not isinstance(result, VsslError):
        check(result)


def check_wave(wave: torch.Tensor, length: int | None = None) -> None:
    """A mono float32 waveform ``[T]`` of finite samples, bounded: clipped to [-1, 1], then resampled by filter
    phases whose absolute weights sum to at most 2.241 (the ringing of band-limited interpolation)."""
    assert isinstance(wave, torch.Tensor) and wave.dtype == torch.float32 and wave.dim() == 1
    assert wave.numel() >= 1 and (length is None or wave.numel() == length)
    assert torch.isfinite(wave).all() and wave.abs().max() <= 2.25


def check_image(image: Image.Image, size: tuple[int, int] | None = None) -> np.ndarray:
    """A decoded RGB image -> its pixels ``[H, W, 3]`` uint8."""
    assert image.mode == "RGB" and min(image.size) >= 1 and (size is None or image.size == size)
    pixels = np.asarray(image)
    assert pixels.shape == (image.size[1], image.size[0], 3) and pixels.dtype == np.uint8
    return pixels


def resampled_length(frames: int, rate: int, new_rate: int = 16000) -> int:
    return -(-frames * new_rate // rate)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------- seed files


def gradient(width: int = 12, height: int = 8) -> np.ndarray:
    """RGB ``[H, W, 3]`` uint8 whose pixels all differ."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // width, y * 255 // height, (7 * x + 13 * y) % 256], axis=-1).astype(np.uint8)


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def audio_seeds(folder: Path) -> dict[str, bytes]:
    """0.1 s stereo tones in the formats of both decoders (soundfile; PyAV for AAC in MP4 and Matroska)."""
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(1600) / 16000)
    stereo = np.stack([tone, -tone / 2], axis=1).astype(np.float32)
    seeds = {}
    for name, fmt, subtype in [
        ("pcm16.wav", "WAV", "PCM_16"),
        ("float.wav", "WAV", "FLOAT"),
        ("tone.flac", "FLAC", "PCM_16"),
        ("tone.ogg", "OGG", "VORBIS"),
        ("tone.mp3", "MP3", "MPEG_LAYER_III"),
    ]:
        buffer = io.BytesIO()
        sf.write(buffer, stereo, 16000, format=fmt, subtype=subtype)
        seeds[name] = buffer.getvalue()
    for name in ("tone.m4a", "tone.mka"):
        seeds[name] = write_video(folder / name, seconds=0.2, video=False).read_bytes()
    return seeds


def image_seeds() -> dict[str, bytes]:
    """Small images in Pillow's main formats and modes, one with an EXIF orientation."""
    rgb = Image.fromarray(gradient())
    exif = rgb.getexif()
    exif[ORIENTATION] = 6
    grey16 = Image.fromarray(gradient()[..., 0].astype(np.uint16) * 257)
    return {
        "rgb.png": encoded(rgb, "PNG"),
        "grey16.png": encoded(grey16, "PNG"),
        "rotated.jpg": encoded(rgb, "JPEG", exif=exif),
        "palette.gif": encoded(rgb.convert("P"), "GIF"),
        "rgb.bmp": encoded(rgb, "BMP"),
        "cmyk.tif": encoded(rgb.convert("CMYK"), "TIFF", exif=exif),
        "rgba.webp": encoded(rgb.convert("RGBA"), "WEBP", lossless=True),
        "icon.ico": encoded(rgb, "ICO"),
    }


@st.composite
def mutated(draw: st.DrawFn, seeds: dict[str, bytes]) -> tuple[str, bytes]:
    """A seed file after 1-4 random edits: bytes overwritten, a run inserted or deleted, or the tail cut."""
    name = draw(st.sampled_from(sorted(seeds)))
    data = bytearray(seeds[name])
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(0, len(data) - 1)))
        edit = draw(st.sampled_from(("overwrite", "insert", "delete", "truncate")))
        if edit == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[at : at + len(chunk)] = chunk
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        else:
            del data[at:]
    return name, bytes(data)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for the files hypothesis examples write (function-scoped tmp_path cannot be used with @given)."""
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, bytes]]:
    folder = tmp_path_factory.mktemp("seeds")
    videos = {
        name: write_video(folder / name, seconds=0.6, fps=5, size=(32, 24)).read_bytes()
        for name in ("clip.mp4", "clip.mkv")
    }
    return {"audio": audio_seeds(folder), "image": image_seeds(), "video": videos}


@pytest.fixture(scope="module")
def localizer(tmp_path_factory: pytest.TempPathFactory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("release") / "test"
    return load_localizer(save_release(create_model("test").eval(), folder, extra={"calibration": CALIBRATION}))


@pytest.fixture(scope="module")
def analyse(localizer) -> Callable[[Path], object]:
    """``localize_video`` of a path with the test model, at 2 analysed frames per second."""
    return partial(localize_video, localizer, fps=2, progress=False)


def check_timeline(timeline) -> None:
    assert timeline.frames and all(math.isfinite(f["max"]) for f in timeline.frames)


# ---------------------------------------------------------------- properties (hypothesis)


@pytest.mark.parametrize("load,check", [(load_audio, check_wave), (load_image, check_image)], ids=["audio", "image"])
@fuzz(60)
@given(data=st.binary(max_size=4096), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes(work, load, check, data, suffix):
    either(load, write(work / f"random{suffix}", data), check)


@fuzz(100)
@given(data=st.data())
def test_mutated_audio_files(work, seeds, data):
    name, blob = data.draw(mutated(seeds["audio"]))
    either(load_audio, write(work / name, blob), check_wave)


@fuzz(100)
@given(data=st.data())
def test_mutated_images(work, seeds, data):
    name, blob = data.draw(mutated(seeds["image"]))
    either(load_image, write(work / name, blob), check_image)


@fuzz(30)
@given(data=st.data())
def test_mutated_videos(work, seeds, analyse, data):
    name, blob = data.draw(mutated(seeds["video"]))
    either(analyse, write(work / name, blob), check_timeline)


@fuzz(60)
@given(data=st.data(), fmt=st.sampled_from(("JPEG", "PNG", "WEBP", "TIFF")))
def test_garbled_exif(work, data, fmt):
    """EXIF blocks with random edits: an RGB image (turned as what is left of the orientation says) or a refusal."""
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[ExifTags.Base.Make] = "vssl"
    exif[ExifTags.Base.ExifOffset] = {ExifTags.Base.DateTimeOriginal: "2024:01:01 00:00:00"}
    _, raw = data.draw(mutated({"exif": exif.tobytes()}))
    try:
        blob = encoded(Image.fromarray(gradient()), fmt, exif=raw)
    except Exception:  # Pillow's writer refused the block: nothing to read
        return
    either(load_image, write(work / f"exif.{fmt.lower()}", blob), check_image)


@fuzz(80)
@given(
    rate=st.one_of(st.sampled_from(STANDARD_RATES), st.integers(8000, 192000)),
    channels=st.integers(1, 8),
    subtype=st.sampled_from(SUBTYPES),
    frames=st.integers(1, 3000),
    level=st.floats(-0.9, 0.9),
)
def test_wav_rates_channels_and_depths(work, rate, channels, subtype, frames, level):
    """Constant channels around ``level``: the mono mix keeps their mean, at the resampled length."""
    spread = np.linspace(-0.05, 0.05, channels) if channels > 1 else np.zeros(1)
    path = work / "dc.wav"
    sf.write(path, np.full((frames, channels), level) + spread, rate, subtype=subtype)
    wave = accepted(load_audio, path)
    check_wave(wave, resampled_length(frames, rate))
    margin = 25  # the filter's reach (10 zero crossings at the lower rate), in output samples at 16 kHz
    if len(wave) > 2 * margin:
        np.testing.assert_allclose(wave[margin:-margin].numpy(), level, atol=0.012)  # 8-bit steps: 1/128


@fuzz(30)
@given(
    samples=st.lists(st.floats(-1, 1, width=32), min_size=1, max_size=400),
    bad=st.sampled_from((math.nan, math.inf, -math.inf)),
    where=st.floats(0, 1, exclude_max=True),
    subtype=st.sampled_from(("FLOAT", "DOUBLE")),
)
def test_non_finite_samples_are_refused(work, samples, bad, where, subtype):
    samples[int(where * len(samples))] = bad
    path = work / "nonfinite.wav"
    sf.write(path, np.array(samples), 16000, subtype=subtype)
    refused(load_audio, path, "NaN or infinite")


@fuzz(25)
@given(rate=st.integers(MIN_SAMPLE_RATE, MAX_SAMPLE_RATE), length=st.integers(1, 3000))
def test_resample_any_rate(rate, length):
    """Any pair of rates in the supported range: exact length, unit DC gain, bounded time (coprime rates too)."""
    wave = accepted(lambda _: resample(torch.ones(length), rate, 16000), Path(f"{rate} Hz"), timeout=10.0)
    check_wave(wave, resampled_length(length, rate))
    reach = 10 * max(1, math.ceil(16000 / rate))  # output samples the zero padding outside the clip reaches
    if len(wave) > 2 * reach:
        np.testing.assert_allclose(wave[reach:-reach].numpy(), 1.0, atol=2e-3)


# ---------------------------------------------------------------- empty, truncated, misnamed


@pytest.mark.parametrize("suffix", [".wav", ".mp3", ".mp4", ".png", ".jpg", ""])
@pytest.mark.parametrize("load", [load_audio, load_image], ids=["audio", "image"])
def test_empty_files(tmp_path, load, suffix):
    refused(load, write(tmp_path / f"empty{suffix}", b""), "")


@pytest.mark.parametrize("kind", ["audio", "image"])
@pytest.mark.parametrize("cut", [1, 4, 12, 44, 0.5, -1])
def test_truncated_files(tmp_path, seeds, kind, cut):
    load, check = (load_audio, check_wave) if kind == "audio" else (load_image, check_image)
    for name, data in seeds[kind].items():
        end = int(len(data) * cut) if isinstance(cut, float) else cut if cut > 0 else len(data) + cut
        either(load, write(tmp_path / name, data[:end]), check)


def test_truncated_and_random_videos(tmp_path, seeds, analyse):
    data = seeds["video"]["clip.mp4"]
    for name, blob in [("empty.mp4", b""), ("random.mp4", np.random.default_rng(0).bytes(4096))] + [
        (f"cut{n}.mp4", data[:n]) for n in (8, 100, len(data) // 2, len(data) - 1)
    ]:
        either(analyse, write(tmp_path / name, blob), check_timeline)


def test_wrong_extensions(tmp_path, seeds):
    wav_as_png = write(tmp_path / "sound.png", seeds["audio"]["pcm16.wav"])
    check_wave(accepted(load_audio, wav_as_png), 1600)  # content decides, not the name
    refused(load_image, wav_as_png, "cannot read image")
    png_as_wav = write(tmp_path / "picture.wav", seeds["image"]["rgb.png"])
    check_image(accepted(load_image, png_as_wav), (12, 8))
    refused(load_audio, png_as_wav, "no audio stream")


def test_named_pipe_is_refused_without_blocking(tmp_path, analyse):
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)  # FFmpeg would wait forever for a writer
    for load in (load_audio, load_image, analyse):
        refused(load, fifo, "not a regular file")


# ---------------------------------------------------------------- audio edge cases


@pytest.mark.parametrize("rate", STANDARD_RATES)
@pytest.mark.parametrize("subtype", SUBTYPES)
def test_wav_grid(tmp_path, rate, subtype):
    """Every standard rate with every depth, 1-8 channels, 0.05 s: the resampled length."""
    channels = 1 + (STANDARD_RATES.index(rate) + SUBTYPES.index(subtype)) % 8
    frames = rate // 20
    path = tmp_path / "grid.wav"
    sf.write(path, np.full((frames, channels), 0.25), rate, subtype=subtype)
    check_wave(accepted(load_audio, path), resampled_length(frames, rate))


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 192000])
def test_one_sample(tmp_path, rate):
    path = tmp_path / "one.wav"
    sf.write(path, np.array([0.5]), rate)
    check_wave(accepted(load_audio, path), resampled_length(1, rate))


@pytest.mark.parametrize("rate", [44101, 8001, 191999, 12345])
def test_odd_sample_rates(tmp_path, rate):
    """Rates coprime with 16 kHz have 16000 filter phases: once a multi-gigabyte allocation, now blocks."""
    path = tmp_path / "odd.wav"
    sf.write(path, np.full(rate // 10, 0.5), rate)
    wave = accepted(load_audio, path)
    check_wave(wave, resampled_length(rate // 10, rate))
    np.testing.assert_allclose(wave[20:-20].numpy(), 0.5, atol=1e-3)


@pytest.mark.parametrize("rate", [1, 999, 384_001, 2**31 - 1])
def test_sample_rates_outside_the_supported_range(tmp_path, rate):
    """A header's rate (here patched) outside 1-384 kHz is refused, not resampled into millions of samples."""
    path = tmp_path / "rate.wav"
    sf.write(path, np.full(1600, 0.5), 16000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    data[24:28] = struct.pack("<I", rate)  # the fmt chunk's sample rate
    refused(load_audio, write(path, bytes(data)), f"sample rate {rate} Hz outside")


def test_ten_minutes_at_48khz(tmp_path):
    """28.8 M samples: resampling in blocks keeps memory near the waveform's own size (it once took ~2.3 GB)."""
    path = tmp_path / "long.wav"
    sf.write(path, np.full(48000 * 600, 8192, dtype=np.int16), 48000, subtype="PCM_16")  # 0.25
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    wave = accepted(load_audio, path, timeout=60.0)
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 2**20
    check_wave(wave, 16000 * 600)
    assert abs(float(wave[1000:-1000].mean()) - 0.25) < 1e-3
    assert grown < 1.0, f"peak memory grew by {grown:.1f} GiB"


def test_non_utf8_tags_do_not_block_audio_or_video(tmp_path, analyse):
    """A Latin-1 title once raised UnicodeDecodeError from PyAV's open: tags must not decide readability."""
    marker, latin1 = b"vssl:tag:ABCDEFG", "vssl:tag:café àü".encode("latin-1")  # same length
    source = write_video(tmp_path / "plain.mkv", seconds=1.0, fps=5, size=(32, 24))
    with av.open(str(source)) as plain, av.open(str(tmp_path / "tagged.mkv"), "w") as tagged:
        tagged.metadata["title"] = marker.decode()
        for stream in plain.streams:
            tagged.add_stream_from_template(stream).metadata["title"] = marker.decode()
        for packet in plain.demux():
            if packet.dts is not None:
                packet.stream = tagged.streams[packet.stream.index]
                tagged.mux(packet)
    data = (tmp_path / "tagged.mkv").read_bytes()
    assert data.count(marker) >= 2
    path = write(tmp_path / "latin1.mkv", data.replace(marker, latin1))
    check_wave(accepted(load_audio, path))
    check_timeline(accepted(partial(analyse, out=tmp_path / "overlay.mp4"), path))  # copies the tagged audio


def test_videos_without_audio_or_video(tmp_path, analyse):
    mute = write_video(tmp_path / "mute.mp4", seconds=1.0, fps=5, size=(32, 24), audio=False)
    refused(load_audio, mute, "no audio stream")
    refused(analyse, mute, "no audio stream")  # no silent stand-in: negative audio only when asked for
    check_timeline(accepted(partial(analyse, negative="noise"), mute))
    sound = write_video(tmp_path / "sound.mp4", seconds=1.0, audio=True, video=False)
    check_wave(accepted(load_audio, sound))
    refused(analyse, sound, "no video stream")


# ---------------------------------------------------------------- image edge cases


def _moded(mode: str) -> Image.Image:
    grey = gradient()[..., 0]
    if mode == "L":
        return Image.fromarray(grey)
    if mode == "I;16":
        return Image.fromarray(grey.astype(np.uint16) * 257)
    if mode == "F":
        return Image.fromarray(grey.astype(np.float32))
    if mode == "I":
        return Image.fromarray(grey.astype(np.int32))
    return Image.fromarray(gradient()).convert(mode)


@pytest.mark.parametrize(
    "mode,fmt",
    [
        ("1", "PNG"),
        ("L", "PNG"),
        ("LA", "PNG"),
        ("P", "GIF"),
        ("P", "PNG"),
        ("PA", "TIFF"),
        ("RGBA", "PNG"),
        ("CMYK", "JPEG"),
        ("CMYK", "TIFF"),
        ("I;16", "PNG"),
        ("I;16", "TIFF"),
        ("I", "TIFF"),
        ("F", "TIFF"),
        ("LAB", "TIFF"),
        ("YCbCr", "JPEG"),
    ],
)
def test_image_modes(tmp_path, mode, fmt):
    image = _moded(mode)
    options = {"transparency": 0} if (mode, fmt) == ("P", "PNG") else {}
    path = write(tmp_path / f"mode.{fmt.lower()}", encoded(image, fmt, **options))
    pixels = check_image(accepted(load_image, path), (12, 8))
    if mode in ("L", "I;16"):  # grey levels survive (16-bit scaled, not saturated)
        np.testing.assert_array_equal(pixels[..., 1], gradient()[..., 0])


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "ICO"])
def test_one_pixel_images(tmp_path, fmt):
    path = write(tmp_path / f"dot.{fmt.lower()}", encoded(Image.new("RGB", (1, 1), (200, 10, 10)), fmt))
    if fmt == "ICO":  # Pillow cannot read back the 1x1 icon it writes: a refusal naming the file is right
        either(load_image, path, check_image)
        return
    assert check_image(accepted(load_image, path), (1, 1))[0, 0, 0] > 150


UPRIGHT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    1: lambda a: a,
    2: np.fliplr,
    3: lambda a: np.rot90(a, 2),
    4: np.flipud,
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}
"""EXIF orientation -> how the stored pixels ``[H, W, 3]`` look upright (the EXIF/TIFF specification)."""


@pytest.mark.parametrize("orientation", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 65535])
@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])  # lossless, so pixels can be compared exactly
def test_exif_orientations(tmp_path, orientation, fmt):
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    path = write(tmp_path / f"turned.{fmt.lower()}", encoded(Image.fromarray(gradient()), fmt, exif=exif.tobytes()))
    expected = UPRIGHT.get(orientation, UPRIGHT[1])(gradient())  # invalid values: left as stored
    np.testing.assert_array_equal(check_image(accepted(load_image, path)), expected)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_unparseable_exif_is_refused(tmp_path, fmt):
    """An EXIF block cut inside its TIFF header: ``exif_transpose`` raised struct.error (found by the fuzzer)."""
    blob = encoded(Image.fromarray(gradient()), fmt, exif=b"Exif\x00\x00MM\x00*")
    refused(load_image, write(tmp_path / f"cut_exif.{fmt.lower()}", blob), "unreadable EXIF")


def test_orientation_beside_a_malformed_tag(tmp_path):
    """A text value under a rational tag (XPosition): ``exif_transpose`` read the orientation, then raised
    TypeError rewriting the metadata (found by the fuzzer). The image is turned; the metadata is dropped."""
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[ExifTags.Base.Make] = "maker"
    raw = exif.tobytes().replace(b"\x01\x0f\x00\x02", b"\x01\x1f\x00\x02")  # Make (ASCII) -> XPosition
    path = write(tmp_path / "odd_tag.jpg", encoded(Image.fromarray(gradient()), "JPEG", exif=raw, quality=100))
    pixels = check_image(accepted(load_image, path), (8, 12)).astype(int)
    assert np.abs(pixels - UPRIGHT[6](gradient())).mean() < 3  # JPEG: close, not equal


def blank_png(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of ``width x height`` white-less pixels, small on disk (rows of zeros compress)."""
    row = b"\x00" + bytes((width + 7) // 8)
    deflate = zlib.compressobj(1)
    pixels = b"".join(deflate.compress(row) for _ in range(height)) + deflate.flush()

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@pytest.fixture
def decodes(monkeypatch) -> list[str]:
    """Names of the images Pillow decoded pixels of (``ImageFile.load`` calls) during the test."""
    calls, load = [], ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: calls.append(self.filename) or load(self))
    return calls


def test_huge_images_are_refused_before_decoding(tmp_path, monkeypatch, decodes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        big = write(tmp_path / "12000x12000.png", blank_png(12000, 12000))  # above vssl's 1e8, below Pillow's error
        refused(load_image, big, "12000×12000 pixels, above the limit 100000000")
        huge = write(tmp_path / "20000x20000.png", blank_png(20000, 20000))  # Pillow's own guard (2 x 89.5 M) first
        refused(load_image, huge, "too large")
        assert decodes == []
        monkeypatch.setattr(vision, "MAX_IMAGE_PIXELS", 10)  # the limit is a setting: a 1x1 image passes, 4x4 not
        check_image(accepted(load_image, write(tmp_path / "dot.png", blank_png(1, 1))), (1, 1))
        refused(load_image, write(tmp_path / "four.png", blank_png(4, 4)), "4×4 pixels, above the limit 10")


def test_raised_limits_let_a_huge_image_decode(tmp_path, monkeypatch, decodes):
    """With both limits lifted the header no longer refuses: decoding starts (and here meets a cut file)."""
    monkeypatch.setattr(vision, "MAX_IMAGE_PIXELS", None)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    data = blank_png(20000, 20000)
    refused(load_image, write(tmp_path / "cut.png", data[:2000]), "cannot read image")
    assert len(decodes) == 1
