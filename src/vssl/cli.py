"""The ``vssl`` command line: one subcommand per task, each a thin wrapper over the library."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from dataclasses import replace
from pathlib import Path

from vssl.config import apply_overrides, from_dict, load_yaml, to_dict
from vssl.errors import VsslError
from vssl.models.convert import FORMATS

log = logging.getLogger("vssl")


def finite_float(text: str) -> float:
    """argparse type of every number option: a float that is neither NaN nor infinite (argparse names the option)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _cmd_demo(args: argparse.Namespace) -> int:
    from vssl.demo import demo_config, run_demo

    cfg = demo_config(quick=args.quick, seed=args.seed, device=args.device)
    if args.methods:
        compare = tuple(m.strip() for m in args.methods.split(",") if m.strip() not in ("", "ezvsl"))
        cfg = replace(cfg, compare=compare)
    cfg = apply_overrides(cfg, args.overrides)
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
    from vssl.errors import TrainingStopped
    from vssl.train.loop import TrainConfig, train

    cfg = load_yaml(TrainConfig, args.config) if args.config else from_dict(TrainConfig, {})
    cfg = apply_overrides(cfg, args.overrides)
    try:
        release = train(cfg, Path(args.out), resume=args.resume)
    except TrainingStopped as stop:  # a clean stop (checkpoint written): the shell's code for that signal
        log.warning("%s", stop)
        return 128 + stop.signum
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one process reports
        print(f"model written to {release}")
    return 0


def _cmd_cache(args: argparse.Namespace) -> int:
    from vssl.data.cache import CacheConfig, ShardCache, build_cache

    cfg = CacheConfig(
        split=args.split, model=args.model, audio=args.audio, shard_size=args.shard_size, workers=args.workers
    )
    out = build_cache(args.data, Path(args.out), cfg, progress=not args.no_progress)
    cache = ShardCache(out)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{cache.size} items of {args.data} ({cfg.split}) in {out}: {size / 2**20:.1f} MiB")
    print(f"data spec: cache:{out} (train with data=cache:{out} model={cfg.model})")
    return 0


def _cmd_prepare(args: argparse.Namespace) -> int:
    from vssl.data.prepare import PrepareConfig, prepare

    cfg = PrepareConfig(
        frames_at=tuple(args.frames_at or ()), workers=args.workers, split=args.split, min_duration=args.min_duration
    )
    summary = prepare(Path(args.videos), Path(args.out), cfg, progress=not args.no_progress)
    print(summary.text())
    print(f"data spec: vggsound:{args.out} (split {cfg.split!r})")
    return 0 if summary.ids else 1


def _cmd_convert(args: argparse.Namespace) -> int:
    from vssl.models.convert import convert

    folder = convert(args.checkpoint, args.format, args.out)
    print(f"model written to {folder} (load it with vssl.load_model or --model {folder})")
    return 0


def _localizer(args: argparse.Namespace):
    """The `Localizer` of ``--model`` with ``--rule`` / ``--threshold``; says so when it cannot decide."""
    import warnings

    from vssl.inference import UncalibratedModelWarning, load_localizer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UncalibratedModelWarning)
        scale = {"unit": "(cos+1)/2", "cosine": "cosine"}[args.threshold_scale]
        loc = load_localizer(args.model, args.device, args.rule, args.threshold, scale)
    if loc.threshold is None:
        log.warning("%s has no calibration (vssl eval --write-calibration): no abstain decision", args.model)
    return loc


def _cmd_localize(args: argparse.Namespace) -> int:
    from vssl.inference import noise_clip, silence_clip, write_json, write_overlay
    from vssl.inference.render import decision_text

    if not (args.out or args.json):
        raise VsslError("localize: give --out PNG (MP4 for a video) and/or --json FILE")
    if args.image is not None and args.audio is None and not (args.silence or args.noise):
        raise VsslError("localize: an image needs --audio FILE, --silence or --noise")
    loc = _localizer(args)
    negative = "silence" if args.silence else "noise" if args.noise else None
    if args.video:
        from vssl.inference.video import localize_video

        timeline = localize_video(
            loc, args.video, args.out, args.audio, negative, args.fps, progress=not args.no_progress
        )
        abstained = sum(bool(f["abstain"]) for f in timeline.frames)
        print(
            f"{len(timeline.times)} frames at {args.fps:g} fps ({timeline.image_encodes} image encodings): "
            f"{abstained} without a visible source"
        )
        if args.out:
            print(f"overlay video written to {args.out}")
        if args.json:
            print(f"timeline written to {timeline.write_json(args.json)}")
        return 0
    clip = {"silence": silence_clip(loc.cfg.audio), "noise": noise_clip(loc.cfg.audio, args.seed)}.get(negative)
    audio_name = negative or Path(args.audio).name
    result = loc.localize(args.image, clip if clip is not None else args.audio)
    h, w = result.cosine_map.shape
    print(f"cosine map {h}x{w}: min {result.min:.4f} max {result.max:.4f} ({result.map_scale} scale)")
    print(decision_text(result))
    if args.out:
        print(f"overlay written to {write_overlay(result, args.out, title=audio_name)}")
    if args.json:
        print(f"map written to {write_json(result, args.json)}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from vssl.export import export_onnx, onnx_parity
    from vssl.inference.calibration import read_calibration
    from vssl.inference.hub import resolve_model_path
    from vssl.models.release import load_model

    folder = resolve_model_path(args.model)
    calibration = read_calibration(folder) if Path(folder).is_dir() else None
    model = load_model(folder)
    meta = {"calibration": None if calibration is None else to_dict(calibration)}
    for path in export_onnx(model, args.out, parts=args.parts, metadata=meta):
        check = "" if args.no_check else f" (onnxruntime vs PyTorch: max |diff| {onnx_parity(model, path):.2e})"
        print(f"written {path}{check}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from vssl.app import serve
    from vssl.inference.uploads import UploadLimits

    limits = UploadLimits(round(args.max_upload_mb * 1e6), args.max_audio_seconds, args.max_video_seconds)
    serve(_localizer(args), host=args.host, port=args.port, name=args.model, limits=limits)
    return 0


def _score_config(args: argparse.Namespace):
    from vssl.evaluation.scoring import ScoreConfig

    return ScoreConfig(map_scale=args.map_scale, threshold_scale=args.threshold_scale, rule=args.rule)


def _cmd_score(args: argparse.Namespace) -> int:
    from vssl.evaluation.report import write_json
    from vssl.evaluation.score_files import score_files

    result, _ = score_files(args.maps, args.gt, _score_config(args), args.threshold, args.calibration)
    write_json(Path(args.out), result)
    pos = result["positive"]
    print(f"threshold {result['threshold']:.4f} ({result['threshold_source']})")
    fmt = {
        k: "n/a" if pos[k] is None else f"{pos[k]:.4f}"
        for k in ("universal_ciou_mean", "universal_ap50", "universal_auc")
    }
    print(f"universal: cIoU {fmt['universal_ciou_mean']}  AP50 {fmt['universal_ap50']}  AUC {fmt['universal_auc']}")
    for neg, v in result["negatives"].items():
        print(f"{neg}: pIA {v['pia']:.4f}  AOC {v['aoc']:.4f}")
    print(f"result: {args.out}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from vssl.evaluation.run import EvalConfig, run_eval

    cfg = EvalConfig(
        model=args.model,
        data=args.data,
        split=args.split,
        calibration_split=None if args.calibration_split in ("", "none") else args.calibration_split,
        repeats=args.repeats,
        seed=args.seed,
        batch_size=args.batch_size,
        device=args.device,
        write_calibration=args.write_calibration,
        ogl=args.ogl,
        ogl_method=args.ogl_method,
        score=_score_config(args),
    )
    report = run_eval(cfg, args.out, progress=not args.no_progress)
    print((Path(args.out) / "report.md").read_text())
    print(f"report: {Path(args.out) / 'report.json'} ({report['timing']['images_per_s']:.1f} images/s)")
    return 0


def _add_scale_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--map-scale", default="cosine", choices=["cosine", "unit"], help="scale of the maps (default cosine)"
    )
    p.add_argument(
        "--threshold-scale",
        default="unit",
        choices=["unit", "cosine"],
        help="absolute scale thresholds apply to: unit = (cos+1)/2 (EZ-VSL family, default), cosine (LVS family)",
    )
    p.add_argument("--rule", default="maxq3", choices=["max", "max10", "maxq3"], help="universal threshold rule")


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="model folder (vssl train / convert / demo) or hf-hub:ORG/NAME")
    p.add_argument("--rule", default="maxq3", choices=["max", "max10", "maxq3"], help="calibrated threshold used")
    p.add_argument("--threshold", type=finite_float, help="threshold to use instead of the model's calibration")
    p.add_argument(
        "--threshold-scale", default="unit", choices=["unit", "cosine"], help="scale of --threshold (unit: (cos+1)/2)"
    )
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, ...")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vssl",
        description="Visual sound source localization that knows when there is nothing to hear.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="train baseline and SSL-SaN on the built-in synthetic benchmark and compare")
    demo.add_argument("--out", default="vssl-demo", help="output folder (default: ./vssl-demo)")
    demo.add_argument("--quick", action="store_true", help="smaller benchmark and budget (about 2½ minutes on 2 cores)")
    demo.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, ...")
    demo.add_argument("--seed", type=int, default=0, help="seed of the benchmark, training and negatives")
    demo.add_argument(
        "--methods",
        help="also compare these methods, each with and without SSL-SaN negatives, e.g. ezvsl,slavc,fnac,lvs",
    )
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

    ca = sub.add_parser("cache", help="decode a training set once into memory-mapped shards (train with cache:OUT)")
    ca.add_argument("data", metavar="DATA", help="data spec FORMAT:ROOT, e.g. vggsound:/data/vggsound")
    ca.add_argument("out", metavar="OUT", help="cache folder; rerun the same command to finish an interrupted cache")
    ca.add_argument("--split", default="train", help="split to cache (default train)")
    ca.add_argument("--model", default="resnet18", help="model size whose preprocessing to store (default resnet18)")
    ca.add_argument(
        "--audio",
        default="int16",
        choices=["int16", "float16", "spectrogram"],
        help="stored audio: 16 kHz windows as int16 (default) or float16, or float16 log-spectrograms",
    )
    ca.add_argument("--shard-size", type=int, default=1024, help="items per shard (default 1024)")
    ca.add_argument("--workers", type=int, default=0, help="decoding worker processes (default 0: this process)")
    ca.add_argument("--no-progress", action="store_true", help="no progress bar")
    ca.set_defaults(func=_cmd_cache)

    prep = sub.add_parser("prepare", help="extract frames and 16 kHz audio from a folder of videos (vggsound layout)")
    prep.add_argument("videos", metavar="VIDEOS_DIR", help="folder of videos (searched recursively)")
    prep.add_argument("out", metavar="OUT_DIR", help="output: frames/, audio/, SPLIT.txt; read as vggsound:OUT_DIR")
    prep.add_argument(
        "--frames-at", type=finite_float, nargs="+", metavar="T", help="frame times in s (default: the middle)"
    )
    prep.add_argument("--workers", type=int, default=0, help="worker processes (default 0: one per CPU core)")
    prep.add_argument("--split", default="train", help="name of the id list written as OUT_DIR/SPLIT.txt")
    prep.add_argument(
        "--min-duration", type=finite_float, default=3.0, help="shorter clips fail as too short (0 keeps all)"
    )
    prep.add_argument("--no-progress", action="store_true", help="no progress bar")
    prep.set_defaults(func=_cmd_prepare)

    conv = sub.add_parser("convert", help="import an official checkpoint (EZ-VSL, FNAC, ...) as a vssl model folder")
    conv.add_argument("--format", required=True, choices=list(FORMATS), help="the method that wrote the checkpoint")
    conv.add_argument("checkpoint", help="official checkpoint file (.pth), read with torch.load(weights_only=True)")
    conv.add_argument("--out", required=True, help="model folder to write (config.json + model.safetensors)")
    conv.set_defaults(func=_cmd_convert)

    loc = sub.add_parser("localize", help="where the sound is in an image or a video, or that nothing visible sounds")
    what = loc.add_mutually_exclusive_group(required=True)
    what.add_argument("--image", help="image file (the frame)")
    what.add_argument("--video", help="video file: analysed at --fps; its own audio unless --audio/--silence/--noise")
    sound = loc.add_mutually_exclusive_group()
    sound.add_argument("--audio", help="audio or video file; the 3 s window centred on the clip (or on each frame)")
    sound.add_argument("--silence", action="store_true", help="localize silence (negative audio)")
    sound.add_argument("--noise", action="store_true", help="localize white noise (negative audio, seeded)")
    loc.add_argument("--out", help="overlay to write: PNG for an image, MP4 (with the audio) for a video")
    loc.add_argument("--json", help="JSON to write: the map and decision (image) or a per-frame timeline (video)")
    loc.add_argument("--fps", type=finite_float, default=5.0, help="video: analysed frames per second (default 5)")
    loc.add_argument("--seed", type=int, default=0, help="seed of --noise")
    _add_model_options(loc)
    loc.add_argument("--no-progress", action="store_true", help="no progress bar")
    loc.set_defaults(func=_cmd_localize)

    exp = sub.add_parser("export", help="export a model to ONNX (image + waveform -> features, embedding, map)")
    exp.add_argument("format", choices=["onnx"], help="export format")
    exp.add_argument("--model", required=True, help="model folder or hf-hub:ORG/NAME")
    exp.add_argument("--out", required=True, help="ONNX file to write, e.g. model.onnx")
    exp.add_argument("--parts", action="store_true", help="also write OUT.image.onnx and OUT.audio.onnx encoders")
    exp.add_argument("--no-check", action="store_true", help="skip the onnxruntime vs PyTorch comparison")
    exp.set_defaults(func=_cmd_export)

    srv = sub.add_parser("serve", help="web app: upload image + audio or a video, see where the sound is (gradio)")
    srv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    srv.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    srv.add_argument("--max-upload-mb", type=finite_float, default=50.0, help="largest upload in MB (default 50)")
    srv.add_argument("--max-audio-seconds", type=finite_float, default=60.0, help="longest audio clip (default 60 s)")
    srv.add_argument("--max-video-seconds", type=finite_float, default=600.0, help="longest video (default 600 s)")
    _add_model_options(srv)
    srv.set_defaults(func=_cmd_serve)

    sc = sub.add_parser("score", help="score saved heatmaps of any model against ground truth (positive + negatives)")
    sc.add_argument("--maps", required=True, help="MAPS.npz: positive [N,H,W], optional silence/noise/offscreen")
    sc.add_argument(
        "--gt", required=True, help='GT.json: per sample {"boxes": [[x0,y0,x1,y1]], "gt_style"} or {"mask"}'
    )
    sc.add_argument("--out", required=True, help="RESULT.json to write")
    sc.add_argument(
        "--threshold", type=finite_float, help="universal threshold (on the threshold scale); default: calibrated"
    )
    sc.add_argument("--calibration", help="CAL.npz whose negative maps calibrate the universal threshold")
    _add_scale_options(sc)
    sc.set_defaults(func=_cmd_score)

    ev = sub.add_parser("eval", help="evaluate a model on a dataset under positive, silence, noise, offscreen audio")
    ev.add_argument("--model", required=True, help="model folder (vssl train / convert / demo models/...)")
    ev.add_argument("--data", required=True, help="data spec FORMAT:ROOT, e.g. synth:./vssl-demo/data")
    ev.add_argument("--out", required=True, help="report folder")
    ev.add_argument("--split", default="test", help="evaluated split (default test)")
    ev.add_argument(
        "--calibration-split",
        default="calibration",
        help="split calibrating the universal thresholds; 'none' = use the model's stored calibration",
    )
    ev.add_argument("--repeats", type=int, default=10, help="negative draws pooled (seeded; default 10)")
    ev.add_argument("--seed", type=int, default=0, help="seed of the negative draws")
    ev.add_argument("--batch-size", type=int, default=32)
    ev.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, ...")
    ev.add_argument("--write-calibration", action="store_true", help="store the calibrated thresholds in the model")
    ev.add_argument("--ogl", help="also report with OGL: 'imagenet' (torchvision weights) or a resnet18 weights file")
    ev.add_argument("--ogl-method", default="ezvsl", choices=["ezvsl", "fnac", "slavc"], help="OGL mixing rule")
    ev.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_scale_options(ev)
    ev.set_defaults(func=_cmd_eval)
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
