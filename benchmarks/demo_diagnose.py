"""(ours) Where a demo model's audio-visual match lives: in the sounding object, or in the frame around it.

For a trained model and the synthetic benchmark's test split, prints

* audio: nearest-neighbour class accuracy of the test clips' embeddings (does the audio side know the classes?),
  per quartile of the clips' peak level;
* image: the pointing rate (map peak inside the sounding object's box, the peak placed as the report's pointing and
  hallucination place it, `vssl.evaluation.abstention.peak_points`) of each clip's own map and of the map of its
  class's mean audio embedding (the audio noise removed);
  and where the class-mean map peaks: on the sounding object, on a silent distractor, or on the background;
* the common direction: the mean cosine of the image features (every location) with their mean direction, and
  of the audio embeddings with it (a large shared component makes every map flat and high).

A model whose audio knows the classes but whose class-mean maps peak on the background matched the sounds with
the frame's context, not with the objects; its maps cannot localize whatever the threshold. Issue 19's
diagnosis: see the closing notes.
Usage: python benchmarks/demo_diagnose.py DEMO_DIR [--arm baseline|sslsan] | --model DIR --data SYNTH_ROOT
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from machine import cpu_model

from vssl.data.dataset import AVDataset
from vssl.data.formats import read_items
from vssl.evaluation.abstention import inside_any, peak_points
from vssl.maps import paired_maps
from vssl.models.release import load_model


@torch.no_grad()
def diagnose(model_dir: Path, data: Path, batch_size: int = 64) -> dict[str, object]:
    items = read_items(f"synth:{data}", "test")
    model = load_model(model_dir).eval()
    dataset = AVDataset(items, model.cfg.image, model.cfg.audio, train=False)
    waves = torch.stack([dataset.load_wave(i) for i in range(len(items))])
    images = torch.stack([dataset.load_image(i) for i in range(len(items))])
    audio = torch.cat([model.encode_waveform(w) for w in waves.split(batch_size)])  # [N, D]
    features = torch.cat([model.encode_image(x) for x in images.split(batch_size)])  # [N, D, h, w]
    labels = np.array([it.label for it in items])
    levels = waves.abs().amax(dim=1).clamp(min=1e-9).log10().mul(20).numpy()  # peak dBFS of each window
    similarity = audio @ audio.t()
    similarity.fill_diagonal_(-2.0)
    neighbour_hit = labels[similarity.argmax(dim=1).numpy()] == labels
    classes = sorted(set(labels))
    centroids = {c: F.normalize(audio[torch.as_tensor(labels == c)].mean(dim=0), dim=0) for c in classes}
    class_means = torch.stack([centroids[label] for label in labels])
    sounding = [item.boxes[:1] for item in items]
    own_hits = inside_any(peak_points(paired_maps(features, audio)), sounding)
    class_peaks = peak_points(paired_maps(features, class_means))
    on_object = inside_any(class_peaks, sounding)
    on_distractor = inside_any(class_peaks, [item.objects[1:] for item in items]) & ~on_object
    where = {
        "sounding object": on_object,
        "silent distractor": on_distractor,
        "background": ~(on_object | on_distractor),
    }
    flat = features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])
    common = F.normalize(flat.mean(dim=0), dim=0)
    order = np.argsort(levels)
    quartiles = [order[q * len(order) // 4 : (q + 1) * len(order) // 4] for q in range(4)]
    return {
        "items": len(items),
        "audio 1-NN class accuracy": float(neighbour_hit.mean()),
        "by level quartile": [
            (float(levels[q].min()), float(levels[q].max()), float(neighbour_hit[q].mean())) for q in quartiles
        ],
        "pointing, own audio": own_hits.double().mean().item(),
        "pointing, class-mean audio": on_object.double().mean().item(),
        "class-mean map peaks on": {k: v.double().mean().item() for k, v in where.items()},
        "image features . their mean direction": float((flat @ common).mean()),
        "audio embeddings . that direction": float((audio @ common).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demo", nargs="?", type=Path, help="a vssl demo output folder")
    parser.add_argument("--arm", action="append", help="arm(s) of the demo folder (default: baseline and sslsan)")
    parser.add_argument("--model", type=Path, help="a model folder (with --data) instead of a demo folder")
    parser.add_argument("--data", type=Path, help="the synthetic benchmark root the model is evaluated on")
    args = parser.parse_args()
    if args.model is not None:
        runs = {args.model.name: (args.model, args.data)}
    elif args.demo is not None:
        runs = {arm: (args.demo / "models" / arm, args.demo / "data") for arm in args.arm or ("baseline", "sslsan")}
    else:
        parser.error("give a demo folder, or --model and --data")
    print(f"CPU: {cpu_model()}, torch threads: {torch.get_num_threads()}")
    for name, (model_dir, data) in runs.items():
        print(f"\n{name} ({model_dir})")
        for key, value in diagnose(model_dir, data).items():
            if key == "by level quartile":
                for low, high, acc in value:
                    print(f"  audio 1-NN accuracy, peak {low:.0f}..{high:.0f} dBFS: {acc:.3f}")
            elif isinstance(value, dict):
                print(f"  {key}: " + ", ".join(f"{k} {v:.3f}" for k, v in value.items()))
            else:
                print(f"  {key}: {value:.3f}" if isinstance(value, float) else f"  {key}: {value}")


if __name__ == "__main__":
    main()
