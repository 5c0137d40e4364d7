"""``vssl eval`` end to end on the synthetic benchmark, and the map-computation contract."""

import csv
import json
import shutil

import pytest
import torch

from vssl import save_release
from vssl.cli import main
from vssl.data.formats import read_items
from vssl.data.synth import SynthConfig, generate
from vssl.errors import VsslError
from vssl.evaluation.maps import compute_maps
from vssl.evaluation.run import EvalConfig, run_eval
from vssl.models.registry import create_model
from vssl.models.release import read_release_config

TINY = SynthConfig(n_train=4, n_calibration=6, n_test=8, image_size=64)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    spec = "synth:" + str(generate(TINY, root / "data", progress=False))
    torch.manual_seed(0)
    model_dir = save_release(create_model("test"), root / "model")
    return spec, model_dir


def test_maps_share_work_and_pool_repeats(setup):
    spec, model_dir = setup
    from vssl import load_model

    items = read_items(spec, "test")
    run = compute_maps(load_model(model_dir), items, batch_size=3, seed=5, progress=False, repeats=3)
    n = len(items)
    assert run.maps["positive"].shape[0] == n and run.maps["silence"].shape[0] == n
    assert run.maps["noise"].shape[0] == 3 * n and run.maps["offscreen"].shape[0] == 3 * n
    assert run.seeds == [5000, 5001, 5002] and len(run.offscreen_source) == 3 * n
    assert torch.equal(run.owners["noise"], torch.arange(n).repeat(3))
    for j, source in enumerate(run.offscreen_source):  # an offscreen clip never sounds a class of its frame
        item = items[j % n]
        partner = next(it for it in items if it.id == source)
        assert partner.label not in set(item.classes) | {item.label}
    # retrieval matrix diagonal = positive map maxima at native resolution
    assert torch.allclose(run.similarity.diagonal(), run.maps["positive"].flatten(1).amax(1), atol=1e-6)
    again = compute_maps(load_model(model_dir), items, batch_size=8, seed=5, progress=False, repeats=3)
    for cond in run.maps:  # batch size does not change any map; seeds reproduce the negatives
        assert torch.allclose(run.maps[cond], again.maps[cond], atol=1e-5)


def test_eval_writes_report_csv_figures_and_calibration(setup, tmp_path):
    spec, model_dir = setup
    cfg = EvalConfig(model=str(model_dir), data=spec, repeats=2, batch_size=4, write_calibration=True)
    report = run_eval(cfg, tmp_path / "out", progress=False)
    out = tmp_path / "out"
    saved = json.loads((out / "report.json").read_text())
    res = saved["result"]
    assert saved["protocol"]["map_scale"] == "(cos+1)/2" and res["negative_seeds"] == [0, 1]
    assert res["n"]["samples"] == 8 and res["n"]["negatives"] == {"silence": 8, "noise": 16, "offscreen": 16}
    for key in ("median_ap50", "median_auc", "universal_ciou_mean", "universal_ap50", "universal_auc"):
        assert 0.0 <= res["positive"][key] <= 1.0
    for neg in ("silence", "noise", "offscreen"):
        assert set(res["negatives"][neg]) >= {"pia", "aoc", "iou_with_positive", "separability"}
    assert {"image_to_audio_r@1", "audio_to_image_r@10"} <= set(res["retrieval"])
    assert res["threshold"] == pytest.approx(res["thresholds"]["maxq3"])
    with open(out / "per_sample.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 and {"id", "ciou_universal", "noise_pia", "offscreen_iou_with_positive"} <= set(rows[0])
    for fig in ("maxima.png", "threshold_curves.png", "examples.png"):
        assert (out / "figures" / fig).stat().st_size > 1000
    assert "## Negative audio" in (out / "report.md").read_text()
    stored = read_release_config(model_dir)["calibration"]
    assert stored["thresholds"] == pytest.approx(report["result"]["thresholds"])
    # the stored calibration is then usable without a calibration split
    again = run_eval(
        EvalConfig(model=str(model_dir), data=spec, repeats=2, calibration_split=None), tmp_path / "o2", False
    )
    assert again["result"]["threshold"] == pytest.approx(res["threshold"])


def test_eval_cli_and_errors(setup, tmp_path, caplog):
    spec, model_dir = setup
    code = main(
        [
            "eval",
            "--model",
            str(model_dir),
            "--data",
            spec,
            "--out",
            str(tmp_path / "r"),
            "--repeats",
            "1",
            "--no-progress",
        ]
    )
    assert code == 0 and (tmp_path / "r" / "report.json").exists()
    fresh = save_release(create_model("test"), tmp_path / "fresh")
    with pytest.raises(VsslError, match="no stored calibration"):
        run_eval(EvalConfig(model=str(fresh), data=spec, calibration_split=None), tmp_path / "x", False)
    assert (
        main(
            [
                "eval",
                "--model",
                str(model_dir),
                "--data",
                spec.replace("synth:", "synth:/nonexistent"),
                "--out",
                str(tmp_path / "y"),
            ]
        )
        == 2
    )
    with pytest.raises(VsslError, match="empty"):
        compute_maps(create_model("test"), [], progress=False)


@pytest.mark.parametrize("method", ["ezvsl", "slavc", "icassp25"])
def test_eval_reports_with_and_without_ogl(setup, tmp_path, method):
    from torchvision.models import resnet18

    spec, model_dir = setup
    torch.manual_seed(1)
    weights = tmp_path / "resnet18.pth"
    torch.save(resnet18(weights=None).state_dict(), weights)  # a local file: tests never download
    cfg = EvalConfig(model=str(model_dir), data=spec, repeats=1, ogl=str(weights), ogl_method=method)
    res = run_eval(cfg, tmp_path / "out", progress=False)["result"]
    ogl = res["ogl"]
    assert ogl["protocol"]["ogl"].startswith(method) and ogl["protocol"]["input_map_scale"] == "unit"
    assert ogl["n"] == res["n"] and 0 <= ogl["positive"]["universal_ciou_mean"] <= 1
    if method == "ezvsl":  # every mixed map is min-max normalised: silence reaches 1 like the positives do
        assert ogl["negatives"]["silence"]["separability"] < 0.75
    assert "With OGL" in (tmp_path / "out" / "report.md").read_text()


def test_eval_reports_every_split_s_exclusions_and_never_skips_an_unreadable_file(setup, tmp_path):
    from vssl.data.formats.report import ItemList, ReadReport
    from vssl.errors import MediaError
    from vssl.evaluation.run import item_accounting

    spec, model_dir = setup
    report = run_eval(EvalConfig(model=str(model_dir), data=spec, repeats=1), tmp_path / "out", progress=False)
    assert {s: (a["evaluated"], a["excluded"]) for s, a in report["items"].items()} == {
        "test": (8, 0),
        "calibration": (6, 0),
    }
    assert "Split test: 8 items evaluated, 0 excluded" in (tmp_path / "out" / "report.md").read_text()
    read = ReadReport("vggss", tmp_path, "test")
    read.add("no boxes", "a", "the annotation lists no box", excluded=True)
    read.add("garbage value", "b", "box 0 'x' is not 4 numbers", excluded=True)
    read.add("garbage value", "b", "box 1 'y' is not 4 numbers", excluded=True)
    read.add("degenerate box", "c", "box 1 has zero width; dropped", excluded=False)
    items = read_items(spec, "test")
    acc = item_accounting(ItemList(items, read))
    assert acc["evaluated"] == 8 and acc["excluded"] == 2
    assert acc["excluded_by_reason"] == {"garbage value": 1, "no boxes": 1} and len(acc["excluded_items"]) == 3
    broken = tmp_path / "broken"  # a copy of the data with one unreadable test clip
    shutil.copytree(items[5].audio.parent.parent, broken)
    (broken / "audio" / items[5].audio.name).write_bytes(b"RIFF not really a wav")
    with pytest.raises(MediaError, match=rf"{items[5].audio.name}: .*evaluation never leaves an item out"):
        run_eval(EvalConfig(model=str(model_dir), data=f"synth:{broken}", repeats=1), tmp_path / "x", False)
    assert not (tmp_path / "x" / "report.json").exists()
