"""Dataset readers: layouts built in tmp_path with the field's known defects, and real files decoded through them."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
from layouts import VGGSS_ENTRIES, flickr_xml, is3_root, vggss_root, write_image, write_mask, write_wav
from PIL import Image

from vssl.audio import AudioConfig
from vssl.data.dataset import AVDataset
from vssl.data.formats import READERS, ItemList, read_items
from vssl.data.formats.avsbench import FRAME_INDEX, mask_box
from vssl.data.formats.is3 import parse_name
from vssl.data.formats.vggsound import canonical_clip_id, parse_vggsound_id
from vssl.data.items import AVItem
from vssl.errors import DatasetError
from vssl.vision import ImageConfig


def _decode(items: list[AVItem]) -> list[tuple[torch.Size, torch.Size]]:
    dataset = AVDataset(items, ImageConfig(), AudioConfig())
    return [(dataset.load_image(i).shape, dataset.load_wave(i).shape) for i in range(len(items))]


def test_every_format_is_registered_and_specs_are_checked(tmp_path):
    assert set(READERS) == {"synth", "vggsound", "vggss", "flickr", "is3", "avsbench", "slavc", "folder"}
    with pytest.raises(DatasetError, match="FORMAT:ROOT"):
        read_items("vggss", "test")
    with pytest.raises(DatasetError, match="unknown format 'coco'"):
        read_items(f"coco:{tmp_path}", "test")
    for fmt in READERS:
        with pytest.raises(DatasetError, match="nowhere"):
            read_items(f"{fmt}:{tmp_path / 'nowhere'}", "test")


# ----------------------------------------------------------------------------------------------- VGG-SS


def test_vggss_reports_garbage_and_degenerate_boxes_and_never_clips_silently(tmp_path, caplog):
    root = vggss_root(tmp_path / "vggss")
    with caplog.at_level(logging.INFO):
        items = read_items(f"vggss:{root}", "test")
    assert isinstance(items, ItemList)
    by_id = {item.id: item for item in items}
    assert sorted(by_id) == ["aaaaaaaaaaa_000000", "ccccccccccc_000020", "fffffffffff_000050"]
    first = by_id["aaaaaaaaaaa_000000"]
    assert first.boxes == ((0.1, 0.2, 0.5, 0.6), (0.6, 0.1, 0.9, 0.4))
    assert (first.label, first.classes, first.gt_style) == ("dog barking", ("dog barking",), "vggss")
    assert by_id["ccccccccccc_000020"].boxes == ((0.1, 0.1, 0.4, 0.4),)  # the degenerate box is dropped
    assert by_id["fffffffffff_000050"].boxes == ((0.0, 0.0, 1.0, 0.5),)  # within a pixel: clipped, reported
    report = items.report
    assert report.counts() == {
        "garbage value": 1,
        "degenerate box": 2,
        "no boxes": 1,
        "clipped to frame": 1,
        "out of frame": 1,
    }
    assert report.excluded_ids() == [
        "bbbbbbbbbbb_000010",
        "ddddddddddd_000030",
        "eeeeeeeeeee_000040",
        "ggggggggggg_000060",
    ]
    assert "-2.88e+16" in report.of_kind("garbage value")[0].detail
    assert "excluded 4" in report.summary()
    assert "garbage value" in caplog.text and "bbbbbbbbbbb_000010" in caplog.text


def test_vggss_subset_lists_and_errors_name_the_file_or_field(tmp_path):
    root = vggss_root(tmp_path / "vggss")
    (root / "heard.txt").write_text("aaaaaaaaaaa_000000\nzzzzzzzzzzz_000000\n")
    items = read_items(f"vggss:{root}", "heard")
    assert [i.id for i in items] == ["aaaaaaaaaaa_000000"]
    assert items.report.of_kind("no annotation")[0].item == "zzzzzzzzzzz_000000"
    with pytest.raises(DatasetError, match=r"unheard\.txt: missing file"):
        read_items(f"vggss:{root}", "unheard")
    (root / "frames" / "aaaaaaaaaaa_000000.jpg").unlink()
    with pytest.raises(DatasetError, match=r"frames/aaaaaaaaaaa_000000\.jpg"):
        read_items(f"vggss:{root}", "test")
    (root / "vggss.json").write_text(json.dumps([{"file": "x", "class": "cat"}]))
    with pytest.raises(DatasetError, match=r"vggss\.json: entry 0 \(x\) has no field 'bbox'"):
        read_items(f"vggss:{root}", "test")
    (root / "vggss.json").unlink()
    with pytest.raises(DatasetError, match=r"vggss\.json: missing file"):
        read_items(f"vggss:{root}", "test")


def test_real_vggss_clip_decodes_through_the_reader(tmp_path, fixtures_dir):
    src = fixtures_dir / "real" / "vggss"
    root = tmp_path / "vggss"
    for sub, ext in (("frames", "jpg"), ("audio", "wav")):
        (root / sub).mkdir(parents=True)
        shutil.copy(src / f"0F04c_rY4aw_000000.{ext}", root / sub)
    entry = {"file": "0F04c_rY4aw_000000", "class": "people crowd", "bbox": [[0.2, 0.1, 0.8, 0.9]]}
    (root / "vggss.json").write_text(json.dumps([entry]))
    items = read_items(f"vggss:{root}", "test")
    assert sf.info(str(items[0].audio)).samplerate == 44100
    assert _decode(items) == [(torch.Size([3, 224, 224]), torch.Size([48000]))]


# ----------------------------------------------------------------------------------------------- VGGSound


def test_vggsound_ids_are_split_by_position():
    assert parse_vggsound_id("---g-f_I2yQ_000001") == ("---g-f_I2yQ", 1)
    assert parse_vggsound_id("_-_5kbw2Mcw_000000@2.5") == ("_-_5kbw2Mcw", 0)
    assert parse_vggsound_id("my_clip") is None
    assert parse_vggsound_id("---g-f_I2yQ-000001") is None
    assert canonical_clip_id("---g-f_I2yQ_30000_40000") == "---g-f_I2yQ_000030"
    assert canonical_clip_id("---g-f_I2yQ_000030") == "---g-f_I2yQ_000030"
    assert canonical_clip_id("holiday_2019") == "holiday_2019"


def test_vggsound_scan_lists_labels_and_missing_files(tmp_path):
    root = tmp_path / "vggsound"
    ids = ["---g-f_I2yQ_000001", "_-_5kbw2Mcw_000000", "a-b_c-d_e-f_000300"]
    for item_id in ids:
        write_image(root / "frames" / f"{item_id}.jpg")
        write_wav(root / "audio" / f"{item_id}.wav")
    write_image(root / "frames" / "lonely_frame_000000.jpg")
    everything = read_items(f"vggsound:{root}", "all")
    assert [i.id for i in everything] == sorted(ids)
    assert everything.report.excluded_ids() == ["lonely_frame_000000"]
    with pytest.raises(DatasetError, match=r"train\.txt: missing file"):
        read_items(f"vggsound:{root}", "train")
    (root / "vggsound_10k.txt").write_text("---g-f_I2yQ_000001.mp4\nnot_downloaded_000001\n")
    subset = read_items(f"vggsound:{root}", "vggsound_10k")
    assert [i.id for i in subset] == ["---g-f_I2yQ_000001"]  # training sets tolerate lost clips, and say so
    assert subset.report.of_kind("missing file")[0].item == "not_downloaded_000001"
    (root / "vggsound.csv").write_text("---g-f_I2yQ,1,people marching,test\n_-_5kbw2Mcw,0,dog barking,train\n")
    test = read_items(f"vggsound:{root}", "test")
    assert [(i.id, i.label, i.classes) for i in test] == [
        ("---g-f_I2yQ_000001", "people marching", ("people marching",))
    ]
    assert [i.label for i in read_items(f"vggsound:{root}", "all")] == ["people marching", "dog barking", None]


# ----------------------------------------------------------------------------------------------- Flickr


def test_flickr_keeps_every_annotator_box_and_names_unannotated_items(tmp_path, caplog):
    root = tmp_path / "flickr"
    for item_id in ("1001", "1002", "1003", "1004"):
        write_image(root / "frames" / f"{item_id}.jpg", (256, 256))
        write_wav(root / "audio" / f"{item_id}.wav")
    (root / "Annotations").mkdir()
    (root / "Annotations" / "1001.xml").write_text(flickr_xml([(0, 0, 128, 128), (64, 64, 192, 192), (0, 0, 256, 256)]))
    (root / "Annotations" / "1002.xml").write_text(flickr_xml([(32, 32, 96, 160)], named=True))
    (root / "Annotations" / "1004.xml").write_text(flickr_xml([(10, 10, 10, 50), (20, 20, 80, 80)]))
    with caplog.at_level(logging.INFO):
        items = read_items(f"flickr:{root}", "test")
    by_id = {i.id: i for i in items}
    assert sorted(by_id) == ["1001", "1002", "1004"]
    assert by_id["1001"].boxes == ((0, 0, 0.5, 0.5), (0.25, 0.25, 0.75, 0.75), (0, 0, 1, 1))
    assert by_id["1002"].boxes == ((0.125, 0.125, 0.375, 0.625),)
    assert by_id["1004"].boxes == ((20 / 256, 20 / 256, 80 / 256, 80 / 256),)
    assert {i.gt_style for i in items} == {"flickr"} and by_id["1001"].label is None
    assert items.report.counts() == {"no annotation": 1, "degenerate box": 1}
    assert items.report.excluded_ids() == ["1003"] and "1003" in caplog.text
    (root / "test_flickr_250.txt").write_text("1002\n")
    assert [i.id for i in read_items(f"flickr:{root}", "test_flickr_250")] == ["1002"]
    (root / "Annotations" / "1002.xml").write_text("<annotation><bbox>")
    with pytest.raises(DatasetError, match=r"1002\.xml: cannot parse"):
        read_items(f"flickr:{root}", "test")


# ----------------------------------------------------------------------------------------------- IS3


def test_is3_groups_pairs_and_decodes_real_is3plus_files(tmp_path, fixtures_dir):
    src = fixtures_dir / "real" / "is3plus"
    names = ["lion_cat_872_cat", "lion_cat_872_lion", "chicken_bus_8050_chicken"]
    root = is3_root(tmp_path / "is3", src, names)
    (root / "gt_segmentation").mkdir()
    Image.new("L", (224, 224), 0).save(root / "gt_segmentation" / "lion_cat_872_cat.png")
    items = read_items(f"is3:{root}", "test")
    by_id = {i.id: i for i in items}
    cat = by_id["lion_cat_872_cat"]
    assert len(cat.boxes) == 1 and cat.boxes[0] == pytest.approx((0.1, 0.2, 0.5, 1.0))
    assert (cat.group, cat.label, cat.classes) == ("lion_cat_872", "cat", ("cat", "lion"))
    assert by_id["lion_cat_872_lion"].group == cat.group and by_id["lion_cat_872_lion"].label == "lion"
    assert cat.mask == root / "gt_segmentation" / "lion_cat_872_cat.png" and by_id["lion_cat_872_lion"].mask is None
    assert items.report.counts() == {"no mask": 2, "unpaired": 1}
    assert items.report.excluded_ids() == []
    shapes = _decode(items)  # 1024x1024 JPEGs; lion_cat's audio is 1.19 s long and gets tiled
    assert shapes == [(torch.Size([3, 224, 224]), torch.Size([48000]))] * 3


def test_is3_names_and_errors(tmp_path):
    assert parse_name("fireworks_subwaytrain_10415_subway") == (
        "fireworks_subwaytrain_10415",
        "subway",
        ("subway", "fireworks", "subwaytrain"),
    )
    assert parse_name("babylaughter_oceanburbling_baby")[0] == "babylaughter_oceanburbling"
    root = tmp_path / "is3"
    (root / "images").mkdir(parents=True)
    (root / "audio_wav").mkdir()
    with pytest.raises(DatasetError, match=r"is3\.json: missing file"):
        read_items(f"is3:{root}", "test")
    (root / "is3.json").write_text(
        json.dumps([{"image": "/x/a_b_1_a.jpg", "audio": "/x/a_b_1_a.wav", "gt_box": "m.jpg"}])
    )
    with pytest.raises(DatasetError, match="segmentation JSON"):
        read_items(f"is3:{root}", "test")
    (root / "is3.json").write_text(json.dumps([{"image": "/x/a_b_1_a.jpg", "gt_box": [0, 0, 1, 1]}]))
    with pytest.raises(DatasetError, match=r"is3\.json: entry 0 has no field 'audio'"):
        read_items(f"is3:{root}", "test")


# ----------------------------------------------------------------------------------------------- AVSBench


def test_avsbench_s4_uses_the_middle_frame_its_mask_and_category(tmp_path, fixtures_dir):
    root = tmp_path / "Single-source"
    rows = [("0UN02RkbG_U", "test", "helicopter"), ("trainvid123", "train", "dog")]
    (root).mkdir()
    (root / "s4_meta_data.csv").write_text("name,split,category\n" + "".join(f"{v},{s},{c}\n" for v, s, c in rows))
    data = root / "s4_data"
    for video, split, category in rows:
        for k in range(1, 6):
            write_image(data / "visual_frames" / split / category / video / f"{video}_{k}.png", (80, 60), 40 * k)
        wav = data / "audio_wav" / split / category / f"{video}.wav"
        wav.parent.mkdir(parents=True)
        shutil.copy(fixtures_dir / "real" / "avsbench_s4" / "0UN02RkbG_U.wav", wav)
        for k in range(1, 6 if split == "test" else 2):
            write_mask(
                data / "gt_masks" / split / category / video / f"{video}_{k}.png",
                (20, 15, 60, 45) if k == FRAME_INDEX else None,
            )
    (test,) = read_items(f"avsbench:{root}", "test")
    assert test.image.name == f"0UN02RkbG_U_{FRAME_INDEX}.png" and test.mask.name == f"0UN02RkbG_U_{FRAME_INDEX}.png"
    assert test.boxes == ((0.25, 0.25, 0.75, 0.75),)
    assert (test.label, test.classes) == ("helicopter", ("helicopter",))
    assert sf.info(str(test.audio)).channels == 2
    assert _decode([test]) == [(torch.Size([3, 224, 224]), torch.Size([48000]))]
    (train,) = read_items(f"avsbench:{root}", "train")
    assert train.mask is None and train.boxes == ()  # S4 train: frame 1 alone has a mask
    assert len(read_items(f"avsbench:{root}", "all")) == 2
    with pytest.raises(DatasetError, match=r"val\.txt: missing file"):
        read_items(f"avsbench:{root}", "val")


def test_avsbench_ms3_layout_and_empty_masks(tmp_path):
    root = tmp_path / "Multi-sources"
    root.mkdir()
    (root / "ms3_meta_data.csv").write_text("video_id,split\nvidA,test\nvidB,test\n")
    data = root / "ms3_data"
    for video, box in (("vidA", (0, 0, 40, 30)), ("vidB", None)):
        write_image(data / "visual_frames" / video / f"{video}.mp4_{FRAME_INDEX}.png", (80, 60))
        write_wav(data / "audio_wav" / "test" / f"{video}.wav", 5.0)
        write_mask(data / "gt_masks" / "test" / video / f"{video}_{FRAME_INDEX}.png", box, mode="P")
    items = read_items(f"avsbench:{root}", "test")
    assert [(i.id, i.boxes, i.label) for i in items] == [("vidA", ((0.0, 0.0, 0.5, 0.5),), None), ("vidB", (), None)]
    zero_one = tmp_path / "zero_one.png"  # foreground stored as grey level 1
    Image.fromarray(np.pad(np.ones((6, 8), np.uint8), ((0, 14), (12, 0))), "L").save(zero_one)
    assert mask_box(zero_one) == (0.6, 0.0, 1.0, 0.3)
    assert all(i.mask is not None for i in items)
    with pytest.raises(DatasetError, match="give ROOT/Multi-sources"):
        read_items(f"avsbench:{tmp_path}", "test")


# ----------------------------------------------------------------------------------------------- SLAVC


def test_slavc_appends_non_audible_pairs_without_boxes(tmp_path):
    entries = VGGSS_ENTRIES[:2]
    root = vggss_root(tmp_path / "vggss", entries)
    write_image(root / "frames" / "hhhhhhhhhhh_000070.jpg")
    write_wav(root / "audio" / "iiiiiiiiiii_000080.wav")
    (root / "vggss_test_plus_silent.csv").write_text(
        "video,audio,label\n"
        "hhhhhhhhhhh_000070,iiiiiiiiiii_000080,non-sounding\n"
        "aaaaaaaaaaa_000000,aaaaaaaaaaa_000000,sounding\n"
        "hhhhhhhhhhh_000070,iiiiiiiiiii_000080,non-sounding\n"
    )
    items = read_items(f"slavc:{root}", "test")
    assert [(i.id, bool(i.boxes)) for i in items] == [
        ("aaaaaaaaaaa_000000", True),
        ("hhhhhhhhhhh_000070+iiiiiiiiiii_000080", False),
    ]
    assert items[1].audio.name == "iiiiiiiiiii_000080.wav" and items[1].image.name == "hhhhhhhhhhh_000070.jpg"
    assert items.report.counts() == {"garbage value": 1, "duplicate entry": 1}
    (root / "vggss_test_plus_silent.csv").write_text(
        "video,audio,label\nmissing_00000,iiiiiiiiiii_000080,non-sounding\n"
    )
    with pytest.raises(DatasetError, match=r"missing_00000\.jpg"):
        read_items(f"slavc:{root}", "test")
    with pytest.raises(DatasetError, match=r"vggss_calibration_plus_silent\.csv: missing file"):
        read_items(f"slavc:{root}", "calibration")


# ----------------------------------------------------------------------------------------------- folder


def test_folder_pairs_by_name_and_points_videos_to_prepare(tmp_path):
    root = tmp_path / "mine"
    write_image(root / "street" / "dog1.jpg")
    write_wav(root / "street" / "dog1.wav")
    write_image(root / "beach.png")
    (root / "beach.mp4").write_bytes(b"")  # audio from the video beside the frame
    write_image(root / "lonely.jpg")
    (root / "only_video.mkv").write_bytes(b"")
    items = read_items(f"folder:{root}", "train")
    assert [(i.id, i.audio.name) for i in items] == [("beach", "beach.mp4"), ("street/dog1", "dog1.wav")]
    assert items.report.counts() == {"missing file": 1, "no frame": 1}
    videos = tmp_path / "videos"
    (videos).mkdir()
    (videos / "clip.mp4").write_bytes(b"")
    with pytest.raises(DatasetError, match="vssl prepare"):
        read_items(f"folder:{videos}", "train")
    prepared = tmp_path / "prepared"
    write_image(prepared / "frames" / "clip.jpg")
    write_wav(prepared / "audio" / "clip.wav")
    assert [i.id for i in read_items(f"folder:{prepared}", "train")] == ["clip"]
