"""``vssl score``: maps of any framework against GT.json; malformed inputs get named errors."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from vssl.cli import main
from vssl.errors import ConfigError, VsslError
from vssl.evaluation import metrics as M
from vssl.evaluation import segmentation as seg
from vssl.evaluation.gt import GroundTruth
from vssl.evaluation.retrieval import recall_at_k
from vssl.evaluation.score_files import score_files
from vssl.evaluation.scoring import MapSet, ScoreConfig, score
from vssl.evaluation.summary import summarise
from vssl.maps import to_unit_scale, upsample


def _write(tmp_path, maps: dict, gt: list, name="maps.npz"):
    np.savez(tmp_path / name, **maps)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    return tmp_path / name, tmp_path / "gt.json"


def _random_maps(n=6, seed=0, size=7):
    rng = np.random.default_rng(seed)
    return {k: rng.uniform(-1, 1, (n, size, size)).astype(np.float32) for k in ("positive", "silence", "noise")}


GT6 = [{"boxes": [[10, 20, 120, 200]], "gt_style": "vggss"}] * 4 + [{"boxes": [], "gt_style": "vggss"}] * 2


def test_cli_writes_the_promised_keys(tmp_path):
    maps, gt = _write(tmp_path, _random_maps(), GT6)
    assert main(["score", "--maps", str(maps), "--gt", str(gt), "--out", str(tmp_path / "r.json")]) == 0
    res = json.loads((tmp_path / "r.json").read_text())
    for key in ("median_ap50", "median_auc", "universal_ciou_mean", "universal_ap50", "universal_auc"):
        assert 0 <= res["positive"][key] <= 1
    for neg in ("silence", "noise"):
        assert set(res["negatives"][neg]) >= {"pia", "aoc", "iou_with_positive"}
    assert set(res["slavc"]) >= {"precision", "ap", "max_f1", "auc_visible"}
    assert {"f_pos_neg", "f_auc_aoc", "n", "threshold", "protocol"} <= set(res)
    assert res["n"] == {"samples": 6, "visible": 4, "non_visible": 2, "negatives": {"silence": 6, "noise": 6}}
    assert "own negatives" in res["threshold_source"]


def test_non_finite_thresholds_are_refused(tmp_path, capsys):
    maps, gt = _write(tmp_path, _random_maps(), GT6)
    out = tmp_path / "r.json"
    for value in ("nan", "inf"):
        with pytest.raises(SystemExit) as exit_:
            main(["score", "--maps", str(maps), "--gt", str(gt), "--out", str(out), "--threshold", value])
        assert exit_.value.code == 2 and not out.exists()
        assert f"argument --threshold: must be a finite number, got '{value}'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="threshold must be a finite number, got nan"):
        score_files(maps, gt, ScoreConfig(), threshold=float("nan"))


def test_threshold_sources(tmp_path):
    maps, gt = _write(tmp_path, _random_maps(), GT6)
    given, _ = score_files(maps, gt, ScoreConfig(), threshold=0.7)
    assert given["threshold"] == 0.7 and given["threshold_source"] == "given"
    np.savez(tmp_path / "cal.npz", silence=np.full((3, 7, 7), -1.0), noise=np.full((3, 7, 7), 0.0))
    cal, _ = score_files(maps, gt, ScoreConfig(rule="max"), calibration_path=tmp_path / "cal.npz")
    assert cal["threshold"] == pytest.approx(0.25)  # mean of maxima 0 and 0.5 on (cos+1)/2
    np.savez(tmp_path / "pos_only.npz", positive=_random_maps()["positive"])
    with pytest.raises(VsslError, match="no threshold"):
        score_files(tmp_path / "pos_only.npz", gt, ScoreConfig())


@pytest.mark.parametrize(
    ("maps", "gt", "message"),
    [
        ({"positive": np.zeros((5, 7, 7))}, GT6, "5 maps but .* 6 entries"),
        ({"positive": np.full((6, 7, 7), np.nan)}, GT6, "NaN"),
        ({"positive": np.zeros((6, 7, 7)), "noise": np.zeros((6, 5, 5))}, GT6, "shape"),
        ({"positive": np.zeros((6, 7, 7)), "speech": np.zeros((6, 7, 7))}, GT6, "unknown arrays"),
        ({"positive": np.zeros((6, 7))}, GT6, r"\[N, H, W\]"),
        ({"positive": np.zeros((6, 7, 7))}, [{"boxes": [[0, 0, 300, 10]]}] * 6, "outside"),
        ({"positive": np.zeros((6, 7, 7))}, [{"boxes": [[0, 0, 10, 10]], "gt_style": "coco"}] * 6, "gt_style"),
        ({"positive": np.zeros((6, 7, 7))}, [{"boxes": [[0, 0, float("nan"), 10]]}] * 6, "non-finite"),
        ({"positive": np.zeros((6, 7, 7))}, [], "non-empty"),
        ({"positive": np.zeros((6, 7, 7))}, [{"box": []}] * 6, "unknown keys"),
    ],
)
def test_malformed_inputs_are_named(tmp_path, maps, gt, message):
    paths = _write(tmp_path, maps, gt)
    with pytest.raises(VsslError, match=message) as err:
        score_files(*paths, ScoreConfig(), threshold=0.5)
    assert str(tmp_path) in str(err.value) or "maps" in str(err.value)


def test_degenerate_boxes_are_reported_not_clipped(tmp_path):
    gt = [{"boxes": [[50, 50, 50, 90], [10, 10, 60, 60]]}] + GT6[1:]
    res, per = score_files(*_write(tmp_path, _random_maps(), gt), ScoreConfig(), threshold=0.5)
    assert len(res["gt_issues"]) == 1 and "degenerate" in res["gt_issues"][0] and "entry 0" in res["gt_issues"][0]
    assert per.positive["area"][0] == 50 * 50


def test_masks_give_avsbench_metrics(tmp_path):
    mask = np.zeros((224, 224), np.uint8)
    mask[50:150, 60:160] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    Image.fromarray(np.zeros_like(mask)).save(tmp_path / "empty.png")
    perfect = np.where(mask > 0, 1.0, -1.0)[None].repeat(2, 0)
    perfect[1] = -1.0  # predicts nothing where there is nothing: background IoU 1
    res, _ = score_files(
        *_write(tmp_path, {"positive": perfect}, [{"mask": "m.png"}, {"mask": "empty.png"}]),
        ScoreConfig(),
        threshold=0.5,
    )
    assert res["avsbench"]["miou"] == pytest.approx(1.0) and res["avsbench"]["n"] == 2
    # as in the reference, an empty mask has precision = recall = 0 at every threshold: mean P = R = 1/2
    assert res["avsbench"]["f_measure"] == pytest.approx(0.5)
    with pytest.raises(VsslError, match="missing.png"):
        score_files(
            *_write(tmp_path, {"positive": perfect}, [{"mask": "missing.png"}] * 2), ScoreConfig(), threshold=0.5
        )


def test_f_measure_uses_the_whole_set():
    """The same samples in any batching give the same F (the reference's per-batch average did not)."""
    maps, masks = torch.rand(6, 20, 20).double(), torch.rand(6, 20, 20) > 0.6
    p, r = seg.precision_recall_curves(maps, masks)
    whole = seg.f_measure(p, r)
    p2, r2 = zip(*(seg.precision_recall_curves(maps[s], masks[s]) for s in (slice(0, 2), slice(2, 6))), strict=True)
    assert seg.f_measure(torch.cat(p2), torch.cat(r2)) == whole


def test_is3_groups_take_the_worse_source():
    gt = GroundTruth(
        boxes=[[(0, 0, 112, 224)], [(112, 0, 224, 224)]] * 2,
        styles=["vggss"] * 4,
        masks=[None] * 4,
        groups=["a", "a", "b", "b"],
    )
    left = torch.full((7, 7), -1.0)
    left[:, :4] = 1.0
    pos = torch.stack([left, left, left, left.flip(1)])  # group a: second source missed; group b: both right
    per = score(MapSet(positive=pos), gt, 0.5, ScoreConfig())
    res = summarise(per, gt, 0.5, "given", {})
    assert res["is3"]["universal"]["iiou"] == 0.5 and res["is3"]["universal"]["groups"] == 2


def test_adaptive_keeps_the_object_area():
    maps = torch.rand(3, 224, 224).double()
    kept = M.adaptive_binarize(maps, torch.tensor([100, 5000, 0])).flatten(1).sum(1)
    assert kept.tolist() == [100, 5000, 0]


def test_retrieval_recall():
    sim = torch.eye(4) + 0.01 * torch.arange(4.0)[None, :]
    r = recall_at_k(sim)
    assert r["image_to_audio_r@1"] == 1.0 and r["audio_to_image_r@1"] == 1.0
    assert recall_at_k(torch.zeros(20, 20))["image_to_audio_r@10"] == 0.0  # ties count against the query


@pytest.mark.parametrize(("map_scale", "size"), [("cosine", 7), ("unit", 14), ("cosine", 224)])
def test_closed_form_path_equals_the_dense_path(tmp_path, map_scale, size):
    """The default (fastmaps) per-sample values are those of the materialised maps: flat maps, ties, thresholds
    equal to a pixel value, empty and Flickr ground truth, mask samples mixed in (which take the dense path)."""
    g = torch.Generator().manual_seed(size)
    n = 24
    maps = torch.rand(n, size, size, generator=g, dtype=torch.float64) * 2 - 1
    maps[0] = 0.2
    maps[1] = maps[1].round(decimals=1)
    maps[2, :, : size // 2] = -0.5
    if map_scale == "unit":
        maps = (maps + 1) / 2
    negatives = {"silence": maps.flip(0)[:20], "noise": torch.rand(30, size, size, generator=g).double()}
    owners = {"silence": torch.arange(20), "noise": torch.randint(0, n, (30,), generator=g)}
    Image.fromarray(np.pad(np.full((40, 60), 255, np.uint8), 50)).save(tmp_path / "m.png")
    boxes = [[(10 * i % 150, 5 * i % 120, 10 * i % 150 + 60, 5 * i % 120 + 90)] * (1 + i % 3) for i in range(n)]
    boxes[3], boxes[4] = [], [(0, 0, 224, 224)]
    masks = [tmp_path / "m.png" if i in (5, 6) else None for i in range(n)]
    boxes[5] = []
    gt = GroundTruth(boxes=boxes, styles=["flickr" if i % 2 else "vggss" for i in range(n)], masks=masks)
    t = float(to_unit_scale(upsample(maps[7:8]))[0, 50, 60]) if map_scale == "cosine" else 0.6
    mapset = MapSet(positive=maps, negatives=negatives, owners=owners)
    fast = score(mapset, gt, t, ScoreConfig(map_scale=map_scale))
    dense = score(mapset, gt, t, ScoreConfig(map_scale=map_scale, fast=False))
    assert fast.positive.keys() == dense.positive.keys()
    for key, value in dense.positive.items():
        tol = 1e-12 if key == "confidence" else 0
        torch.testing.assert_close(fast.positive[key], value, rtol=0, atol=tol, equal_nan=True, msg=key)
    for name, values in dense.negatives.items():
        for key, value in values.items():
            torch.testing.assert_close(fast.negatives[name][key], value, rtol=0, atol=0, msg=f"{name} {key}")
