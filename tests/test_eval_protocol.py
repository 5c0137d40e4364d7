"""Evaluating like the papers, without leaks: disjoint calibration, equal negative weights, stated provenance,
the ICASSP'25 protocol and its published thresholds."""

import json
import logging

import numpy as np
import pytest
import torch
from layouts import vggss_root

from vssl import save_release
from vssl.cli import main
from vssl.data.formats import read_items
from vssl.data.synth import SynthConfig, generate
from vssl.errors import ConfigError, VsslError
from vssl.evaluation.maps import REFERENCE_SEEDS, NegativeAudio, compute_maps
from vssl.evaluation.run import EvalConfig, resolve, run_eval
from vssl.evaluation.scoring import ScoreConfig, calibrate_maps
from vssl.evaluation.thresholds import PUBLISHED_THRESHOLDS
from vssl.models.convert import convert
from vssl.models.registry import create_model
from vssl.models.release import load_model

TINY = SynthConfig(n_train=2, n_calibration=4, n_test=6, image_size=64)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("protocol")
    spec = "synth:" + str(generate(TINY, root / "data", progress=False))
    torch.manual_seed(0)
    return spec, save_release(create_model("test"), root / "model")


@pytest.fixture(scope="module")
def converted_ezvsl(tmp_path_factory):
    """A `vssl convert`ed official-format EZ-VSL checkpoint (``{'model': {'module.imgnet...': ...}}``)."""
    root = tmp_path_factory.mktemp("official")
    torch.manual_seed(3)
    official = {"model": {f"module.{k}": v for k, v in create_model("resnet18").state_dict().items()}, "epoch": 20}
    torch.save(official, root / "ezvsl_vggss.pth")
    return convert(root / "ezvsl_vggss.pth", "ezvsl", root / "ezvsl")


def test_a_calibration_split_sharing_test_items_is_refused(setup, tmp_path, caplog):
    spec, model = setup
    with pytest.raises(VsslError, match=r"calibration split 'test' shares 6 of its 6 items with the evaluated split"):
        run_eval(EvalConfig(model=str(model), data=spec, calibration_split="test"), tmp_path / "out", progress=False)
    with caplog.at_level(logging.ERROR):
        code = main(
            ["eval", "--model", str(model), "--data", spec, "--out", str(tmp_path / "cli")]
            + ["--split", "calibration", "--calibration-split", "calibration", "--no-progress"]
        )
    assert code != 0
    (line,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "'calibration'" in line and "leak" in line and "\n" not in line
    assert not (tmp_path / "out" / "report.json").exists()


def test_vggss_test_leaves_out_the_calibration_list(tmp_path):
    entries = [{"file": i, "class": "dog", "bbox": [[0.1, 0.1, 0.5, 0.5]]} for i in "abcd"]
    root = vggss_root(tmp_path / "vggss", entries)
    assert [it.id for it in read_items(f"vggss:{root}", "test")] == ["a", "b", "c", "d"]
    (root / "calibration.txt").write_text("b\nd\n")
    test = read_items(f"vggss:{root}", "test")
    assert [it.id for it in test] == ["a", "c"]
    assert {(i.kind, i.item) for i in test.report.issues} == {
        ("in calibration list", "b"),
        ("in calibration list", "d"),
    }
    assert [it.id for it in read_items(f"vggss:{root}", "calibration")] == ["b", "d"]
    assert len(read_items(f"vggss:{root}", "all")) == 4


def test_each_negative_type_weighs_alike_in_calibration():
    """2 silence maps at cosine 0.9 against 6 noise (-0.5) and 6 offscreen (0.0) maps: on (cos+1)/2 the type
    maxima are 0.95, 0.25, 0.5. Equal weights: mean (0.95 + 0.25 + 0.5) / 3; every map alike: 2:6:6."""
    maps = {
        "silence": torch.full((2, 7, 7), 0.9),
        "noise": torch.full((6, 7, 7), -0.5),
        "offscreen": torch.zeros(6, 7, 7),
    }
    level = {"silence": 0.95, "noise": 0.25, "offscreen": 0.5}
    eps = 1e-6  # float32 maps (0.9 is not exact in float32: 2.4e-8), then float64 arithmetic
    equal = calibrate_maps(maps, ScoreConfig(negative_pool="equal"))
    assert equal["max"] == pytest.approx(sum(level.values()) / 3, abs=eps)
    assert equal["maxq3"] == pytest.approx(np.quantile(np.repeat(list(level.values()), 6), 0.75), abs=eps)
    every = calibrate_maps(maps, ScoreConfig(negative_pool="maps"))
    assert every["max"] == pytest.approx((2 * 0.95 + 6 * 0.25 + 6 * 0.5) / 14, abs=eps)
    with pytest.raises(VsslError, match="negative_pool 'some' unknown"):
        ScoreConfig(negative_pool="some")


def test_every_report_says_where_its_thresholds_and_negatives_came_from(setup, tmp_path):
    spec, model = setup
    report = run_eval(EvalConfig(model=str(model), data=spec, repeats=2, write_calibration=True), tmp_path / "a", False)
    source = report["thresholds"]
    assert (source["source"], source["split"], source["items"]) == ("calibration split", "calibration", 4)
    assert source["negative_seeds"] == [0, 1] and "each negative type weighs alike" in source["pool"]
    assert report["protocol"]["negative_seeds"].startswith("seed*1000 + repeat (ours)")
    assert "4 items" in report["result"]["threshold_source"]
    stored = run_eval(EvalConfig(model=str(model), data=spec, calibration_split=None, repeats=2), tmp_path / "b", False)
    assert stored["thresholds"]["source"] == "model folder"
    assert "stored with" in stored["protocol"]["threshold"] and "split calibration" in stored["protocol"]["threshold"]
    published = EvalConfig(model=str(model), data=spec, threshold="published:ezvsl", write_calibration=True)
    with pytest.raises(VsslError, match="come from the published"):
        run_eval(published, tmp_path / "c", progress=False)


def test_reference_seeds_and_the_published_negative_spectrograms(setup):
    spec, model_dir = setup
    model, items = load_model(model_dir), read_items(spec, "test")
    ours = compute_maps(model, items, progress=False, repeats=3)
    reference = NegativeAudio(seeds="reference", noise="unclipped", log=False)
    published = compute_maps(model, items, progress=False, repeats=3, negatives=reference)
    assert published.seeds == list(REFERENCE_SEEDS[:3]) and ours.seeds == [0, 1, 2]
    assert torch.equal(published.maps["positive"], ours.maps["positive"])  # only the negatives change
    assert not torch.allclose(published.maps["silence"], ours.maps["silence"])
    assert "without the log" in reference.describe()["silence"]
    with pytest.raises(ConfigError, match="reference' hold 10 seeds"):
        compute_maps(model, items, progress=False, repeats=11, negatives=NegativeAudio(seeds="reference"))


def test_icassp25_protocol_picks_the_scale_of_the_models_family():
    for size, scale in (("test", "unit"), ("slavc_test", "unit"), ("lvs_test", "cosine")):
        cfg = resolve(EvalConfig(protocol="icassp25", repeats=3), create_model(size))
        assert (cfg.score.threshold_scale, cfg.repeats, cfg.negatives.seeds, cfg.negatives.noise) == (
            scale,
            10,
            "reference",
            "unclipped",
        )
        assert cfg.negatives.log  # ours, unless asked: the published bug is a separate flag
    cfg = resolve(EvalConfig(threshold="published:lvs"), create_model("test"))
    assert cfg.score.threshold_scale == "cosine"  # the scale LVS's thresholds were published on
    with pytest.raises(ConfigError, match="published:ezvsl, published:slavc"):
        resolve(EvalConfig(threshold="published:nope"), create_model("test"))


def test_icassp25_with_published_thresholds_on_a_converted_official_checkpoint(
    setup, converted_ezvsl, tmp_path, capsys
):
    spec, _ = setup
    out = tmp_path / "icassp25"
    args = ["eval", "--model", str(converted_ezvsl), "--data", spec, "--out", str(out), "--no-progress"]
    args += ["--calibration-split", "absent"]  # published thresholds read no calibration split
    assert main([*args, "--protocol", "icassp25", "--threshold", "published:ezvsl", "--skip-negative-log"]) == 0
    report = json.loads((out / "report.json").read_text())
    protocol, result = report["protocol"], report["result"]
    assert protocol["protocol"].startswith("ICASSP'25")
    assert protocol["map_scale"] == "(cos+1)/2"
    assert result["thresholds"] == PUBLISHED_THRESHOLDS["ezvsl"][1]
    assert result["threshold"] == PUBLISHED_THRESHOLDS["ezvsl"][1]["maxq3"]
    assert result["negative_seeds"] == list(REFERENCE_SEEDS)
    assert "unclipped" in protocol["negative_noise"] and "a bug" in protocol["negative_silence"]
    assert report["thresholds"]["source"] == "published" and "published for ezvsl" in protocol["threshold"]
    assert "ICASSP'25" in capsys.readouterr().out  # the printed report names the protocol
