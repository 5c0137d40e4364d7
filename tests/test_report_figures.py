"""The demo's and `vssl eval`'s example grid marks what a model reports at its calibrated threshold."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
import torch
from PIL import Image

from vssl.data.items import AVItem
from vssl.evaluation import report as R
from vssl.evaluation.maps import CONDITIONS, EvalMaps


def grid_axes(tmp_path, monkeypatch, threshold: float | None) -> list[plt.Axes]:
    """The map axes of a one-row grid: a positive map peaking at cosine 0.8 ((cos+1)/2 = 0.9) on its object,
    negative maps flat at cosine -0.5 (0.25)."""
    frame = tmp_path / "frame.png"
    Image.new("RGB", (32, 32)).save(frame)
    item = AVItem("a", frame, tmp_path / "a.wav", boxes=((0.0, 0.0, 0.5, 0.5),), objects=((0.0, 0.0, 0.5, 0.5),))
    positive = torch.full((1, 7, 7), -0.5)
    positive[0, :3, :3] = 0.8
    maps = {c: positive if c == "positive" else torch.full((1, 7, 7), -0.5) for c in CONDITIONS}
    run = EvalMaps([item], maps, {c: torch.zeros(1, dtype=torch.long) for c in CONDITIONS}, [""], [0])
    saved = []
    monkeypatch.setattr(R, "_save", lambda fig, path: saved.append(fig) or path)
    R.example_grid(run, "model", tmp_path / "examples.png", threshold=threshold)
    return list(saved[0].axes[1 : 1 + len(CONDITIONS)])


def test_example_grid_marks_the_reported_source_and_the_abstentions(tmp_path, monkeypatch):
    axes = grid_axes(tmp_path, monkeypatch, threshold=0.6)
    titles = [ax.get_title() for ax in axes]
    assert titles[0].endswith("max 0.90\nsource")
    assert all(t.endswith("max 0.25\nabstains") for t in titles[1:])
    contours = [len(ax.collections) for ax in axes]  # the contour where the map passes the threshold
    assert contours[0] > 0 and contours[1:] == [0, 0, 0]


def test_example_grid_without_a_threshold_decides_nothing(tmp_path, monkeypatch):
    axes = grid_axes(tmp_path, monkeypatch, threshold=None)
    assert all(not ax.collections and not ax.get_title().endswith(("source", "abstains")) for ax in axes)


def test_thresholds_are_drawn_on_the_figures_scale():
    """An LVS-family threshold on the cosine scale lands where (cos+1)/2 maps put it; unit thresholds stay."""
    assert R.unit_thresholds({"maxq3": 0.3, "max": -0.2}, "cosine") == pytest.approx({"maxq3": 0.65, "max": 0.4})
    assert R.unit_thresholds({"maxq3": 0.7}, "unit") == {"maxq3": 0.7}
