"""Tests of the audio front end: decoding, resampling, windowing, log spectrogram."""

from __future__ import annotations

import av
import numpy as np
import pytest
import scipy.signal
import soundfile as sf
import torch

from vssl import audio
from vssl.audio import AudioConfig, center_window, load_audio, log_spectrogram, resample, waveform_to_input
from vssl.errors import MediaError

IS3_NAMES = ["lion_cat_872_cat", "cello_donkey_3905_cello", "chicken_bus_8050_chicken"]


def scipy_log_spectrogram(x: np.ndarray) -> np.ndarray:
    _, _, power = scipy.signal.spectrogram(x, fs=16000, nperseg=512, noverlap=274)
    return np.log(power + 1e-7) / 12


def float32_rounding_bound(waves: torch.Tensor, fft_error_bound) -> np.ndarray:
    """Per element, how far the float32 ``log_spectrogram`` of ``waves`` (default config) may lie from the exact one on
    any CPU.

    The power ``S`` of each bin is within ``fft_error_bound(E) + 4u S`` (``E``: the frame's energy, which the
    one-sided, doubled density sums to; ``4u``: squaring, adding, scaling, doubling); ``log(S + eps) / divisor`` turns
    that into ``dS / (S + eps) / divisor``, plus two roundings of the result.
    """
    cfg, u = AudioConfig(), torch.finfo(torch.float32).eps / 2
    exact = log_spectrogram(waves.double(), cfg)[..., 0, :, :]  # [..., 257, frames]
    power = torch.exp(exact * cfg.log_divisor) - cfg.log_eps
    bound = fft_error_bound(power.sum(-2, keepdim=True), cfg.nperseg) + 4 * u * power
    return (bound / (power + cfg.log_eps) / cfg.log_divisor + 2 * u * exact.abs()).numpy()


def peak_frequency(wave: torch.Tensor, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave.double().numpy() * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / sample_rate)[spectrum.argmax()])


def tone(freq: float, sample_rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * freq * np.arange(int(sample_rate * seconds)) / sample_rate)).astype(
        np.float32
    )


def write_with_pyav(path, samples: np.ndarray, sample_rate: int, codec: str) -> None:
    """Encode mono float samples ``[T]`` into a container PyAV picks from the suffix."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=sample_rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="fltp", layout="mono")
        frame.sample_rate = sample_rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


# ---------------------------------------------------------------- config


def test_config_derived_sizes():
    cfg = AudioConfig()
    assert (cfg.num_samples, cfg.hop, cfg.num_freqs, cfg.num_frames) == (48000, 238, 257, 200)


# ---------------------------------------------------------------- reference agreement


@pytest.mark.parametrize("name", IS3_NAMES)
def test_spectrogram_matches_ezvsl_reference(fixtures_dir, name, fft_error_bound):
    reference = np.load(fixtures_dir / "reference" / "ezvsl_seeded_reference.npz")[f"{name}/spectrogram"]
    wav = fixtures_dir / "real" / "is3plus" / f"{name}.wav"
    ours = waveform_to_input(wav)
    assert ours.shape == (1, 257, 200)
    # The reference (float64) reads 16-bit PCM as /32767, soundfile as /32768: powers (32768/32767)^2 apart at most.
    scale = 2 * np.log(32768 / 32767) / AudioConfig().log_divisor
    bound = float32_rounding_bound(center_window(load_audio(wav), AudioConfig()), fft_error_bound) + scale + 1e-12
    assert (np.abs(ours[0].numpy() - reference) <= bound).all()


def test_spectrogram_matches_scipy_batched(fft_error_bound):
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.uniform(-1, 1, size=(3, 48000)) * np.array([[1.0], [0.01], [0.3]])).float()
    ours = log_spectrogram(x)
    assert ours.shape == (3, 1, 257, 200) and ours.dtype == torch.float32
    bound = float32_rounding_bound(x, fft_error_bound) + 1e-12  # scipy's float64: exact at this scale
    assert (np.abs(ours[:, 0].numpy() - scipy_log_spectrogram(x.double().numpy())) <= bound).all()


def test_spectrogram_float64_and_single_wave():
    x = torch.randn(48000, dtype=torch.float64) * 0.1
    ours = log_spectrogram(x)
    assert ours.shape == (1, 257, 200) and ours.dtype == torch.float64
    assert np.abs(ours[0].numpy() - scipy_log_spectrogram(x.numpy())).max() <= 1e-10


def test_spectrogram_float32_under_autocast():
    x = torch.randn(2, 48000) * 0.1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = log_spectrogram(x)
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, log_spectrogram(x))


def test_spectrogram_rejects_too_short_input():
    with pytest.raises(ValueError, match="nperseg"):
        log_spectrogram(torch.zeros(100))


# ---------------------------------------------------------------- resampling


@pytest.mark.parametrize(
    "orig_sr,new_sr", [(44100, 16000), (48000, 16000), (8000, 16000), (22050, 16000), (16000, 11025)]
)
def test_resample_matches_scipy_resample_poly(orig_sr, new_sr):
    x = np.random.default_rng(1).standard_normal((2, 5001))
    ours = resample(torch.from_numpy(x), orig_sr, new_sr).numpy()
    expected = scipy.signal.resample_poly(x, new_sr, orig_sr, axis=-1)
    assert ours.shape == expected.shape
    assert np.abs(ours - expected).max() <= 1e-3


@pytest.mark.parametrize("orig_sr,freq", [(8000, 1000.0), (48000, 3000.0), (44100, 440.0)])
def test_resample_keeps_a_pure_tone(orig_sr, freq):
    wave = resample(torch.from_numpy(tone(freq, orig_sr, 2.0)), orig_sr, 16000)
    assert wave.dtype == torch.float32 and len(wave) == 32000
    assert abs(peak_frequency(wave, 16000) - freq) <= 1.0
    middle = wave[1000:-1000]  # away from the zero-padded edges
    assert abs(middle.abs().max().item() - 0.5) < 0.01


def test_resample_removes_content_above_the_new_nyquist():
    wave = resample(torch.from_numpy(tone(12000.0, 48000, 1.0)), 48000, 16000)
    assert wave[500:-500].abs().max() < 0.01


def test_resample_same_rate_is_a_copy():
    x = torch.randn(10)
    y = resample(x, 16000, 16000)
    assert torch.equal(x, y) and y.data_ptr() != x.data_ptr()


# ---------------------------------------------------------------- centre window


def test_center_window_start_index_and_tiling():
    cfg = AudioConfig()
    wave = torch.arange(160125, dtype=torch.float32)
    window = center_window(wave, cfg)
    assert window.shape == (48000,) and window[0] == 56062  # int(160125 / 2 - 24000)
    short = torch.arange(19072, dtype=torch.float32)
    tiled = center_window(short, cfg)
    assert tiled.shape == (48000,)
    assert torch.equal(tiled, short.repeat(3)[:48000])
    batch = center_window(torch.randn(2, 1000), cfg)
    assert batch.shape == (2, 48000)
    with pytest.raises(ValueError, match="empty"):
        center_window(torch.zeros(0), cfg)


# ---------------------------------------------------------------- loading real files


def test_load_vggss_float_44k(fixtures_dir):
    wave = load_audio(fixtures_dir / "real" / "vggss" / "0F04c_rY4aw_000000.wav")
    assert wave.dtype == torch.float32 and wave.shape == (48000,)
    assert torch.isfinite(wave).all() and wave.abs().max() <= 1.0 + 1e-6
    assert waveform_to_input(wave).shape == (1, 257, 200)


def test_load_avsbench_stereo_mixes_to_mono(fixtures_dir):
    path = fixtures_dir / "real" / "avsbench_s4" / "0UN02RkbG_U.wav"
    wave = load_audio(path)
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    assert rate == 16000 and data.shape[1] == 2
    assert wave.shape == (data.shape[0],)
    np.testing.assert_allclose(wave.numpy(), data.mean(axis=1), atol=1e-7)


def test_load_short_is3_clip_is_tiled(fixtures_dir):
    wave = load_audio(fixtures_dir / "real" / "is3plus" / "lion_cat_872_cat.wav")
    assert wave.shape == (19072,)
    window = center_window(wave)
    assert window.shape == (48000,)
    assert torch.equal(window[19072 : 2 * 19072], wave)


def test_load_negatives(fixtures_dir):
    silence = load_audio(fixtures_dir / "real" / "negatives" / "silence.wav")
    noise = load_audio(fixtures_dir / "real" / "negatives" / "noise.wav")
    assert silence.shape == noise.shape == (48000,)
    assert silence.abs().max() == 0
    assert 0.1 < noise.std() < 1.0 and noise.abs().max() <= 1.0
    spec = waveform_to_input(silence)  # same front end as positives, log included
    torch.testing.assert_close(spec, torch.full_like(spec, float(np.log(1e-7) / 12)))


# ---------------------------------------------------------------- loading written files


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "FLOAT"])
def test_load_wav_subtypes(tmp_path, subtype):
    samples = tone(440.0, 16000, 1.0)
    path = tmp_path / f"tone_{subtype}.wav"
    sf.write(path, samples, 16000, subtype=subtype)
    wave = load_audio(path)
    assert wave.dtype == torch.float32 and wave.shape == (16000,)
    np.testing.assert_allclose(wave.numpy(), samples, atol=1e-4)


def test_load_multichannel_clips_then_averages(tmp_path):
    data = np.stack([np.full(800, 0.2), np.full(800, -0.4), np.full(800, 3.0), np.full(800, 0.0)], axis=1)
    path = tmp_path / "four_channels.wav"
    sf.write(path, data.astype(np.float32), 16000, subtype="FLOAT")
    wave = load_audio(path)
    np.testing.assert_allclose(wave.numpy(), np.full(800, (0.2 - 0.4 + 1.0 + 0.0) / 4), atol=1e-6)


def test_load_flac_resamples_48k(tmp_path):
    path = tmp_path / "tone.flac"
    sf.write(path, tone(3000.0, 48000, 1.0), 48000)
    wave = load_audio(path)
    assert wave.shape == (16000,)
    assert abs(peak_frequency(wave, 16000) - 3000.0) <= 1.0


@pytest.mark.parametrize(
    "suffix,codec,needs_pyav",
    [(".m4a", "aac", True), (".mp4", "aac", True), (".mkv", "pcm_s16le", True), (".mp3", "libmp3lame", False)],
)
def test_load_compressed_and_video_containers(tmp_path, monkeypatch, suffix, codec, needs_pyav):
    path = tmp_path / f"tone{suffix}"
    write_with_pyav(path, tone(1000.0, 44100, 1.0), 44100, codec)
    calls = []
    decode = audio._decode_with_pyav
    monkeypatch.setattr(audio, "_decode_with_pyav", lambda *args: calls.append(args) or decode(*args))
    wave = load_audio(path)
    if needs_pyav:  # mp3 may go either way: libsndfile >= 1.1 reads it itself
        assert calls, "expected the PyAV fallback to decode this file"
    assert wave.dtype == torch.float32 and abs(len(wave) - 16000) < 1000  # codecs may pad a little
    assert abs(peak_frequency(wave, 16000) - 1000.0) <= 2.0


# ---------------------------------------------------------------- bad files


def _assert_media_error(path, match: str = ""):
    with pytest.raises(MediaError, match=match) as info:
        load_audio(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    _assert_media_error(tmp_path / "nope.wav", "not found")


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.touch()
    _assert_media_error(path, "empty")


def test_random_bytes(tmp_path):
    path = tmp_path / "garbage.wav"
    path.write_bytes(np.random.default_rng(2).bytes(4096))
    _assert_media_error(path, "cannot decode")


def test_wav_without_samples(tmp_path):
    path = tmp_path / "no_frames.wav"
    sf.write(path, np.zeros((0, 1), dtype=np.float32), 16000)
    _assert_media_error(path, "no samples")


def test_nan_samples(tmp_path):
    path = tmp_path / "nan.wav"
    samples = tone(440.0, 16000, 0.1)
    samples[10] = np.nan
    sf.write(path, samples, 16000, subtype="FLOAT")
    _assert_media_error(path, "NaN")


def test_video_without_audio_stream(tmp_path):
    path = tmp_path / "silent_film.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(3):
            image = np.full((32, 32, 3), 40 * i, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    _assert_media_error(path, "no audio stream")
