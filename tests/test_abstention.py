"""(ours) The abstention measures of the demo's headline, on maps made by hand."""

import pytest
import torch

from vssl.evaluation.abstention import abstention_metrics, inside_any, peak_points, tpr_at_fpr
from vssl.maps import EVAL_SIZE, to_unit_scale, upsample
from vssl.negatives import UNSEEN_FAMILIES, unseen_noise


def test_the_peak_is_the_argmax_of_the_upsampled_map():
    maps = torch.randn(20, 7, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    up = upsample(maps)
    flat = up.flatten(1).argmax(1)
    points = peak_points(maps)
    # the 224-pixel argmax is one of the two pixels around the grid node the peak is placed at (per axis)
    assert torch.allclose(points[:, 0] * EVAL_SIZE, (flat % EVAL_SIZE).double() + 0.5, atol=1.0)
    assert torch.allclose(points[:, 1] * EVAL_SIZE, (flat // EVAL_SIZE).double() + 0.5, atol=1.0)


def test_inside_any_and_tpr():
    points = torch.tensor([[0.1, 0.1], [0.5, 0.5], [0.9, 0.2]])
    boxes = [[(0.0, 0.0, 0.2, 0.2)], [(0.6, 0.6, 0.9, 0.9), (0.4, 0.4, 0.6, 0.6)], []]
    assert inside_any(points, boxes).tolist() == [True, True, False]
    negative = torch.arange(100, dtype=torch.float64) / 100  # 95th percentile 0.9405
    assert tpr_at_fpr(torch.tensor([0.5, 0.95, 0.99, 0.2]), negative) == pytest.approx(0.5)


def test_a_map_lighting_up_a_silent_object_is_a_hallucination():
    """Two items, each frame with a sounding object (top left) and a silent one (bottom right). Silence maps peak
    on the silent object for item 0 and on the background for item 1: hallucination 1/2."""

    def peaked(row: int, col: int, value: float) -> torch.Tensor:
        m = torch.full((7, 7), -0.5)
        m[row, col] = value
        return m

    objects = [[(0.0, 0.0, 0.3, 0.3), (0.7, 0.7, 1.0, 1.0)]] * 2
    maps = {
        "positive": torch.stack([peaked(0, 0, 0.8), peaked(1, 1, 0.6)]),
        "silence": torch.stack([peaked(6, 6, 0.2), peaked(3, 0, -0.2)]),
    }
    peaks = {name: to_unit_scale(value.flatten(1).amax(1)) for name, value in maps.items()}
    owners = {"silence": torch.arange(2)}
    out = abstention_metrics(peaks, maps, owners, objects, [[o[0]] for o in objects], torch.ones(2, dtype=torch.bool))
    assert out["hallucination"] == {"silence": 0.5}
    assert out["pointing"] == 1.0  # both positive peaks on the sounding object
    assert out["below_half"] == {"positive": 0.0, "silence": 0.5}  # cosine 0.2 > 0, -0.2 <= 0
    assert out["median_peak"]["positive"] == pytest.approx(0.8)  # (0.6 + 1) / 2, the lower middle value
    assert out["tpr_at_5fpr"]["silence"] == 1.0


def test_unknown_objects_give_no_hallucination_rate():
    maps = {"positive": torch.zeros(2, 7, 7), "noise": torch.zeros(2, 7, 7)}
    peaks = {name: torch.full((2,), 0.5) for name in maps}
    out = abstention_metrics(peaks, maps, {"noise": torch.arange(2)}, [[], []], [[], []], torch.ones(2).bool())
    assert out["hallucination"] == {"noise": None}


@pytest.mark.parametrize("family", sorted(UNSEEN_FAMILIES))
def test_unseen_noise_families_are_seeded_and_at_their_level(family):
    a = unseen_noise(family, 2, 16000, torch.Generator().manual_seed(1))
    b = unseen_noise(family, 2, 16000, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == (2, 16000) and a.abs().max() <= 1.0
    rms = a.square().mean(dim=1).sqrt()
    assert torch.allclose(rms, torch.full((2,), 0.1), rtol=0.05)  # -20 dBFS (rain's drops may clip a little)
    with pytest.raises(ValueError, match="unknown noise family"):
        unseen_noise("thunder", 1, 100, torch.Generator())
