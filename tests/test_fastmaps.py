"""fastmaps: closed-form statistics of upsampled maps equal the pixel-level ones on ``metrics.upsample``."""

from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vssl.evaluation import fastmaps as fm
from vssl.evaluation import metrics as M
from vssl.evaluation import slavc
from vssl.evaluation.gt import box_map
from vssl.maps import minmax as layer_minmax
from vssl.maps import to_unit_scale, upsample

SHAPES = [(7, 7), (14, 14), (5, 9), (2, 3), (1, 5), (6, 1)]
P = fm.PIXELS


def make_maps(n: int, h: int, w: int, seed: int) -> torch.Tensor:
    """Random maps with the hard cases: a constant map, ties (one decimal), a flat block, equal rows."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, h, w, generator=g, dtype=torch.float64) * 2 - 1
    x[0] = 0.3
    x[1] = x[1].round(decimals=1)
    x[2, :, : (w + 1) // 2] = -0.25
    x[3] = x[3, :1]
    x[4] = x[4].round()
    return x


def thresholds(up: torch.Tensor, seed: int) -> list[torch.Tensor]:
    """Per map: random, an exact pixel value (a tie), its neighbours 1 ulp away and 1e-9 relative away."""
    g = torch.Generator().manual_seed(seed)
    flat = up.flatten(1)
    value = flat[torch.arange(len(flat)), torch.randint(0, P, (len(flat),), generator=g)]
    return [
        torch.rand(len(flat), generator=g, dtype=torch.float64) * 2 - 1,
        value,
        torch.nextafter(value, value + 1),
        torch.nextafter(value, value - 1),
        value * (1 + 1e-9),
    ]


def above(up: torch.Tensor, t: torch.Tensor, strict: bool) -> torch.Tensor:
    t = t.view(-1, *[1] * (up.dim() - 1))
    return up > t if strict else up >= t


def random_boxes(n: int, seed: int) -> tuple[list, list]:
    g = torch.Generator().manual_seed(seed)

    def r(lo: int, hi: int) -> int:
        return int(torch.randint(lo, hi, (1,), generator=g))

    boxes = [[(r(-5, 230), r(-5, 230), r(0, 235), r(0, 235)) for _ in range(r(1, 5))] for _ in range(n)]
    boxes[0] = []
    boxes[1] = [(0, 0, 224, 224)]
    boxes[2] = [(10, 10, 100, 100), (10, 10, 100, 100), (50, 50, 60, 60)]
    boxes[3] = [(30, 40, 30, 90), (80, 20, 60, 10)]  # degenerate: cover nothing
    return boxes, ["flickr" if r(0, 2) else "vggss" for _ in range(n)]


def test_axis_weights_are_those_of_torch():
    for n in (1, 2, 3, 5, 7, 9, 14, 28, 30, 59, 64, 117, 223):
        eye = torch.eye(n, dtype=torch.float64)[:, None, None]
        weights = F.interpolate(eye, size=(1, fm.SIZE), mode="bilinear", align_corners=True)[:, 0, 0].T
        assert torch.equal(fm._axis_matrix(n), weights), n


def test_emulation_reproduces_every_pixel():
    if not fm.emulation_matches_torch():
        pytest.skip("this torch build computes otherwise: fastmaps takes the pixels from upsample instead")
    for h, w in SHAPES:
        x = make_maps(5, h, w, seed=h * w)
        n, i, j = (
            t.flatten() for t in torch.meshgrid(*(torch.arange(s) for s in (5, fm.SIZE, fm.SIZE)), indexing="ij")
        )
        assert torch.equal(fm._emulate(x, n, i, j), upsample(x)[n, i, j]), (h, w)


def test_fma_is_correctly_rounded():
    """Against exact rational arithmetic, including cancellations (c ~ -a * b) and halfway cases."""
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(3000, generator=g, dtype=torch.float64) for _ in range(2))
    c = torch.randn(3000, generator=g, dtype=torch.float64) * 10.0 ** torch.randint(-20, 5, (3000,), generator=g)
    c[:1000] = -(a[:1000] * b[:1000]) + c[:1000] * 1e-20
    c[1000:1500] = -(a[1000:1500] * b[1000:1500])
    b[1500:2000] = 0.5
    exact = [
        float(Fraction(x) * Fraction(y) + Fraction(z)) for x, y, z in zip(*(v.tolist() for v in (a, b, c)), strict=True)
    ]
    assert torch.equal(fm._fma(a, b, c), torch.tensor(exact, dtype=torch.float64))


@pytest.mark.parametrize("shape", SHAPES)
def test_counts_are_exact(shape):
    x1, x2 = make_maps(32, *shape, seed=1), make_maps(32, *shape, seed=2)
    up1, up2 = upsample(x1), upsample(x2)
    maps1 = fm.Maps(x1)
    for t in thresholds(up1, seed=4) + thresholds(up2, seed=5)[1:3]:
        for strict in (True, False):
            p1, p2 = above(up1, t, strict), above(up2, t, strict)
            assert torch.equal(fm.count_above(maps1, t, strict), p1.flatten(1).sum(1))
            counts = fm.pair_counts_above(maps1, x2, t, strict)
            assert torch.equal(counts, torch.stack([p1, p2, p1 & p2], 1).flatten(2).sum(2))


@pytest.mark.parametrize("shape", SHAPES[:4])
def test_ground_truth_sums_are_exact(shape):
    x = make_maps(32, *shape, seed=12)
    up = upsample(x)
    boxes, styles = random_boxes(32, seed=3)
    gt = fm.Boxes.from_lists(boxes, styles)
    g = torch.stack([box_map(b, s) for b, s in zip(boxes, styles, strict=True)])
    sums = torch.stack([g.sum((1, 2)), (g == 0).sum((1, 2)).double(), (g > 0).sum((1, 2)).double()], 1)
    assert torch.equal(gt.sums, sums)
    for t in thresholds(up, seed=13)[:3]:
        for strict in (True, False):
            p = above(up, t, strict)
            weighted = torch.stack([(p * g).sum((1, 2)), (p & (g == 0)).sum((1, 2)).double()], 1)
            assert torch.equal(fm.weighted_count_above(x, t, gt, strict), weighted)
            assert torch.equal(fm.ciou_above(x, t, gt, strict), M.ciou(p, g))


@pytest.mark.parametrize("shape", SHAPES[:4])
def test_order_statistics_are_exact(shape):
    x = make_maps(40, *shape, seed=6)
    ordered = upsample(x).flatten(1).sort(1).values
    maps = fm.Maps(x)
    for k in (0, 1, P // 4, P // 2, 3 * P // 4, P - 1):
        assert torch.equal(fm.kth_smallest(maps, k), ordered[:, k]), k
    k = torch.randint(0, P, (40,), generator=torch.Generator().manual_seed(7))
    assert torch.equal(fm.kth_smallest(maps, k), ordered[torch.arange(40), k])
    lo, hi = fm.value_range(maps)
    assert torch.equal(lo, ordered[:, 0]) and torch.equal(hi, ordered[:, -1])
    for k in (1, 100, P // 4, P):
        top = ordered[:, P - k :]
        assert ((fm.sum_top_k(maps, k) - top.sum(1)).abs() <= 1e-14 * top.abs().sum(1)).all(), k
    assert torch.equal(fm.sum_top_k(maps, 0), torch.zeros(40, dtype=torch.float64))


def test_protocols_on_other_scales_are_exact():
    """Unit scale (cos + 1) / 2, SLAVC min-max >= 0.5, the EZ-VSL median on the min-max map, the confidence."""
    x = make_maps(48, 7, 7, seed=8)
    boxes, styles = random_boxes(48, seed=9)
    gt, g = fm.Boxes.from_lists(boxes, styles), torch.stack([box_map(b, s) for b, s in zip(boxes, styles, strict=True)])
    unit = to_unit_scale(upsample(x))
    maps = fm.Maps(x)
    for t in (0.6, 0.5783327735797819, float(unit[5, 100, 37])):
        assert torch.equal(fm.count_above(maps, t, post=to_unit_scale), (unit > t).flatten(1).sum(1))
        assert torch.equal(fm.ciou_above(maps, t, gt, strict=False, post=to_unit_scale), M.ciou(unit >= t, g))
    lo, hi = (to_unit_scale(v) for v in fm.value_range(maps))
    span = hi - lo

    def minmax(v: torch.Tensor) -> torch.Tensor:
        u = to_unit_scale(v)
        return torch.where(span > 0, (u - lo) / span.clamp(min=torch.finfo(torch.float64).tiny), u)

    norm = layer_minmax(unit)  # the map layer's min-max, not the local one
    assert torch.equal(fm.ciou_above(maps, 0.5, gt, strict=False, post=minmax), M.ciou(norm >= 0.5, g))
    median = fm.kth_smallest(maps, P // 2)
    assert torch.equal(fm.ciou_above(maps, minmax(median), gt, False, minmax), M.ciou(M.median_binarize(norm), g))
    assert torch.equal(
        fm.ciou_above(maps, to_unit_scale(median), gt, False, to_unit_scale), M.ciou(M.median_binarize(unit), g)
    )
    confidence = to_unit_scale(fm.sum_top_k(maps, P // 4) / (P // 4))
    assert (confidence - slavc.confidence(unit)).abs().max() <= 1e-12


def test_reference_fixture_maps(fixtures_dir):
    arrays = dict(np.load(fixtures_dir / "reference" / "metrics_reference.npz"))
    t = 0.5783327735797819
    for name in ("pos", "silence", "noise", "offscreen"):
        x = torch.from_numpy(arrays[f"{name}_7x7"])  # float32 maps, upsampled in float64
        unit = to_unit_scale(upsample(x.double()))
        assert torch.equal(fm.count_above(x, t, post=to_unit_scale), (unit > t).flatten(1).sum(1)), name
        if name != "pos":
            pia = fm.count_above(x, t, post=to_unit_scale).double() / P
            np.testing.assert_allclose(pia.numpy(), arrays[f"pia_{name}"], rtol=0, atol=1e-6)
        ordered = unit.flatten(1).sort(1).values
        assert torch.equal(to_unit_scale(fm.kth_smallest(x, P // 2)), ordered[:, P // 2])


def test_without_emulation_pixels_come_from_upsample(monkeypatch):
    monkeypatch.setattr(fm, "emulation_matches_torch", lambda: False)
    x = make_maps(12, 7, 7, seed=10)
    up = upsample(x)
    for t in thresholds(up, seed=11):
        assert torch.equal(fm.count_above(x, t), (up > t[:, None, None]).flatten(1).sum(1))
    assert torch.equal(fm.kth_smallest(x, P // 2), up.flatten(1).sort(1).values[:, P // 2])


def test_threshold_inversion_and_errors():
    """The raw threshold is the smallest double passing ``post`` (rounding of ``v + 1`` included)."""
    v = torch.tensor([-1.0, 0.2, 0.5, 1.0], dtype=torch.float64)
    for value in (0.6, 2.0, -2.0, 0.5783327735797819):
        for strict in (True, False):
            t = fm.raw_threshold(value, 4, strict, to_unit_scale)
            ok, below = to_unit_scale(t), to_unit_scale(torch.nextafter(t, t - 1))
            assert ((ok > value) & (below <= value)).all() if strict else ((ok >= value) & (below < value)).all()
    for value, bound in ((2.0, torch.inf), (-2.0, -torch.inf)):  # no value / every value passes
        assert torch.equal(fm.raw_threshold(value, 4, True, lambda v: v.clamp(-1, 1)), torch.full((4,), bound))
    assert torch.equal(fm.raw_threshold(v, 4, False), v)
    with pytest.raises(ValueError):
        fm.kth_smallest(torch.zeros(1, 7, 7), P)
    assert fm.count_above(torch.zeros(0, 7, 7), 0.5).numel() == 0


def test_boxes_refuse_a_box_without_four_numbers():
    with pytest.raises(ValueError, match="4 numbers"):
        fm.Boxes.from_lists([[(0, 0, 10, 10)], [(0, 0, 10, 10, 5), (1, 2, 3)]], ["vggss", "flickr"])
