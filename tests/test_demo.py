import json

from vssl import load_model
from vssl.cli import main
from vssl.data.synth import SynthConfig
from vssl.demo import DemoConfig, demo_config, run_demo
from vssl.models.objectives.sslsan import SSLSaNConfig
from vssl.train.loop import TrainConfig
from vssl.train.pretrain import PretrainConfig
from vssl.train.pretrain_audio import AudioPretrainConfig

TINY_PRETRAIN = PretrainConfig(images=16, held_out=4, epochs=1, batch_size=8)
TINY_AUDIO = AudioPretrainConfig(clips=16, held_out=4, epochs=1, batch_size=8)

METRIC_KEYS = {"thresholds", "ciou", "ap50", "auc", "pia", "aoc", "separability", "f_pos_neg"}
NEGATIVES = {"silence", "noise", "offscreen"}


def _fractions(m: dict) -> list[float]:
    values = [m["ciou"], m["ap50"], m["auc"], m["f_pos_neg"], *m["thresholds"].values()]
    for key in ("pia", "aoc", "separability"):
        values += list(m[key].values())
    return values


def test_tiny_demo_writes_the_promised_report(tmp_path):
    cfg = DemoConfig(
        synth=SynthConfig(n_train=16, n_calibration=8, n_test=8, image_size=64),
        train=TrainConfig(model="test", epochs=1, batch_size=8, lr=1e-3, cache=True),
        eval_batch_size=4,
        pretrain=TINY_PRETRAIN,
        audio_pretrain=TINY_AUDIO,
    )
    report = run_demo(cfg, tmp_path, progress=False)
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk == json.loads(json.dumps(report))
    assert set(on_disk["methods"]) == {"baseline", "sslsan"}
    for m in on_disk["methods"].values():
        assert METRIC_KEYS <= set(m)
        assert set(m["thresholds"]) == {"max", "max10", "maxq3"}
        assert set(m["pia"]) == set(m["aoc"]) == set(m["separability"]) == NEGATIVES
        assert all(0.0 <= v <= 1.0 for v in _fractions(m))
    assert on_disk["protocol"]["map_scale"] == "(cos+1)/2"
    md = (tmp_path / "report.md").read_text()
    assert "separability silence" in md and "maxq3" in md
    for name in ("baseline", "sslsan"):
        assert (tmp_path / "figures" / f"{name}_maxima.png").stat().st_size > 1000
        assert (tmp_path / "figures" / f"{name}_examples.png").stat().st_size > 1000
        model = load_model(tmp_path / "models" / name)
        assert model.cfg.name == "test"
        saved = json.loads((tmp_path / "models" / name / "config.json").read_text())
        assert saved["calibration"]["thresholds"] == on_disk["methods"][name]["thresholds"]
    # A second run reuses data and finished training runs and gives the same numbers.
    again = run_demo(cfg, tmp_path, progress=False)
    assert again["methods"] == report["methods"]


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in d.items():
        out |= _flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value}
    return out


def test_the_arms_differ_only_in_the_negatives_and_ablated_sslsan_is_the_baseline(tmp_path):
    """A fair fight: the two arms' resolved training configs differ in the objective alone, and SSL-SaN with every
    part switched off trains the baseline's weights byte for byte and reports its numbers digit for digit."""
    cfg = DemoConfig(
        synth=SynthConfig(n_train=16, n_calibration=8, n_test=8, image_size=64),
        train=TrainConfig(
            model="test",
            epochs=2,
            batch_size=8,
            lr=1e-3,
            precise_bn_batches=2,
            freeze_image_trunk=True,
            freeze_audio_norm_at=0.5,
        ),
        sslsan=SSLSaNConfig(negative_columns=False, flatness_weight=0.0, level_weight=0.0),
        eval_batch_size=4,
        pretrain=TINY_PRETRAIN,
        audio_pretrain=TINY_AUDIO,
        eval_repeats=2,
    )
    report = run_demo(cfg, tmp_path, progress=False)
    configs = {name: json.loads((tmp_path / "models" / name / "config.json").read_text()) for name in report["methods"]}
    base, ours = (_flat(configs[name]["training"]) for name in ("baseline", "sslsan"))
    assert base.keys() == ours.keys()
    assert {key.split(".")[1] for key in base if base[key] != ours[key]} == {"name", "sslsan"}  # objective.*
    assert report["methods"]["baseline"] == report["methods"]["sslsan"]
    weights = [(tmp_path / "models" / name / "model.safetensors").read_bytes() for name in ("baseline", "sslsan")]
    assert weights[0] == weights[1]


def test_demo_presets_share_the_budget_between_methods():
    quick, full = demo_config(quick=True), demo_config()
    assert quick.synth.n_train < full.synth.n_train
    assert quick.train.model == full.train.model == "small"


def test_demo_cli_rejects_bad_override(tmp_path, caplog):
    assert main(["demo", "--out", str(tmp_path), "train.epochz=1"]) == 2
    assert "epochz" in caplog.text


def test_demo_compares_every_method_with_and_without_sslsan(tmp_path):
    cfg = DemoConfig(
        synth=SynthConfig(n_train=8, n_calibration=4, n_test=4, image_size=64),
        train=TrainConfig(model="test", epochs=1, batch_size=4, lr=1e-3),
        eval_batch_size=4,
        pretrain=TINY_PRETRAIN,
        audio_pretrain=TINY_AUDIO,
        eval_repeats=1,
        compare=("slavc", "fnac", "lvs"),
    )
    report = run_demo(cfg, tmp_path, progress=False)
    expected = {"baseline", "sslsan", "slavc", "sslsan+slavc", "fnac", "sslsan+fnac", "lvs", "sslsan+lvs"}
    assert set(report["methods"]) == expected
    assert load_model(tmp_path / "models" / "sslsan+lvs").cfg.name == "lvs_test"
    assert "sslsan+slavc" in (tmp_path / "report.md").read_text()


def test_demo_rejects_unknown_methods():
    import pytest

    from vssl.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown method"):
        DemoConfig(compare=("clip",)).methods()
