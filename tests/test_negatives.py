import pytest
import torch

from vssl.negatives import NegativeSampler, TrainingNegativesConfig, colored_noise, white_noise


def test_sampler_is_reproducible_per_step_and_in_range():
    sampler = NegativeSampler(TrainingNegativesConfig(num_noise=3), num_samples=1000, seed=5)
    a, b, c = sampler.draw(7), sampler.draw(7), sampler.draw(8)
    assert a.shape == (4, 1000) and torch.equal(a, b) and not torch.equal(a, c)
    assert torch.all(a[0] == 0)  # silence first
    assert a.abs().max() <= 1.0


def test_noise_colours_have_their_spectral_tilt():
    g = torch.Generator().manual_seed(0)
    for color, expect_low_heavy in (("white", False), ("pink", True), ("brown", True)):
        x = colored_noise(4, 16000, color, g)
        power = torch.fft.rfft(x).abs().pow(2).mean(0)
        low, high = power[10:200].mean(), power[4000:8000].mean()
        assert (low > 10 * high) == expect_low_heavy, color
        assert torch.allclose(x.std(dim=1), torch.ones(4), atol=0.05)


def test_white_noise_matches_the_authors_clip_statistics():
    x = white_noise(1, 48000, torch.Generator().manual_seed(0))
    assert x.abs().max() <= 1.0
    assert 0.30 < float((x.abs() == 1.0).double().mean()) < 0.335  # P(|N(0,1)| > 1) = 0.317


def test_unknown_colour_is_refused():
    with pytest.raises(ValueError, match="violet"):
        NegativeSampler(TrainingNegativesConfig(colors=("violet",)), 10, 0)
