"""``vssl eval`` end to end on a small tree of every dataset format (trees built as in test_formats)."""

import json

import pytest
import torch
from layouts import VGGSS_ENTRIES, flickr_xml, is3_root, vggss_root, write_image, write_mask, write_wav

from vssl import save_release
from vssl.data.formats.avsbench import FRAME_INDEX
from vssl.evaluation.run import EvalConfig, run_eval
from vssl.models.registry import create_model


def _vggss(tmp_path, fixtures_dir):
    return f"vggss:{vggss_root(tmp_path / 'vggss')}"


def _flickr(tmp_path, fixtures_dir):
    root = tmp_path / "flickr"
    for i, box in enumerate([(0, 0, 128, 128), (64, 64, 192, 192), (10, 20, 200, 250)]):
        write_image(root / "frames" / f"{i}.jpg", (256, 256), 60 * i)
        write_wav(root / "audio" / f"{i}.wav")
        (root / "Annotations").mkdir(exist_ok=True)
        (root / "Annotations" / f"{i}.xml").write_text(flickr_xml([box, (0, 0, 100, 100)]))
    return f"flickr:{root}"


def _is3(tmp_path, fixtures_dir):
    names = ["lion_cat_872_cat", "lion_cat_872_lion", "chicken_bus_8050_chicken", "chicken_bus_8050_bus"]
    return f"is3:{is3_root(tmp_path / 'is3', fixtures_dir / 'real' / 'is3plus', names)}"


def _avsbench(tmp_path, fixtures_dir):
    root = tmp_path / "Multi-sources"
    root.mkdir()
    (root / "ms3_meta_data.csv").write_text("video_id,split\nvidA,test\nvidB,test\nvidC,test\n")
    data = root / "ms3_data"
    for video, box in (("vidA", (0, 0, 40, 30)), ("vidB", None), ("vidC", (10, 10, 70, 50))):
        write_image(data / "visual_frames" / video / f"{video}.mp4_{FRAME_INDEX}.png", (80, 60))
        write_wav(data / "audio_wav" / "test" / f"{video}.wav", 5.0)
        write_mask(data / "gt_masks" / "test" / video / f"{video}_{FRAME_INDEX}.png", box, mode="P")
    return f"avsbench:{root}"


def _slavc(tmp_path, fixtures_dir):
    root = vggss_root(tmp_path / "vggss", VGGSS_ENTRIES[:1] + VGGSS_ENTRIES[2:4])
    write_image(root / "frames" / "hhhhhhhhhhh_000070.jpg")
    write_wav(root / "audio" / "iiiiiiiiiii_000080.wav")
    (root / "vggss_test_plus_silent.csv").write_text(
        "video,audio,label\nhhhhhhhhhhh_000070,iiiiiiiiiii_000080,non-sounding\n"
    )
    return f"slavc:{root}"


def _vggsound(tmp_path, fixtures_dir):
    root = tmp_path / "vggsound"
    for i in range(3):
        write_image(root / "frames" / f"abcdefghij{i}_00000{i}.jpg", value=50 * i)
        write_wav(root / "audio" / f"abcdefghij{i}_00000{i}.wav")
    return f"vggsound:{root}"


def _folder(tmp_path, fixtures_dir):
    root = tmp_path / "mine"
    for name in ("a", "b", "c"):
        write_image(root / f"{name}.jpg", value=ord(name))
        write_wav(root / f"{name}.wav")
    return f"folder:{root}"


BUILDERS = {
    "vggss": _vggss,
    "flickr": _flickr,
    "is3": _is3,
    "avsbench": _avsbench,
    "slavc": _slavc,
    "vggsound": _vggsound,
    "folder": _folder,
}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    stored = {"thresholds": {"max": 0.52, "max10": 0.572, "maxq3": 0.55}, "map_scale": "(cos+1)/2", "data": "held out"}
    return save_release(create_model("test"), tmp_path_factory.mktemp("model") / "m", extra={"calibration": stored})


@pytest.mark.parametrize("fmt", sorted(BUILDERS))
def test_eval_runs_on_every_format(fmt, tmp_path, fixtures_dir, model_dir):
    spec = BUILDERS[fmt](tmp_path, fixtures_dir)
    split = "all" if fmt in ("vggsound",) else ("train" if fmt == "folder" else "test")
    # thresholds stored with the model: a split calibrating itself would leak (vssl eval refuses it)
    cfg = EvalConfig(model=str(model_dir), data=spec, split=split, calibration_split=None, repeats=1, batch_size=2)
    report = run_eval(cfg, tmp_path / "out", progress=False)
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    res = saved["result"]
    assert res["n"]["samples"] >= 3 and (tmp_path / "out" / "per_sample.csv").exists()
    assert report["result"]["negatives"]["silence"]["pia"] is not None
    if fmt == "is3":
        assert res["is3"]["universal"]["groups"] == 2
    if fmt == "avsbench":
        assert res["avsbench"]["n"] == 3
    if fmt == "slavc":
        assert res["n"]["non_visible"] == 1
    if fmt in ("vggsound", "folder"):
        assert res["n"]["visible"] == 0 and res["positive"]["universal_ap50"] is None
