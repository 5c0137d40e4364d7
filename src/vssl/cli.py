"""The ``vssl`` command line: one subcommand per task, each a thin wrapper over the library."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from vssl.config import apply_overrides, from_dict, load_yaml
from vssl.errors import VsslError
from vssl.models.convert import FORMATS

log = logging.getLogger("vssl")


def _cmd_demo(args: argparse.Namespace) -> int:
    from vssl.demo import demo_config, run_demo

    cfg = apply_overrides(demo_config(quick=args.quick, seed=args.seed, device=args.device), args.overrides)
    report = run_demo(cfg, args.out, progress=not args.no_progress)
    print((Path(args.out) / "report.md").read_text())
    base, ours = report["methods"]["baseline"], report["methods"]["sslsan"]
    print(f"report: {Path(args.out) / 'report.md'}")
    for neg in ("silence", "noise"):
        print(f"separability {neg}: baseline {base['separability'][neg]:.3f}  sslsan {ours['separability'][neg]:.3f}")
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from vssl.data.synth import SynthConfig, generate

    cfg = apply_overrides(SynthConfig(), args.overrides)
    root = generate(cfg, Path(args.out), progress=not args.no_progress)
    print(f"synthetic benchmark written to {root} (data spec: synth:{root})")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from vssl.train.loop import TrainConfig, train

    cfg = load_yaml(TrainConfig, args.config) if args.config else from_dict(TrainConfig, {})
    cfg = apply_overrides(cfg, args.overrides)
    release = train(cfg, Path(args.out), resume=args.resume)
    print(f"model written to {release}")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from vssl.models.convert import convert

    folder = convert(args.checkpoint, args.format, args.out)
    print(f"model written to {folder} (load it with vssl.load_model or --model {folder})")
    return 0


def _cmd_localize(args: argparse.Namespace) -> int:
    from vssl.infer import localize_files, write_json, write_overlay
    from vssl.models.release import load_model

    if not (args.out or args.json):
        raise VsslError("localize: give --out PNG and/or --json FILE")
    result = localize_files(load_model(args.model, device=args.device), args.image, args.audio)
    h, w = result.cosine_map.shape
    print(f"cosine map {h}x{w}: min {result.min:.4f} max {result.max:.4f} ({result.map_scale} scale)")
    if args.out:
        print(f"overlay written to {write_overlay(result, args.out, title=Path(args.audio).name)}")
    if args.json:
        print(f"map written to {write_json(result, args.json)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vssl",
        description="Visual sound source localization that knows when there is nothing to hear.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="train baseline and SSL-SaN on the built-in synthetic benchmark and compare")
    demo.add_argument("--out", default="vssl-demo", help="output folder (default: ./vssl-demo)")
    demo.add_argument("--quick", action="store_true", help="smaller benchmark and budget (about 3 minutes on a CPU)")
    demo.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, ...")
    demo.add_argument("--seed", type=int, default=0, help="seed of the benchmark, training and negatives")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    demo.add_argument("overrides", nargs="*", help="config overrides key=value, e.g. train.epochs=4")
    demo.set_defaults(func=_cmd_demo)

    synth = sub.add_parser("synth", help="write the synthetic audio-visual benchmark to a folder")
    synth.add_argument("--out", required=True, help="output folder")
    synth.add_argument("--no-progress", action="store_true", help="no progress bar")
    synth.add_argument("overrides", nargs="*", help="SynthConfig overrides key=value, e.g. seed=3 n_train=500")
    synth.set_defaults(func=_cmd_synth)

    tr = sub.add_parser("train", help="train a model (EZ-VSL baseline or SSL-SaN) from a YAML preset")
    tr.add_argument("--config", help="YAML preset (see configs/); omitted: the defaults")
    tr.add_argument("--out", required=True, help="run folder (config, logs, checkpoints, model/)")
    tr.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    tr.add_argument("overrides", nargs="*", help="config overrides key=value, e.g. objective.name=ezvsl epochs=2")
    tr.set_defaults(func=_cmd_train)

    conv = sub.add_parser("convert", help="import an official checkpoint (EZ-VSL, FNAC, ...) as a vssl model folder")
    conv.add_argument("--format", required=True, choices=list(FORMATS), help="the method that wrote the checkpoint")
    conv.add_argument("checkpoint", help="official checkpoint file (.pth), read with torch.load(weights_only=True)")
    conv.add_argument("--out", required=True, help="model folder to write (config.json + model.safetensors)")
    conv.set_defaults(func=_cmd_convert)

    loc = sub.add_parser("localize", help="heatmap of where the sound of an audio clip is in an image")
    loc.add_argument("--model", required=True, help="model folder (from vssl train or vssl convert)")
    loc.add_argument("--image", required=True, help="image file (the frame)")
    loc.add_argument("--audio", required=True, help="audio or video file; its central 3 s are used")
    loc.add_argument("--out", help="overlay PNG to write (absolute cosine colour scale)")
    loc.add_argument("--json", help="JSON to write: cosine map rows, min, max, map_scale")
    loc.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, ...")
    loc.set_defaults(func=_cmd_localize)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return args.func(args)
    except VsslError as exc:
        log.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
