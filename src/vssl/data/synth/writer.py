"""Write a synth dataset to disk (:func:`generate`) in the layout that :mod:`vssl.data.formats.synth` reads."""

from __future__ import annotations

import io
import json
import logging
import re
from dataclasses import asdict
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image
from tqdm import tqdm

from vssl.atomic import write_text_atomic
from vssl.data.formats.synth import FORMAT_VERSION
from vssl.data.synth.config import SynthConfig, synth_class_names
from vssl.data.synth.sample import render_sample

logger = logging.getLogger(__package__)  # "vssl.data.synth", the name its log lines have always carried

_ID_PATTERN = re.compile(r"^(train|calibration|test)_\d{6}$")


def _split_sizes(cfg: SynthConfig) -> list[tuple[str, int]]:
    return [("train", cfg.n_train), ("calibration", cfg.n_calibration), ("test", cfg.n_test)]


def _is_current(annotations: Path, cfg: SynthConfig) -> bool:
    """Whether ``annotations`` is a finished dataset made with exactly this config."""
    try:
        data = json.loads(annotations.read_text())
    except (OSError, ValueError):
        return False
    expected = json.loads(json.dumps(asdict(cfg)))  # tuples become lists, as in the file
    return isinstance(data, dict) and data.get("version") == FORMAT_VERSION and data.get("config") == expected


def _write_sample(cfg: SynthConfig, root: Path, split: str, index: int) -> dict:
    """Render one sample, write its frame, audio and mask, return its annotation entry."""
    sample = render_sample(cfg, split, index)
    sample_id = f"{split}_{index:06d}"
    sample.image.save(root / "frames" / f"{sample_id}.jpg", quality=92)
    # Encoded in memory: writing through libsndfile to a path fsyncs every file (3 ms each).
    wav = io.BytesIO()
    sf.write(wav, sample.waveform, cfg.sample_rate, format="WAV", subtype="PCM_16")
    (root / "audio" / f"{sample_id}.wav").write_bytes(wav.getvalue())
    Image.fromarray(sample.mask.astype(np.uint8) * 255, "L").save(root / "masks" / f"{sample_id}.png")
    return {
        "id": sample_id,
        "split": split,
        "label": sample.label,
        "box": list(sample.box),
        "objects": [list(box) for box in sample.objects],
        "width": cfg.image_size,
        "height": cfg.image_size,
        "classes_in_frame": sample.classes_in_frame,
        "inaudible": sample.inaudible,
        "track": sample.track,
    }


def _remove_stale_files(root: Path, ids: set[str]) -> None:
    """Delete sample files of an earlier, larger generation (only names this module writes)."""
    for sub in ("frames", "audio", "masks"):
        for path in (root / sub).iterdir():
            if _ID_PATTERN.match(path.stem) and path.stem not in ids:
                path.unlink()


def generate(cfg: SynthConfig, root: Path, progress: bool = True) -> Path:
    """Write the dataset of ``cfg`` under ``root`` (layout: :mod:`vssl.data.formats.synth`) and return ``root``.

    If ``root/annotations.json`` already describes this exact config the dataset is reused untouched.
    ``annotations.json`` is written last and atomically, so an interrupted run leaves no valid dataset.
    """
    root = Path(root)
    annotations = root / "annotations.json"
    if _is_current(annotations, cfg):
        logger.info("synth dataset at %s is up to date; reusing it", root)
        return root
    annotations.unlink(missing_ok=True)  # invalidate an older dataset before touching its files
    for sub in ("frames", "audio", "masks"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    jobs = [(split, index) for split, count in _split_sizes(cfg) for index in range(count)]
    items = [
        _write_sample(cfg, root, split, index)
        for split, index in tqdm(jobs, desc="synth", unit="sample", disable=not progress)
    ]
    _remove_stale_files(root, {item["id"] for item in items})
    data = {
        "version": FORMAT_VERSION,
        "config": asdict(cfg),
        "classes": synth_class_names(cfg.num_classes),
        "items": items,
    }
    write_text_atomic(annotations, json.dumps(data, indent=1))  # readers never see half a file
    logger.info("wrote %d synth samples to %s", len(items), root)
    return root
