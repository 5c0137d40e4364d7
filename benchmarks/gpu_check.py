"""GPU check: numerics, the fast training paths, torchrun, training and evaluation speed, in one table.

Usage:
    python benchmarks/gpu_check.py --device cuda           # one H100-class GPU: resnet18, 320 steps (about 5 min)
    python benchmarks/gpu_check.py --device cpu            # CI smoke test: tiny model, a few steps (~15 s, 2 cores)
    python benchmarks/gpu_check.py --device cuda --quick   # the tiny plan on a GPU

Everything runs on a synthetic benchmark written to a temporary folder (``vssl.data.synth``), with vssl's
default objective (SSL-SaN on EZ-VSL) unless a row says otherwise. Rows (exit code 1 when one fails):

(a) numerics: loss and gradients of the training objective on one fixed batch in training mode, on the
    device, against float64 on the CPU. Errors: relative loss error, and relative L2 error of the
    concatenated gradient (its cosine with the float64 gradient is shown too).
    * fp32 with TF32 off: loss <= 1e-5, gradient <= 1e-2. fp32 rounds at 6e-8; the logits scale cosines by
      1/tau = 33 and BatchNorm's backward divides by per-channel deviations of a small batch, which the
      gradient feels more than the loss (measured on a 2-core CPU: loss 1e-7, gradient 1.5e-4 to 9e-4 for
      the test, small and resnet18 sizes). A kernel that is wrong, not merely rounded, lands far above.
    * fp32 with PyTorch's default TF32 convolutions (cuda only; TF32 is a tensor-core mode): loss <= 2e-3
      (4x TF32's rounding of 4.9e-4) and a gradient at least as close to float64 (cosine) as bf16 autocast's
      on the CPU on the same batch: TF32 keeps 10 mantissa bits, bf16 7.
    * bf16 autocast with channels_last (the training configuration): loss <= 2e-2 (5x bf16's rounding of
      3.9e-3; measured 2.7e-3 to 5.9e-3 on the CPU) and gradient cosine >= 0.5. bf16 gradients are not
      elementwise close to float64 ones at initialisation (near-tied maxima of the multiple-instance score and
      ReLU boundaries flip; measured on the CPU: relative error 0.2 to 0.6, cosine 0.79 to 0.97), while a
      wrong kernel decorrelates them (cosine near 0). The CPU's bf16 figures are shown beside.
(b) vssl's trainer (`vssl.train.loop.train`, on a shard cache) with amp=bf16 channels_last=true
    fused_adam=true, then the same with compile=true: every logged loss finite, no step skipped, the mean
    loss of the last quarter of the logged rows below that of the first quarter, a release written.
    torch.compile on the CPU is not run (n/a): its C++ kernels take minutes to build on 2 cores.
(c) torchrun, one process (``python -m torch.distributed.run --standalone --nproc_per_node 1``): vssl's
    trainer in a process group (NCCL on cuda, gloo on cpu) joined before `train` and checked with one
    all-reduce (`torchrun_worker`), then the README's command ``-m vssl.cli train``, which joins no group
    when WORLD_SIZE is 1 (the row says whether it did).
(d) training samples/s: vssl's trainer (cache, bf16, channels_last, fused Adam) against a reference-style
    loop as the EZ-VSL repository's train.py (`ReferenceTrainSet`, `reference_rate`: a DataLoader decoding
    every sample with PIL and scipy, fp32 forward, loss, backward, Adam step), same device, synthetic data,
    model, objective (EZ-VSL) and batch; also the reference under bf16 autocast (same precision). On cuda
    vssl must be at least as fast as the reference as published; on cpu the figures are reported only.
(e) ``vssl eval`` images/s (`run_eval`: calibration and test split, 10 repeats, report and figures) of the
    model trained in (b), and single-pair latency of ``model.localize`` (tensors on the device) and from
    files (decode, front ends, network).

On cpu the checks run on one torch thread unless ``--threads`` says otherwise: on a shared 2-core machine,
two-thread kernels stall on a descheduled thread (training ran at 5-18 instead of ~230 samples/s).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
import torch.distributed as dist
from PIL import Image
from scipy import signal
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from vssl.audio import AudioConfig, center_window, load_audio
from vssl.config import dump_yaml, load_yaml
from vssl.data.cache import CacheConfig, build_cache
from vssl.data.dataset import AVDataset
from vssl.data.formats import read_items
from vssl.data.items import AVItem
from vssl.data.synth import SynthConfig, generate
from vssl.evaluation.run import EvalConfig, run_eval
from vssl.models.localizer import AVLocalizer
from vssl.models.objectives import Batch, ObjectiveConfig, create_objective
from vssl.models.registry import create_model, model_config
from vssl.models.release import load_model
from vssl.train.loop import TrainConfig, train
from vssl.vision import ImageConfig, eval_transform, load_image

WORKER_TAG = "GPU_CHECK_WORKER "
SPEED_KEYS = ("amp", "channels_last", "fused_adam", "compile")  # TrainConfig keys the training rows use


@dataclass(frozen=True)
class Plan:
    """How big each check is."""

    model: str  # registry size
    image_size: int  # side of the synthetic frames
    n_train: int
    n_calibration: int
    n_test: int
    batch: int
    epochs: int  # of (b): steps = epochs * n_train // batch
    numerics_batch: int  # pairs of the fixed batch of (a)
    workers: int  # DataLoader workers of every loader (and of the cache build)
    log_every: int  # trainer steps between metric rows
    lr: float


# resnet18 on a GPU: 32 steps per epoch, 320 steps in (b); one epoch each side in (d).
FULL = Plan("resnet18", 224, 2048, 64, 256, 64, 10, 16, 8, 8, 1e-4)
# The CI smoke test: seconds per check on 2 CPU cores.
QUICK = Plan("test", 64, 64, 8, 16, 8, 3, 8, 0, 2, 1e-3)


@dataclass
class Row:
    check: str
    result: str
    criterion: str
    status: str  # pass, fail or n/a

    @staticmethod
    def judged(check: str, result: str, criterion: str, ok: bool) -> Row:
        return Row(check, result, criterion, "pass" if ok else "fail")


@dataclass
class Setup:
    device: torch.device
    plan: Plan
    tmp: Path
    synth: str  # data spec of the synthetic benchmark
    cache: str  # data spec of its training split's shard cache
    release: Path | None = None  # model trained by (b), evaluated by (e)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def guarded(check: str, run: Callable[[], list[Row]]) -> list[Row]:
    """The rows of ``run``, or one failed row naming the exception: one broken check never hides the others."""
    try:
        return run()
    except Exception as exc:  # report and go on: this is a diagnostic script
        return [Row(check, f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}", "runs", "fail")]


# ---------------------------------------------------------------- (a) numerics


@dataclass
class Gradients:
    loss: float
    grads: torch.Tensor  # all parameter gradients, concatenated, float64 on the CPU

    def errors(self, ref: Gradients) -> tuple[float, float, float]:
        """(relative loss error, relative L2 gradient error, gradient cosine) against ``ref``."""
        loss = abs(self.loss - ref.loss) / abs(ref.loss)
        grad = float((self.grads - ref.grads).norm() / ref.grads.norm())
        cos = float(torch.nn.functional.cosine_similarity(self.grads, ref.grads, dim=0))
        return loss, grad, cos


def fixed_batch(setup: Setup) -> tuple[AVLocalizer, torch.Tensor, torch.Tensor]:
    """A freshly initialised model (seed 0) and the first training pairs, augmented as in epoch 0."""
    torch.manual_seed(0)
    model = create_model(setup.plan.model).train()
    items = read_items(setup.synth, "train")[: setup.plan.numerics_batch]
    dataset = AVDataset(items, model.cfg.image, model.cfg.audio, train=True, seed=0)
    images = torch.stack([dataset.load_image(i) for i in range(len(items))])
    waves = torch.stack([dataset.load_wave(i) for i in range(len(items))])
    return model, images, waves


@contextmanager
def tf32(enabled: bool | None) -> Iterator[None]:
    """TF32 of cuDNN convolutions and cuBLAS matmuls on (True), off (False) or as they are (None)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    if enabled is not None:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def gradients(
    model: AVLocalizer,
    images: torch.Tensor,
    waves: torch.Tensor,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
    bf16: bool = False,
    channels_last: bool = False,
) -> Gradients:
    """Loss and gradients of the default objective (SSL-SaN on EZ-VSL) at step 0 on a copy of ``model``."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    m = copy.deepcopy(model).to(device, dtype, memory_format=fmt)
    objective = create_objective(ObjectiveConfig(), num_samples=model.cfg.audio.num_samples, seed=0)
    batch = Batch(images=images.to(device, dtype).contiguous(memory_format=fmt), waves=waves.to(device, dtype), step=0)
    with torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext():
        loss = objective(m, batch)["loss"]
    loss.backward()
    grads = torch.cat([p.grad.detach().double().flatten().cpu() for p in m.parameters() if p.grad is not None])
    return Gradients(float(loss.detach()), grads)


def numerics_rows(setup: Setup) -> list[Row]:
    device, cpu = setup.device, torch.device("cpu")
    model, images, waves = fixed_batch(setup)
    ref = gradients(model, images, waves, cpu, torch.float64)
    cpu_bf16 = gradients(model, images, waves, cpu, bf16=True).errors(ref)
    where = f"{setup.plan.model}, {len(images)} pairs, {device.type} vs float64 on cpu"

    def shown(err: tuple[float, float, float]) -> str:
        return f"loss {err[0]:.1e}, gradient {err[1]:.1e} (cosine {err[2]:.4f})"

    with tf32(False):
        fp32 = gradients(model, images, waves, device).errors(ref)
    rows = [
        Row.judged(
            f"numerics fp32, TF32 off ({where})",
            shown(fp32),
            "loss <= 1e-5, gradient <= 1e-2",
            fp32[0] <= 1e-5 and fp32[1] <= 1e-2,
        )
    ]
    if device.type == "cuda":
        with tf32(None):
            default = gradients(model, images, waves, device).errors(ref)
        rows.append(
            Row.judged(
                f"numerics fp32, PyTorch's default TF32 ({where})",
                shown(default),
                f"loss <= 2e-3, cosine >= cpu bf16's (cpu bf16: {shown(cpu_bf16)})",
                default[0] <= 2e-3 and default[2] >= cpu_bf16[2],
            )
        )
    else:
        rows.append(Row("numerics fp32 with TF32", "not run", "TF32 is a CUDA tensor-core mode", "n/a"))
    bf16 = gradients(model, images, waves, device, bf16=True, channels_last=True).errors(ref)
    rows.append(
        Row.judged(
            f"numerics bf16 autocast, channels_last ({where})",
            shown(bf16),
            f"loss <= 2e-2, gradient cosine >= 0.5 (cpu bf16: {shown(cpu_bf16)})",
            bf16[0] <= 2e-2 and bf16[2] >= 0.5,
        )
    )
    return rows


# ---------------------------------------------------------------- (b) training through vssl's trainer


@dataclass
class TrainRun:
    losses: list[float]
    rates: list[float]  # samples/s of each logged interval
    nonfinite: int
    skipped: int
    release: Path
    seconds: float

    @property
    def rate(self) -> float:
        """Median samples/s of the logged intervals after the first (kernel selection, compilation)."""
        timed = self.rates[1:] or self.rates
        return statistics.median(timed) if timed else math.nan

    def healthy(self) -> bool:
        q = max(1, len(self.losses) // 4)
        falling = statistics.mean(self.losses[-q:]) < statistics.mean(self.losses[:q])
        finite = all(math.isfinite(x) for x in self.losses) and len(self.losses) > 0
        released = (self.release / "model.safetensors").is_file() and (self.release / "config.json").is_file()
        return finite and falling and self.nonfinite == 0 and self.skipped == 0 and released

    def summary(self, steps: int) -> str:
        return (
            f"{steps} steps, loss {self.losses[0]:.3f} -> {self.losses[-1]:.3f}, {self.rate:.0f} samples/s, "
            f"{self.nonfinite} non-finite, {self.skipped} skipped, {self.seconds:.0f} s"
        )


def train_config(setup: Setup, **overrides: Any) -> TrainConfig:
    plan = setup.plan
    options = {
        "data": setup.cache,
        "model": plan.model,
        "epochs": plan.epochs,
        "batch_size": plan.batch,
        "lr": plan.lr,
        "device": str(setup.device),
        "amp": "bf16",
        "channels_last": True,
        "fused_adam": True,
        "num_workers": plan.workers,
        "checkpoint_every": 10**9,  # the epoch ends still write one
        "log_every": plan.log_every,
        "progress": False,
        **overrides,
    }
    return TrainConfig(**options)


def train_run(cfg: TrainConfig, out: Path) -> TrainRun:
    rows: list[dict[str, float]] = []
    start = time.perf_counter()
    release = train(cfg, out, on_log=lambda step, values: rows.append(dict(values)))
    return TrainRun(
        losses=[r["loss"] for r in rows],
        rates=[r["samples_per_s"] for r in rows],
        nonfinite=int(sum(r.get("nonfinite_steps", 0) for r in rows)),
        skipped=int(sum(r.get("skipped_items", 0) for r in rows)),
        release=release,
        seconds=time.perf_counter() - start,
    )


def training_rows(setup: Setup) -> list[Row]:
    keys = {f.name for f in dataclasses.fields(TrainConfig)}
    missing = [k for k in SPEED_KEYS if k not in keys]
    rows = [
        Row.judged(
            "TrainConfig speed keys",
            "missing: " + ", ".join(missing) if missing else "all present",
            ", ".join(SPEED_KEYS),
            not missing,
        )
    ]
    if missing:
        return rows
    steps = setup.plan.epochs * (setup.plan.n_train // setup.plan.batch)
    criterion = "losses finite and falling (last quarter < first), none skipped, release written"
    run = train_run(train_config(setup), setup.tmp / "train-bf16")
    setup.release = run.release
    rows.append(Row.judged("train amp=bf16 channels_last fused_adam", run.summary(steps), criterion, run.healthy()))
    if setup.device.type == "cuda":
        compiled = train_run(train_config(setup, compile=True), setup.tmp / "train-compile")
        result = f"{compiled.summary(steps)}; {compiled.rate / run.rate:.2f}x the eager rate"
        rows.append(Row.judged("train ... + compile=true", result, criterion, compiled.healthy()))
    else:
        rows.append(Row("train ... + compile=true", "not run", "torch.compile builds C++ for minutes on a CPU", "n/a"))
    return rows


# ---------------------------------------------------------------- (c) torchrun


def torchrun_worker(config: str, out: str) -> int:
    """Under torchrun: join the process group (NCCL on cuda, gloo on cpu), one all-reduce, then vssl's trainer."""
    cfg = load_yaml(TrainConfig, config)
    device = torch.device(cfg.device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        dist.init_process_group("gloo")
    probe = torch.ones(1, device=device)
    dist.all_reduce(probe)
    release = train(cfg, out)
    info = {
        "backend": str(dist.get_backend()),
        "world_size": dist.get_world_size(),
        "all_reduce": float(probe.item()),
        "release": str(release),
    }
    dist.destroy_process_group()
    print(WORKER_TAG + json.dumps(info), flush=True)
    return 0


def torchrun(arguments: list[str]) -> tuple[subprocess.CompletedProcess, float]:
    """``python -m torch.distributed.run --standalone --nproc_per_node 1 ARGUMENTS`` and its wall time."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1"]
    start = time.perf_counter()
    proc = subprocess.run(launcher + arguments, capture_output=True, text=True, timeout=600)
    return proc, time.perf_counter() - start


def failure(check: str, proc: subprocess.CompletedProcess) -> Row:
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
    return Row(check, f"exit code {proc.returncode}: {tail[0][:200]}", "exit 0", "fail")


def torchrun_rows(setup: Setup) -> list[Row]:
    """The trainer in a joined process group (`torchrun_worker`), then the README's command (``-m vssl.cli``)."""
    config = setup.tmp / "torchrun.yaml"
    config.write_text(dump_yaml(train_config(setup, epochs=1)))
    expected = "nccl" if setup.device.type == "cuda" else "gloo"
    check = f"torchrun 1 process, {expected} group, vssl trainer"
    proc, seconds = torchrun([str(Path(__file__).resolve()), "--torchrun-worker", str(config), str(setup.tmp / "tr")])
    lines = [line for line in proc.stdout.splitlines() if line.startswith(WORKER_TAG)]
    if proc.returncode != 0 or not lines:
        rows = [failure(check, proc)]
    else:
        info = json.loads(lines[-1][len(WORKER_TAG) :])
        released = (Path(info["release"]) / "model.safetensors").is_file()
        result = (
            f"backend {info['backend']}, world size {info['world_size']}, all-reduce {info['all_reduce']:g}, "
            f"{'release written' if released else 'no release'}, {seconds:.0f} s"
        )
        ok = info["backend"] == expected and info["all_reduce"] == info["world_size"] and released
        rows = [Row.judged(check, result, f"exit 0, backend {expected}, all-reduce = world size, release", ok)]

    check = "torchrun 1 process, python -m vssl.cli train (the README's command)"
    out = setup.tmp / "tr-cli"
    proc, seconds = torchrun(["-m", "vssl.cli", "train", "--config", str(config), "--out", str(out)])
    if proc.returncode != 0:
        return [*rows, failure(check, proc)]
    joined = [line.split("data-parallel training: ", 1)[1] for line in proc.stderr.splitlines()
              if "data-parallel training: " in line]  # fmt: skip
    group = f"group joined: {joined[-1]}" if joined else "no process group joined (vssl skips it when WORLD_SIZE=1)"
    released = (out / "model" / "model.safetensors").is_file()
    result = f"exit 0, {'release written' if released else 'no release'}; {group}; {seconds:.0f} s"
    return [*rows, Row.judged(check, result, "exit 0, release written", released)]


# ---------------------------------------------------------------- (d) training speed against a reference loop


class ReferenceTrainSet(Dataset):
    """Per sample, as the EZ-VSL family's loaders: PIL decode, resize, random crop and flip; soundfile, the
    central 3 s, scipy's spectrogram, log / 12."""

    def __init__(self, items: list[AVItem], image: ImageConfig, audio: AudioConfig):
        self.items, self.audio = items, audio
        self.transform = transforms.Compose(
            [
                transforms.Resize(image.train_short_side, interpolation=transforms.InterpolationMode.BICUBIC),
                transforms.RandomCrop(image.size),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
                transforms.Normalize(image.mean, image.std),
            ]
        )

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        item, a = self.items[i], self.audio
        image = self.transform(Image.open(item.image).convert("RGB"))
        samples, rate = sf.read(str(item.audio), dtype="float32", always_2d=True)
        start = max(0, len(samples) // 2 - a.num_samples // 2)
        wave = samples[start : start + a.num_samples].mean(axis=1)
        if len(wave) < a.num_samples:  # a short clip is tiled
            wave = np.tile(wave, a.num_samples // len(wave) + 1)[: a.num_samples]
        _, _, spec = signal.spectrogram(wave, rate, nperseg=a.nperseg, noverlap=a.noverlap)
        return image, torch.from_numpy(np.log(spec + a.log_eps) / a.log_divisor).float()[None]


def reference_rate(setup: Setup, bf16: bool, warmup: int) -> float:
    """Samples/s of one epoch of the reference loop after ``warmup`` steps (data waits included)."""
    plan, device = setup.plan, setup.device
    torch.manual_seed(0)
    model = create_model(plan.model).to(device).train()
    objective = create_objective(ObjectiveConfig(name="ezvsl"), model.cfg.audio.num_samples, seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=plan.lr)
    dataset = ReferenceTrainSet(read_items(setup.synth, "train"), model.cfg.image, model.cfg.audio)
    loader = DataLoader(
        dataset,
        batch_size=plan.batch,
        shuffle=True,
        num_workers=plan.workers,
        pin_memory=device.type == "cuda",
        drop_last=True,
    )
    timed_samples, start = 0, 0.0
    for step, (images, specs) in enumerate(loader):
        if step == warmup:
            sync(device)
            start = time.perf_counter()
        images, specs = images.to(device, non_blocking=True), specs.to(device, non_blocking=True)
        batch = Batch(images=images, waves=images.new_zeros(len(images), 0), step=step, specs=specs)
        with torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext():
            loss = objective(model, batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss.item()  # the reference logs every step's loss
        if step >= warmup:
            timed_samples += len(images)
    return timed_samples / (time.perf_counter() - start)


def speed_rows(setup: Setup) -> list[Row]:
    steps = setup.plan.n_train // setup.plan.batch
    cfg = train_config(setup, objective=ObjectiveConfig(name="ezvsl"), epochs=1, log_every=max(1, steps // 8))
    ours = train_run(cfg, setup.tmp / "train-speed").rate
    warmup = max(1, steps // 8)
    fp32, bf16 = reference_rate(setup, False, warmup), reference_rate(setup, True, warmup)
    need = setup.device.type == "cuda"
    rule = "vssl >= reference" if need else "figure only on cpu"
    detail = f"{steps} steps of {setup.plan.batch}, {setup.plan.model}, EZ-VSL, {setup.plan.workers} loader workers"
    return [
        Row.judged(
            f"train samples/s, vssl (cache, bf16, channels_last, fused) vs reference fp32 ({detail})",
            f"{ours:.1f} vs {fp32:.1f}: {ours / fp32:.2f}x",
            rule,
            math.isfinite(ours) and (ours >= fp32 or not need),
        ),
        Row(
            "train samples/s, vssl vs reference with bf16 autocast",
            f"{ours:.1f} vs {bf16:.1f}: {ours / bf16:.2f}x",
            "figure",
            "pass" if math.isfinite(ours / bf16) else "fail",
        ),
    ]


# ---------------------------------------------------------------- (e) evaluation speed and latency


def median_ms(run: Callable[[], Any], device: torch.device, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        run()
        sync(device)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def eval_rows(setup: Setup) -> list[Row]:
    if setup.release is None:
        return [Row("vssl eval images/s", "no trained model (training failed)", "-", "fail")]
    device, plan = setup.device, setup.plan
    cfg = EvalConfig(model=str(setup.release), data=setup.synth, repeats=10, batch_size=plan.batch, device=str(device))
    start = time.perf_counter()
    report = run_eval(cfg, setup.tmp / "eval", progress=False)
    wall = time.perf_counter() - start
    ciou = report["result"]["positive"]["universal_ciou_mean"]
    result = (
        f"{plan.n_test} test + {plan.n_calibration} calibration items x 10 repeats: "
        f"{plan.n_test / wall:.1f} images/s (wall {wall:.1f} s), cIoU {ciou:.3f}"
    )
    rows = [Row.judged("vssl eval images/s", result, "runs, finite cIoU", ciou is not None and math.isfinite(ciou))]

    model = load_model(setup.release, device=str(device))
    item = read_items(setup.synth, "test")[0]
    image = eval_transform(model.cfg.image)(load_image(item.image))[None].to(device)
    wave = center_window(load_audio(item.audio, model.cfg.audio.sample_rate), model.cfg.audio)[None].to(device)
    network = median_ms(lambda: model.localize(image, wave), device, repeats=30)

    def from_files() -> torch.Tensor:
        img = eval_transform(model.cfg.image)(load_image(item.image))[None].to(device)
        w = center_window(load_audio(item.audio, model.cfg.audio.sample_rate), model.cfg.audio)[None].to(device)
        return model.localize(img, w)

    files = median_ms(from_files, device, repeats=10)
    rows.append(
        Row.judged(
            "single-pair latency (median)",
            f"{network:.1f} ms network, {files:.1f} ms from files",
            "figure",
            math.isfinite(network) and math.isfinite(files),
        )
    )
    return rows


# ---------------------------------------------------------------- the run


def prepare(device: torch.device, plan: Plan, tmp: Path) -> Setup:
    """Synthetic benchmark and the shard cache of its training split."""
    synth = SynthConfig(
        n_train=plan.n_train, n_calibration=plan.n_calibration, n_test=plan.n_test, image_size=plan.image_size
    )
    spec = f"synth:{generate(synth, tmp / 'data', progress=False)}"
    size = model_config(plan.model)
    cache_cfg = CacheConfig(model=plan.model, workers=plan.workers)
    cache = build_cache(spec, tmp / "cache", cache_cfg, size.image, size.audio, progress=False)
    return Setup(device=device, plan=plan, tmp=tmp, synth=spec, cache=f"cache:{cache}")


def table(rows: list[Row]) -> str:
    lines = ["| check | result | tolerance / figure | status |", "|---|---|---|---|"]
    lines += [f"| {r.check} | {r.result} | {r.criterion} | {r.status} |" for r in rows]
    return "\n".join(lines)


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}, CUDA {torch.version.cuda}"
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads), torch {torch.__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:1, ... or cpu")
    parser.add_argument("--quick", action="store_true", help="tiny model and few steps (automatic on cpu)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: 1 on cpu, where two-thread kernels stall "
        "on a shared machine; torch's default on cuda)",
    )
    parser.add_argument("--torchrun-worker", nargs=2, metavar=("CONFIG", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.torchrun_worker:
        return torchrun_worker(*args.torchrun_worker)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"--device {args.device}: CUDA is not available here", file=sys.stderr)
        return 2
    plan = QUICK if args.quick or device.type == "cpu" else FULL
    threads = args.threads if args.threads is not None else (1 if device.type == "cpu" else 0)
    if threads:
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)  # the torchrun worker's too
    started = time.perf_counter()
    print(f"gpu_check on {describe(device)}; plan: {plan}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        setup = prepare(device, plan, Path(tmp))
        rows: list[Row] = []
        for check, run in (
            ("numerics", numerics_rows),
            ("training", training_rows),
            ("torchrun", torchrun_rows),
            ("training speed", speed_rows),
            ("evaluation", eval_rows),
        ):
            rows += guarded(check, lambda run=run: run(setup))
            print(f"  {check} done at {time.perf_counter() - started:.0f} s", flush=True)
    print()
    print(table(rows))
    failed = [r.check for r in rows if r.status == "fail"]
    print(f"\n{len(rows) - len(failed)} of {len(rows)} rows pass or n/a; {time.perf_counter() - started:.0f} s")
    if failed:
        print("FAILED: " + "; ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
