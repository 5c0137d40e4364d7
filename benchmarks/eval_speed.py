"""Four-condition evaluation: vssl's ``compute_maps`` vs a loop that runs the whole model once per condition.

vssl encodes each image once, every clip's audio once (positives double as offscreen partners), the
silence and the noise clip once per run. The reference style runs image + audio encoders for each of
positive, silence, noise and offscreen. Both run in this process on the same synthetic items with the
same model and must give the same maps; prints images/s and the ratio.
Usage: python benchmarks/eval_speed.py [--model resnet18] [--n 32] [--batch 16]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from vssl.data.dataset import AVDataset
from vssl.data.formats import read_items
from vssl.data.negatives import silence
from vssl.data.synth import SynthConfig, generate
from vssl.evaluation.maps import compute_maps, noise_clip, offscreen_partners, repeat_seeds
from vssl.models.localizer import paired_maps
from vssl.models.registry import create_model


@torch.no_grad()
def per_condition_loop(model, items, batch: int, seed: int) -> dict[str, torch.Tensor]:
    """The whole model (image and audio encoders) once per condition and batch."""
    dataset = AVDataset(items, model.cfg.image, model.cfg.audio, train=False)
    n_samples = model.cfg.audio.num_samples
    (s,) = repeat_seeds(seed, 1)
    partners = offscreen_partners(items, s)
    noise = noise_clip(s, n_samples)
    out: dict[str, list[torch.Tensor]] = {c: [] for c in ("positive", "silence", "noise", "offscreen")}
    for start in range(0, len(items), batch):
        idx = list(range(start, min(start + batch, len(items))))
        images = torch.stack([dataset.load_image(i) for i in idx])
        waves = {
            "positive": torch.stack([dataset.load_wave(i) for i in idx]),
            "silence": silence(len(idx), n_samples),
            "noise": noise.expand(len(idx), -1),
            "offscreen": torch.stack([dataset.load_wave(partners[i]) for i in idx]),
        }
        for cond, w in waves.items():
            out[cond].append(paired_maps(*model(images, w)))
    return {c: torch.cat(v) for c, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18", help="registered size (resnet18 = the real architecture)")
    parser.add_argument("--n", type=int, default=32, help="images evaluated")
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = create_model(args.model).eval()
    with tempfile.TemporaryDirectory() as tmp:
        synth = SynthConfig(n_train=1, n_calibration=1, n_test=args.n, image_size=model.cfg.image.size)
        items = read_items(f"synth:{generate(synth, Path(tmp), progress=False)}", "test")
        t0 = time.perf_counter()
        ref = per_condition_loop(model, items, args.batch, seed=0)
        t_ref = time.perf_counter() - t0
        t0 = time.perf_counter()
        ours = compute_maps(model, items, args.batch, seed=0, progress=False, repeats=1, retrieval=False)
        t_ours = time.perf_counter() - t0
    worst = max(float((ref[c] - ours.maps[c]).abs().max()) for c in ref)
    print(f"model {args.model}, {args.n} images x 4 conditions, torch threads = {torch.get_num_threads()}")
    print(f"whole model per condition: {t_ref:7.2f} s  {args.n / t_ref:7.2f} images/s")
    print(f"vssl compute_maps:         {t_ours:7.2f} s  {args.n / t_ours:7.2f} images/s")
    print(f"speed-up: {t_ref / t_ours:.2f}x   max |map difference|: {worst:.1e}")


if __name__ == "__main__":
    main()
