"""Reports: ``report.json`` (machine-readable), ``report.md`` (for people) and figures.

Figures use an absolute colour scale and print each map's min and max, so a flat, low map under
silence is visible as such; a per-image min-max rescaling would hide abstention.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from vssl.atomic import write_atomic, write_text_atomic  # noqa: E402
from vssl.evaluation import gt as G  # noqa: E402
from vssl.evaluation.maps import CONDITIONS, NEGATIVES, EvalMaps  # noqa: E402
from vssl.evaluation.protocol import HEADLINE_THRESHOLD  # noqa: E402
from vssl.evaluation.scoring import POSITIVE_PROTOCOLS, PerSample, ScoreConfig, threshold_curves  # noqa: E402
from vssl.maps import MapScale, peak, to_unit_scale, upsample
from vssl.vision import load_image  # noqa: E402

COLORS = {"positive": "tab:green", "silence": "tab:gray", "noise": "tab:orange", "offscreen": "tab:purple"}


def write_json(path: Path, report: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(report, indent=2) + "\n")


def _save(fig: plt.Figure, path: Path) -> Path:
    write_atomic(path, lambda tmp: fig.savefig(tmp, format=path.suffix.lstrip("."), dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return path


def unit_thresholds(thresholds: dict[str, float], scale: str) -> dict[str, float]:
    """Thresholds given on ``scale`` (`vssl.maps.MapScale`: ``unit`` or ``cosine``, LVS's) -> on (cos+1)/2, the
    scale `maxima_histogram` and `example_grid` draw on."""
    given = MapScale.of(scale)
    return {k: float(given.convert(torch.tensor(v, dtype=torch.float64), MapScale.UNIT)) for k, v in thresholds.items()}


def maxima_histogram(run: EvalMaps, thresholds: dict[str, float], title: str, path: Path) -> Path:
    """Histogram of per-map maxima ((cos+1)/2) for positive and each negative type, thresholds marked."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for cond in CONDITIONS:
        maxima = to_unit_scale(peak(run.maps[cond])).numpy()
        ax.hist(maxima, bins=40, range=(0, 1), alpha=0.55, label=cond, color=COLORS[cond])
    for name, value in thresholds.items():
        ax.axvline(value, linestyle="--" if name != HEADLINE_THRESHOLD else "-", color="k", linewidth=0.8)
        ax.text(value, ax.get_ylim()[1] * 0.95, name, rotation=90, va="top", ha="right", fontsize=7)
    ax.set_xlabel("per-map maximum, (cos+1)/2")
    ax.set_ylabel("maps")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def example_grid(run: EvalMaps, title: str, path: Path, count: int = 4, threshold: float | None = None) -> Path:
    """Rows of examples; columns = the frame (the sounding object's box in green, silent objects' in white), then
    the map under each condition, and under the first unseen noise family if any, on the fixed (cos+1)/2 scale
    [0, 1] (a map that stays dark is dark here; no per-map stretching).

    ``threshold``: the model's calibrated threshold on that scale. Each map then shows where it passes it (a white
    contour: what the model reports as the source) and its title whether the model reports a source at all or
    abstains (maximum below the threshold)."""
    count = min(count, len(run.items))
    columns = [(cond, run.maps[cond]) for cond in CONDITIONS]
    columns += [(f"{family} (unseen)", maps) for family, maps in list(run.unseen.items())[:1]]
    fig, axes = plt.subplots(count, 1 + len(columns), figsize=(2.2 * (1 + len(columns)), 2.3 * count), squeeze=False)
    for row in range(count):
        item = run.items[row]
        frame = load_image(item.image)
        axes[row, 0].imshow(frame)
        w, h = frame.size
        silent = [box for box in item.objects if box not in item.boxes]
        for boxes, colour, style in ((silent, "white", "--"), (item.boxes, "lime", "-")):
            for x0, y0, x1, y1 in boxes:
                axes[row, 0].add_patch(
                    plt.Rectangle(
                        (x0 * w, y0 * h), (x1 - x0) * w, (y1 - y0) * h, fill=False, color=colour, lw=1.5, ls=style
                    )
                )
        axes[row, 0].set_title(item.label or item.id, fontsize=7)
        for col, (name, maps) in enumerate(columns, start=1):
            unit = to_unit_scale(upsample(maps[row : row + 1]))[0]  # repeat 0 of repeat-major maps
            image = axes[row, col].imshow(unit.numpy(), vmin=0.0, vmax=1.0, cmap="jet")
            label = f"{name}\nmin {unit.min():.2f} max {unit.max():.2f}"
            if threshold is not None:
                source = bool(unit.max() > threshold)
                if source:
                    axes[row, col].contour(unit.numpy(), levels=[threshold], colors="white", linewidths=1.2)
                label += "\nsource" if source else "\nabstains"
            axes[row, col].set_title(label, fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=axes, shrink=0.6, label="(cos+1)/2")
    fig.suptitle(title)
    return _save(fig, path)


def markdown(report: dict[str, Any]) -> str:
    """The demo/eval report as a Markdown page: one table per metric family, protocol spelled out."""
    methods = report["methods"]
    names = list(methods)
    header = "| metric | " + " | ".join(names) + " |\n|---|" + "---|" * len(names) + "\n"

    def row(label: str, get) -> str:
        return f"| {label} | " + " | ".join(_fmt(get(methods[n])) for n in names) + " |\n"

    lines = [f"# {report.get('title', 'vssl report')}\n", "Values in %. " + report.get("summary", "") + "\n"]
    lines.append("## Positive audio (visible samples)\n\n" + header)
    lines.append(row(f"cIoU mean ({HEADLINE_THRESHOLD})", lambda m: m["ciou"]))
    lines.append(row(f"AP50 ({HEADLINE_THRESHOLD})", lambda m: m["ap50"]))
    lines.append(row(f"AUC ({HEADLINE_THRESHOLD})", lambda m: m["auc"]))
    lines.append(row("AP50 (adaptive: top-k pixels, k = object area)", lambda m: m["adaptive_ap50"]))
    lines.append(row("AP50 (median protocol)", lambda m: m["median_ap50"]))
    lines.append(row("AUC (median protocol)", lambda m: m["median_auc"]))
    lines.append(row("pointing (ours: peak inside the sounding box)", lambda m: m["pointing"]))
    lines.append("\n## Negative audio\n\n" + header)
    for neg in NEGATIVES:
        lines.append(row(f"pIA {neg} (lower is better)", lambda m, n=neg: m["pia"][n]))
    for neg in NEGATIVES:
        lines.append(row(f"AOC {neg}", lambda m, n=neg: m["aoc"][n]))
    for neg in NEGATIVES:
        lines.append(row(f"separability {neg} (ROC-AUC)", lambda m, n=neg: m["separability"][n]))
    lines.append(row("F_pos_neg", lambda m: m["f_pos_neg"]))
    lines.append("\n## Abstention (ours)\n\n" + header)
    for neg in NEGATIVES:
        lines.append(row(f"object hallucination {neg} (lower is better)", lambda m, n=neg: m["hallucination"][n]))
    for neg in NEGATIVES:
        lines.append(row(f"TPR at 5 % FPR, {neg}", lambda m, n=neg: m["tpr_at_5fpr"][n]))
    for cond in ("positive", *NEGATIVES):
        lines.append(row(f"maps at or below 0.5 (fixed threshold), {cond}", lambda m, c=cond: m["below_half"][c]))
    for cond in ("positive", *NEGATIVES):
        lines.append(row(f"median map maximum, {cond}", lambda m, c=cond: m["median_peak"][c]))
    families = sorted({family for m in methods.values() for family in m.get("unseen", {})})
    for family in families:
        lines.append(row(f"separability, unseen noise: {family}", lambda m, f=family: m["unseen"].get(f)))
    lines.append("\n## Calibrated universal thresholds, (cos+1)/2\n\n" + header)
    for name in ("max", "max10", "maxq3"):
        lines.append(f"| {name} | " + " | ".join(f"{methods[n]['thresholds'][name]:.4f}" for n in names) + " |\n")
    lines.append("\n## Protocol\n\n")
    lines.extend(f"- {k}: {v}\n" for k, v in report["protocol"].items())
    for extra in report.get("notes", []):
        lines.append(f"\n{extra}\n")
    return "".join(lines)


def threshold_curves_figure(
    run: EvalMaps, thresholds: dict[str, float], cfg: ScoreConfig, title: str, path: Path
) -> Path:
    """Mean pIA of each negative type and mean cIoU of the positives against the universal threshold."""
    grid = torch.linspace(0.0, 1.0, 101, dtype=torch.float64)
    if cfg.threshold_scale == "cosine":
        grid = 2 * grid - 1
    curves = threshold_curves(run.map_set(), G.from_items(run.items), grid, cfg)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.plot(grid, curves["positive_ciou"], color=COLORS["positive"], label="positive: mean cIoU")
    for neg in NEGATIVES:
        ax.plot(grid, curves[f"{neg}_pia"], color=COLORS[neg], label=f"{neg}: mean pIA")
    for name, value in thresholds.items():
        ax.axvline(value, linestyle="-" if name == HEADLINE_THRESHOLD else "--", color="k", linewidth=0.8)
        ax.text(value, 0.98, name, rotation=90, va="top", ha="right", fontsize=7, transform=ax.get_xaxis_transform())
    ax.set_xlabel(f"universal threshold, {cfg.protocol()['map_scale']}")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def write_per_sample_csv(path: Path, run: EvalMaps, per: PerSample) -> Path:
    """One row per evaluated item: positive values, and each negative type's values averaged over repeats."""
    n = len(run.items)
    columns: dict[str, list] = {"id": [item.id for item in run.items]}
    for key, values in per.positive.items():
        if values.ndim == 1:
            columns[key] = values.tolist()
    for neg, values in per.negatives.items():
        owners = per.owners[neg]
        count = torch.zeros(n, dtype=torch.float64).index_add_(0, owners, torch.ones(len(owners), dtype=torch.float64))
        for key, v in values.items():
            total = torch.zeros(n, dtype=torch.float64).index_add_(0, owners, v.double())
            columns[f"{neg}_{key}"] = (total / count.clamp(min=1)).tolist()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in zip(*columns.values(), strict=True):
        writer.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in row])
    write_text_atomic(path, buffer.getvalue())
    return path


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def eval_markdown(report: dict[str, Any]) -> str:
    """A single model's evaluation as Markdown (values in %), protocol and counts spelled out."""
    res = report["result"]
    pos, lines = res["positive"], [f"# {report['title']}\n\n", "Values in %.\n\n"]
    lines.append(f"Universal threshold: {res['threshold']:.4f} ({res['threshold_source']}).\n\n")
    lines.append("## Positive audio (visible samples)\n\n| protocol | cIoU mean | AP50 | AUC |\n|---|---|---|---|\n")
    for p in POSITIVE_PROTOCOLS:
        lines.append(f"| {p} | {_fmt(pos[f'{p}_ciou_mean'])} | {_fmt(pos[f'{p}_ap50'])} | {_fmt(pos[f'{p}_auc'])} |\n")
    lines.append("\n## Negative audio\n\n| type | pIA (lower better) | AOC | IoU with positive | separability |\n")
    lines.append("|---|---|---|---|---|\n")
    for neg, v in res["negatives"].items():
        lines.append(
            f"| {neg} | {_fmt(v['pia'])} | {_fmt(v['aoc'])} | {_fmt(v['iou_with_positive'])} | "
            f"{_fmt(v['separability'])} |\n"
        )
    lines.append(f"\nF_pos_neg {_fmt(res['f_pos_neg'])}, F_AUC_AOC {_fmt(res['f_auc_aoc'])}.\n")
    s = res["slavc"]
    lines.append(
        f"\n## SLAVC extended-set metrics\n\nprecision {_fmt(s['precision'])}, AP {_fmt(s['ap'])}, "
        f"max-F1 {_fmt(s['max_f1'])}, AUC (visible) {_fmt(s['auc_visible'])}.\n"
    )
    if "retrieval" in res:
        lines.append("\n## Retrieval (max-pooled similarity)\n\n")
        lines.extend(f"- {k}: {_fmt(v)}\n" for k, v in res["retrieval"].items())
    lines.append("\n## Similarity statistics (ours: max-pooled cosine; d' = (mean_pos - mean_neg) / pooled std)\n\n")
    lines.append(f"- positive: mean {_num(res['positive']['similarity']['mean'])}\n")
    for neg, v in res["negatives"].items():
        sim = v["similarity"]
        lines.append(f"- {neg}: mean {_num(sim['mean'])}, std {_num(sim['std'])}, d' {_num(sim['d_prime'])}\n")
    lines.append(f"\n## Counts\n\n{json.dumps(res['n'])}; negative seeds {res.get('negative_seeds')}\n")
    for split, acc in report.get("items", {}).items():
        reasons = ", ".join(f"{kind} {n}" for kind, n in acc["excluded_by_reason"].items())
        lines.append(
            f"\nSplit {split}: {acc['evaluated']} items evaluated, {acc['excluded']} excluded by the dataset reader"
            f"{f' ({reasons})' if reasons else ''}; unreadable files: {acc['unreadable']}.\n"
        )
    if res["gt_issues"]:
        lines.append(f"\n{len(res['gt_issues'])} ground-truth issues (first 20):\n")
        lines.extend(f"- {issue}\n" for issue in res["gt_issues"][:20])
    if "ogl" in res:
        ogl = res["ogl"]
        lines.append(f"\n## With OGL ({ogl['protocol']['ogl']}; maps on [0, 1], threshold {ogl['threshold']:.4f})\n\n")
        lines.append("| | without OGL | with OGL |\n|---|---|---|\n")
        for key in ("median_ap50", "universal_ciou_mean", "universal_ap50", "universal_auc"):
            lines.append(f"| {key} | {_fmt(pos[key])} | {_fmt(ogl['positive'][key])} |\n")
        for neg in res["negatives"]:
            lines.append(
                f"| pIA {neg} | {_fmt(res['negatives'][neg]['pia'])} | {_fmt(ogl['negatives'][neg]['pia'])} |\n"
            )
        lines.append(f"| F_pos_neg | {_fmt(res['f_pos_neg'])} | {_fmt(ogl['f_pos_neg'])} |\n")
    lines.append("\n## Protocol\n\n")
    lines.extend(f"- {k}: {v}\n" for k, v in report["protocol"].items())
    return "".join(lines)


def write_eval_markdown(path: Path, report: dict[str, Any]) -> Path:
    write_text_atomic(path, eval_markdown(report))
    return path
