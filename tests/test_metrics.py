import numpy as np
import pytest
import torch

from vssl.evaluation import metrics as M
from vssl.evaluation.gt import box_map, pixel_boxes
from vssl.evaluation.thresholds import calibrate
from vssl.maps import upsample


def _ciou_reference(pred: np.ndarray, gt: np.ndarray) -> float:
    return float(np.sum(pred * gt) / (np.sum(gt) + np.sum(pred * (gt == 0))))


def test_ciou_matches_the_obvious_formula():
    rng = np.random.default_rng(0)
    pred = rng.random((5, 224, 224)) > 0.6
    gt = (rng.random((5, 224, 224)) > 0.7).astype(np.float64) * rng.choice([0.5, 1.0], size=(5, 224, 224))
    ours = M.ciou(torch.from_numpy(pred), torch.from_numpy(gt))
    for i in range(5):
        assert ours[i].item() == pytest.approx(_ciou_reference(pred[i], gt[i]), abs=1e-12)


def test_ap50_and_auc_on_known_values():
    cious = torch.tensor([0.0, 0.5, 1.0, 0.25])
    assert M.ap50(cious) == 0.5
    # fraction >= x: 1 at x=0, then 3/4 up to 0.25, 1/2 up to 0.5, 1/4 up to 1.0
    xs = np.linspace(0, 1, 21)
    ys = [np.mean(cious.numpy() >= x - 1e-12) for x in xs]
    assert M.auc(cious) == pytest.approx(np.trapezoid(ys, xs), abs=1e-12)


def test_median_binarize_keeps_the_top_half():
    maps = torch.rand(3, 224, 224)
    kept = M.median_binarize(maps).flatten(1).sum(1)
    assert torch.all((kept >= 224 * 224 // 2 - 1) & (kept <= 224 * 224 // 2 + 1))


def test_pia_aoc_and_flat_maps():
    flat_low = torch.zeros(4, 224, 224)
    assert torch.all(M.pia(flat_low, 0.5) == 0)
    assert M.aoc(M.pia(flat_low, 0.5)) == pytest.approx(1.0)
    full = torch.ones(4, 224, 224)
    assert M.aoc(M.pia(full, 0.5)) == pytest.approx(0.025)  # only t = 1 counts: half a trapezoid of width 0.05


def test_roc_auc_matches_a_pairwise_count():
    rng = np.random.default_rng(1)
    pos, neg = rng.normal(1, 1, 50), rng.normal(0, 1, 70)
    expected = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert M.roc_auc(torch.from_numpy(pos), torch.from_numpy(neg)) == pytest.approx(expected)
    assert M.roc_auc(torch.ones(3), torch.ones(3)) == 0.5


def test_upsample_preserves_corners_and_never_exceeds_the_max():
    maps = torch.rand(2, 7, 7)
    up = upsample(maps)
    assert up.shape == (2, 224, 224)
    assert torch.allclose(up[:, 0, 0], maps[:, 0, 0]) and torch.allclose(up[:, -1, -1], maps[:, -1, -1])
    assert torch.all(up.flatten(1).amax(1) <= maps.flatten(1).amax(1) + 1e-6)  # 223 steps miss most 7x7 nodes


def test_box_gt_maps_union_and_flickr_consensus():
    boxes = pixel_boxes([(0.0, 0.0, 0.5, 0.5), (0.25, 0.25, 0.75, 0.75)])
    vggss, flickr = box_map(boxes, "vggss"), box_map(boxes, "flickr")
    assert vggss.sum() == 112 * 112 * 2 - 56 * 56
    assert flickr.max() == 1.0 and flickr.sum() == (112 * 112 * 2 - 56 * 56 * 2) * 0.5 + 56 * 56
    assert box_map([], "vggss").sum() == 0


def test_calibration_thresholds():
    maps = torch.zeros(4, 2, 2)
    for i, v in enumerate([0.1, 0.2, 0.3, 0.4]):
        maps[i, 0, 1] = v
    t = calibrate(maps)
    assert t["max"] == pytest.approx(0.25) and t["max10"] == pytest.approx(0.275)
    assert t["maxq3"] == pytest.approx(np.percentile([0.1, 0.2, 0.3, 0.4], 75))
    with pytest.raises(ValueError):
        calibrate(torch.zeros(0, 2, 2))
