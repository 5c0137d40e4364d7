"""The ``vssl`` command line: one subcommand per task, each a thin wrapper over the library."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from dataclasses import replace
from pathlib import Path

from vssl.app import ServeConfig
from vssl.config import apply_overrides, config_help, dump_yaml, field_docs, from_dict, load_yaml, to_dict
from vssl.data.cache import AUDIO_FORMATS, CacheConfig
from vssl.data.prepare import PrepareConfig
from vssl.data.synth import SynthConfig
from vssl.demo import DEMO_OUT, DemoConfig, demo_config
from vssl.errors import ConfigError, VsslError
from vssl.evaluation.maps import NOISE_KINDS, SEED_SCHEMES
from vssl.evaluation.run import PROTOCOLS, EvalConfig
from vssl.evaluation.scoring import MAP_SCALES, NEGATIVE_POOLS, ScoreConfig
from vssl.evaluation.thresholds import THRESHOLD_NAMES
from vssl.export import EXPORT_FORMATS, ExportConfig
from vssl.inference.config import LocalizeConfig, LocalizerConfig
from vssl.models.convert import FORMATS, ConvertConfig
from vssl.models.ogl import MIX_RULES
from vssl.train.config import TrainConfig

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


def _printed(args: argparse.Namespace, cfg: object) -> bool:
    """With ``--print-config``: print the resolved config as YAML (and the command does nothing else)."""
    if args.print_config:
        print(dump_yaml(cfg), end="")
    return args.print_config


def _cmd_demo(args: argparse.Namespace) -> int:
    from vssl.demo import demo_config, run_demo

    cfg = demo_config(quick=args.quick, seed=args.seed, device=args.device)
    if args.methods:
        compare = tuple(m.strip() for m in args.methods.split(",") if m.strip() not in ("", "ezvsl"))
        cfg = replace(cfg, compare=compare)
    cfg = apply_overrides(cfg, args.overrides)
    if _printed(args, cfg):
        return 0
    report = run_demo(cfg, args.out, progress=not args.no_progress)
    print((Path(args.out) / "report.md").read_text())
    base, ours = report["methods"]["baseline"], report["methods"]["sslsan"]
    print(f"report: {Path(args.out) / 'report.md'}")
    for neg in ("silence", "noise"):
        print(f"separability {neg}: baseline {base['separability'][neg]:.3f}  sslsan {ours['separability'][neg]:.3f}")
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from vssl.data.synth import generate

    cfg = apply_overrides(SynthConfig(), args.overrides)
    if _printed(args, cfg):
        return 0
    root = generate(cfg, Path(args.out), progress=not args.no_progress)
    print(f"synthetic benchmark written to {root} (data spec: synth:{root})")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from vssl.errors import TrainingStopped
    from vssl.train.loop import train

    cfg = load_yaml(TrainConfig, args.config) if args.config else from_dict(TrainConfig, {})
    cfg = apply_overrides(cfg, args.overrides)
    if _printed(args, cfg):
        return 0
    try:
        release = train(cfg, Path(args.out), resume=args.resume)
    except TrainingStopped as stop:  # a clean stop (checkpoint written): the shell's code for that signal
        log.warning("%s", stop)
        return 128 + stop.signum
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one process reports
        print(f"model written to {release}")
    return 0


def _cmd_cache(args: argparse.Namespace) -> int:
    from vssl.data.cache import ShardCache, build_cache
    from vssl.models.registry import model_config

    cfg = CacheConfig(
        split=args.split, model=args.model, audio=args.audio, shard_size=args.shard_size, workers=args.workers
    )
    cfg = apply_overrides(cfg, args.overrides)
    if _printed(args, cfg):
        return 0
    size = model_config(cfg.model)
    out = build_cache(args.data, Path(args.out), cfg, size.image, size.audio, progress=not args.no_progress)
    cache = ShardCache(out)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{cache.size} items of {args.data} ({cfg.split}) in {out}: {size / 2**20:.1f} MiB")
    print(f"data spec: cache:{out} (train with data=cache:{out} model={cfg.model})")
    return 0


def _cmd_prepare(args: argparse.Namespace) -> int:
    from vssl.data.prepare import prepare

    cfg = PrepareConfig(
        frames_at=tuple(args.frames_at or ()), workers=args.workers, split=args.split, min_duration=args.min_duration
    )
    cfg = apply_overrides(cfg, args.overrides)
    if _printed(args, cfg):
        return 0
    summary = prepare(Path(args.videos), Path(args.out), cfg, progress=not args.no_progress)
    print(summary.text())
    print(f"data spec: vggsound:{args.out} (split {cfg.split!r})")
    return 0 if summary.ids else 1


def _cmd_convert(args: argparse.Namespace) -> int:
    from vssl.models.convert import convert

    cfg = apply_overrides(ConvertConfig(format=args.format, checkpoint=args.checkpoint), args.overrides)
    if _printed(args, cfg):
        return 0
    folder = convert(cfg.checkpoint, cfg.format, args.out)
    print(f"model written to {folder} (load it with vssl.load_model or --model {folder})")
    return 0


def _localizer_keys(args: argparse.Namespace) -> dict[str, object]:
    """The `LocalizerConfig` keys given by --model, --rule, --threshold, --threshold-scale and --device."""
    keys = ("model", "rule", "threshold", "threshold_scale", "device")
    return {key: getattr(args, key) for key in keys}


def _localizer(cfg: LocalizerConfig):
    """The `Localizer` of ``cfg``; says so when it cannot decide."""
    loc = cfg.load()
    if loc.threshold is None:
        log.warning("%s has no calibration (vssl eval --write-calibration): no abstain decision", cfg.model)
    return loc


def _cmd_localize(args: argparse.Namespace) -> int:
    from vssl.inference import noise_clip, silence_clip, write_json, write_overlay
    from vssl.inference.render import decision_text

    cfg = LocalizeConfig(**_localizer_keys(args), fps=args.fps, timeout=args.timeout, seed=args.seed)
    cfg = apply_overrides(cfg, args.overrides)
    if _printed(args, cfg):
        return 0
    if args.live is not None:
        from vssl.inference.live import run_live

        if args.json or args.audio or args.silence or args.noise:
            raise VsslError(
                "localize --live: decisions go to stdout as JSON lines, with the stream's own sound; "
                "--json, --audio, --silence and --noise do not apply"
            )
        summary = run_live(_localizer(cfg), args.live, cfg.fps, args.out, cfg.timeout)
        return 130 if summary.interrupted else 0
    if not (args.out or args.json):
        raise VsslError("localize: give --out PNG (MP4 for a video) and/or --json FILE")
    if args.image is not None and args.audio is None and not (args.silence or args.noise):
        raise VsslError("localize: an image needs --audio FILE, --silence or --noise")
    loc = _localizer(cfg)
    negative = "silence" if args.silence else "noise" if args.noise else None
    if args.video:
        from vssl.inference.video import localize_video

        timeline = localize_video(
            loc, args.video, args.out, args.audio, negative, cfg.fps, progress=not args.no_progress
        )
        abstained = sum(bool(f["abstain"]) for f in timeline.frames)
        print(
            f"{len(timeline.times)} frames at {cfg.fps:g} fps ({timeline.image_encodes} image encodings): "
            f"{abstained} without a visible source"
        )
        if args.out:
            print(f"overlay video written to {args.out}")
        if args.json:
            print(f"timeline written to {timeline.write_json(args.json)}")
        return 0
    clip = {"silence": silence_clip(loc.cfg.audio), "noise": noise_clip(loc.cfg.audio, cfg.seed)}.get(negative)
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

    cfg = ExportConfig(model=args.model, format=args.format, parts=args.parts, check=not args.no_check)
    cfg = apply_overrides(cfg, args.overrides)
    if _printed(args, cfg):
        return 0
    folder = resolve_model_path(cfg.model)
    calibration = read_calibration(folder) if Path(folder).is_dir() else None
    model = load_model(folder)
    meta = {"calibration": None if calibration is None else to_dict(calibration)}
    for path in export_onnx(model, args.out, parts=cfg.parts, metadata=meta):
        check = f" (onnxruntime vs PyTorch: max |diff| {onnx_parity(model, path):.2e})" if cfg.check else ""
        print(f"written {path}{check}")
    return 0


def _upload_bytes(megabytes: float) -> int:
    """``--max-upload-mb`` in bytes (``limits.max_bytes``)."""
    size = megabytes * 1e6
    if not math.isfinite(size):
        raise ConfigError(f"--max-upload-mb {megabytes:g} is too large")
    return round(size)


def _cmd_serve(args: argparse.Namespace) -> int:
    from vssl.app import serve

    limits = replace(
        SERVE.limits,
        max_bytes=_upload_bytes(args.max_upload_mb),
        max_audio_seconds=args.max_audio_seconds,
        max_video_seconds=args.max_video_seconds,
    )
    cfg = ServeConfig(**_localizer_keys(args), host=args.host, port=args.port, limits=limits)
    cfg = apply_overrides(cfg, args.overrides)
    if _printed(args, cfg):
        return 0
    serve(_localizer(cfg), host=cfg.host, port=cfg.port, name=cfg.model, limits=cfg.limits)
    return 0


def _score_config(args: argparse.Namespace) -> ScoreConfig:
    return ScoreConfig(map_scale=args.map_scale, threshold_scale=args.threshold_scale, rule=args.rule)


def _cmd_score(args: argparse.Namespace) -> int:
    from vssl.evaluation.report import write_json
    from vssl.evaluation.score_files import score_files

    cfg = apply_overrides(_score_config(args), args.overrides)
    if _printed(args, cfg):
        return 0
    result, _ = score_files(args.maps, args.gt, cfg, args.threshold, args.calibration)
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
    from vssl.evaluation.maps import NegativeAudio
    from vssl.evaluation.run import run_eval

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
        protocol=args.protocol,
        threshold=args.threshold or "",
        negatives=NegativeAudio(seeds=args.negative_seeds, noise=args.negative_noise, log=not args.skip_negative_log),
        score=replace(_score_config(args), negative_pool=args.negative_pool),
    )
    cfg = apply_overrides(cfg, args.overrides)
    if _printed(args, cfg):
        return 0
    report = run_eval(cfg, args.out, progress=not args.no_progress)
    print((Path(args.out) / "report.md").read_text())
    print(f"report: {Path(args.out) / 'report.json'} ({report['timing']['images_per_s']:.1f} images/s)")
    return 0


def _add_scale_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--map-scale", default=SCORE.map_scale, choices=MAP_SCALES, help=SCORE_DOCS["map_scale"])
    p.add_argument(
        "--threshold-scale", default=SCORE.threshold_scale, choices=MAP_SCALES, help=SCORE_DOCS["threshold_scale"]
    )
    p.add_argument("--rule", default=SCORE.rule, choices=THRESHOLD_NAMES, help=SCORE_DOCS["rule"])


def _add_localizer_options(p: argparse.ArgumentParser) -> None:
    """--model, --rule, --threshold, --threshold-scale, --device: the `LocalizerConfig` of localize and serve."""
    p.add_argument("--model", required=True, help=LOCALIZER_DOCS["model"])
    p.add_argument("--rule", default=LOCALIZER.rule, choices=THRESHOLD_NAMES, help=LOCALIZER_DOCS["rule"])
    p.add_argument("--threshold", type=finite_float, help=LOCALIZER_DOCS["threshold"])
    p.add_argument(
        "--threshold-scale",
        default=LOCALIZER.threshold_scale,
        choices=MAP_SCALES,
        help=LOCALIZER_DOCS["threshold_scale"],
    )
    p.add_argument("--device", default=LOCALIZER.device, help=LOCALIZER_DOCS["device"])


SCORE, SCORE_DOCS = ScoreConfig(), field_docs(ScoreConfig)
EVAL, EVAL_DOCS = EvalConfig(), field_docs(EvalConfig)
LOCALIZER, LOCALIZER_DOCS = LocalizerConfig(), field_docs(LocalizerConfig)
LOCALIZE, LOCALIZE_DOCS = LocalizeConfig(), field_docs(LocalizeConfig)
SERVE, SERVE_DOCS = ServeConfig(), field_docs(ServeConfig)
EXPORT, EXPORT_DOCS = ExportConfig(), field_docs(ExportConfig)
CONVERT_DOCS = field_docs(ConvertConfig)  # no default instance: the format must be given


def _config_command(sub, name: str, cls: type, defaults: object = None, **kwargs) -> argparse.ArgumentParser:
    """A subcommand whose --help lists every key of its config ``cls`` (type, default, doc), with
    ``key=value`` overrides and ``--print-config``."""
    p = sub.add_parser(
        name, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=config_help(cls, defaults), **kwargs
    )
    p.add_argument("--print-config", action="store_true", help="print the resolved config (YAML) and exit")
    p.set_defaults(config_class=cls)  # what the overrides change (tests check the docs' keys against it)
    return p


def _add_overrides(p: argparse.ArgumentParser) -> None:
    """The ``key=value`` overrides, after a command's own positional arguments."""
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides (keys listed below)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vssl",
        description="Visual sound source localization that knows when there is nothing to hear.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo_defaults = demo_config()
    demo = _config_command(
        sub, "demo", DemoConfig, demo_defaults, help="train baseline and SSL-SaN on the synthetic benchmark and compare"
    )
    demo.add_argument("--out", default=DEMO_OUT, help="output folder (default: ./%(default)s)")
    demo.add_argument("--quick", action="store_true", help="smaller benchmark and budget (about 3 minutes on 2 cores)")
    demo.add_argument("--device", default=demo_defaults.train.device, help="torch device: cpu, cuda, cuda:1, ...")
    demo.add_argument(
        "--seed", type=int, default=demo_defaults.train.seed, help="seed of the benchmark, training and negatives"
    )
    demo.add_argument(
        "--methods",
        help="also compare these methods, each with and without SSL-SaN negatives, e.g. ezvsl,slavc,fnac,lvs",
    )
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_overrides(demo)
    demo.set_defaults(func=_cmd_demo)

    synth = _config_command(sub, "synth", SynthConfig, help="write the synthetic audio-visual benchmark to a folder")
    synth.add_argument("--out", required=True, help="output folder")
    synth.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_overrides(synth)
    synth.set_defaults(func=_cmd_synth)

    tr = _config_command(
        sub, "train", TrainConfig, help="train a model (EZ-VSL baseline or SSL-SaN) from a YAML preset"
    )
    tr.add_argument("--config", help="YAML preset (see configs/); omitted: the defaults")
    tr.add_argument("--out", required=True, help="run folder (config, logs, checkpoints, model/)")
    tr.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    _add_overrides(tr)
    tr.set_defaults(func=_cmd_train)

    ca = _config_command(
        sub, "cache", CacheConfig, help="decode a training set once into memory-mapped shards (train with cache:OUT)"
    )
    cache, cache_docs = CacheConfig(), field_docs(CacheConfig)
    ca.add_argument("data", metavar="DATA", help="data spec FORMAT:ROOT, e.g. vggsound:/data/vggsound")
    ca.add_argument("out", metavar="OUT", help="cache folder; rerun the same command to finish an interrupted cache")
    ca.add_argument("--split", default=cache.split, help=cache_docs["split"])
    ca.add_argument("--model", default=cache.model, help=cache_docs["model"])
    ca.add_argument("--audio", default=cache.audio, choices=sorted(AUDIO_FORMATS), help=cache_docs["audio"])
    ca.add_argument("--shard-size", type=int, default=cache.shard_size, help=cache_docs["shard_size"])
    ca.add_argument("--workers", type=int, default=cache.workers, help=cache_docs["workers"])
    ca.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_overrides(ca)
    ca.set_defaults(func=_cmd_cache)

    prep = _config_command(
        sub, "prepare", PrepareConfig, help="extract frames and 16 kHz audio from a folder of videos (vggsound layout)"
    )
    prepare, prepare_docs = PrepareConfig(), field_docs(PrepareConfig)
    prep.add_argument("videos", metavar="VIDEOS_DIR", help="folder of videos (searched recursively)")
    prep.add_argument("out", metavar="OUT_DIR", help="output: frames/, audio/, SPLIT.txt; read as vggsound:OUT_DIR")
    prep.add_argument(
        "--frames-at", type=finite_float, nargs="+", metavar="T", help="frame times in s (default: the middle)"
    )
    prep.add_argument("--workers", type=int, default=prepare.workers, help=prepare_docs["workers"])
    prep.add_argument("--split", default=prepare.split, help=prepare_docs["split"])
    prep.add_argument(
        "--min-duration", type=finite_float, default=prepare.min_duration, help=prepare_docs["min_duration"]
    )
    prep.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_overrides(prep)
    prep.set_defaults(func=_cmd_prepare)

    conv = _config_command(
        sub, "convert", ConvertConfig, help="import an official checkpoint (EZ-VSL, FNAC, ...) as a vssl model folder"
    )
    conv.add_argument("--format", required=True, choices=list(FORMATS), help=CONVERT_DOCS["format"])
    conv.add_argument("checkpoint", help=CONVERT_DOCS["checkpoint"])
    conv.add_argument("--out", required=True, help="model folder to write (config.json + model.safetensors)")
    _add_overrides(conv)
    conv.set_defaults(func=_cmd_convert)

    loc = _config_command(
        sub,
        "localize",
        LocalizeConfig,
        help="where the sound is in an image or a video, or that nothing visible sounds",
    )
    what = loc.add_mutually_exclusive_group(required=True)
    what.add_argument("--image", help="image file (the frame)")
    what.add_argument("--video", help="video file: analysed at --fps; its own audio unless --audio/--silence/--noise")
    what.add_argument(
        "--live",
        metavar="SOURCE",
        help="live stream, analysed at --fps as it plays; one JSON line per decision on stdout: v4l2:/dev/video0+alsa:"
        "default (devices), rtsp:// http:// udp:// ... URL, or a named pipe / growing file carrying MPEG-TS",
    )
    sound = loc.add_mutually_exclusive_group()
    sound.add_argument("--audio", help="audio or video file; the 3 s window centred on the clip (or on each frame)")
    sound.add_argument("--silence", action="store_true", help="localize silence (negative audio)")
    sound.add_argument("--noise", action="store_true", help="localize white noise (negative audio, seeded)")
    loc.add_argument("--out", help="overlay to write: PNG for an image, MP4 (with the audio) for a video or --live")
    loc.add_argument("--json", help="JSON to write: the map and decision (image) or a per-frame timeline (video)")
    loc.add_argument("--fps", type=finite_float, default=LOCALIZE.fps, help=LOCALIZE_DOCS["fps"])
    loc.add_argument("--timeout", type=finite_float, default=LOCALIZE.timeout, help=LOCALIZE_DOCS["timeout"])
    loc.add_argument("--seed", type=int, default=LOCALIZE.seed, help=LOCALIZE_DOCS["seed"])
    _add_localizer_options(loc)
    loc.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_overrides(loc)
    loc.set_defaults(func=_cmd_localize)

    exp = _config_command(
        sub, "export", ExportConfig, help="export a model to ONNX (image + waveform -> features, embedding, map)"
    )
    exp.add_argument("format", choices=EXPORT_FORMATS, help=EXPORT_DOCS["format"])
    exp.add_argument("--model", required=True, help=EXPORT_DOCS["model"])
    exp.add_argument("--out", required=True, help="ONNX file to write, e.g. model.onnx")
    exp.add_argument("--parts", action="store_true", default=EXPORT.parts, help=EXPORT_DOCS["parts"])
    exp.add_argument("--no-check", action="store_true", help="check=false: skip the onnxruntime vs PyTorch comparison")
    _add_overrides(exp)
    exp.set_defaults(func=_cmd_export)

    srv = _config_command(
        sub, "serve", ServeConfig, help="web app: upload image + audio or a video, see where the sound is (gradio)"
    )
    srv.add_argument("--host", default=SERVE.host, help=SERVE_DOCS["host"])
    srv.add_argument("--port", type=int, default=SERVE.port, help=SERVE_DOCS["port"])
    limits, limit_docs = SERVE.limits, field_docs(type(SERVE.limits))
    srv.add_argument(
        "--max-upload-mb",
        type=finite_float,
        default=limits.max_bytes / 1e6,
        help="largest upload in MB (the key limits.max_bytes holds it in bytes)",
    )
    srv.add_argument(
        "--max-audio-seconds", type=finite_float, default=limits.max_audio_seconds, help=limit_docs["max_audio_seconds"]
    )
    srv.add_argument(
        "--max-video-seconds", type=finite_float, default=limits.max_video_seconds, help=limit_docs["max_video_seconds"]
    )
    _add_localizer_options(srv)
    _add_overrides(srv)
    srv.set_defaults(func=_cmd_serve)

    sc = _config_command(
        sub, "score", ScoreConfig, help="score saved heatmaps of any model against ground truth (positive + negatives)"
    )
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
    _add_overrides(sc)
    sc.set_defaults(func=_cmd_score)

    ev = _config_command(
        sub, "eval", EvalConfig, help="evaluate a model on a dataset under positive, silence, noise, offscreen audio"
    )
    ev.add_argument("--model", required=True, help="model folder (vssl train / convert / demo models/...)")
    ev.add_argument("--data", required=True, help="data spec FORMAT:ROOT, e.g. synth:./vssl-demo/data")
    ev.add_argument("--out", required=True, help="report folder")
    ev.add_argument("--split", default=EVAL.split, help=EVAL_DOCS["split"])
    ev.add_argument("--calibration-split", default=EVAL.calibration_split, help=EVAL_DOCS["calibration_split"])
    ev.add_argument("--repeats", type=int, default=EVAL.repeats, help=EVAL_DOCS["repeats"])
    ev.add_argument("--seed", type=int, default=EVAL.seed, help=EVAL_DOCS["seed"])
    ev.add_argument("--batch-size", type=int, default=EVAL.batch_size, help=EVAL_DOCS["batch_size"])
    ev.add_argument("--device", default=EVAL.device, help=EVAL_DOCS["device"])
    ev.add_argument("--write-calibration", action="store_true", help=EVAL_DOCS["write_calibration"])
    ev.add_argument("--ogl", help=EVAL_DOCS["ogl"])
    ev.add_argument("--ogl-method", default=EVAL.ogl_method, choices=list(MIX_RULES), help=EVAL_DOCS["ogl_method"])
    ev.add_argument("--protocol", default=EVAL.protocol, choices=PROTOCOLS, help=EVAL_DOCS["protocol"])
    ev.add_argument("--threshold", help=EVAL_DOCS["threshold"])
    negatives, negative_docs = EVAL.negatives, field_docs(type(EVAL.negatives))
    ev.add_argument("--negative-seeds", default=negatives.seeds, choices=SEED_SCHEMES, help=negative_docs["seeds"])
    ev.add_argument("--negative-noise", default=negatives.noise, choices=NOISE_KINDS, help=negative_docs["noise"])
    ev.add_argument("--skip-negative-log", action="store_true", help="negatives.log=false: " + negative_docs["log"])
    ev.add_argument(
        "--negative-pool", default=SCORE.negative_pool, choices=NEGATIVE_POOLS, help=SCORE_DOCS["negative_pool"]
    )
    ev.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_scale_options(ev)
    _add_overrides(ev)
    ev.set_defaults(func=_cmd_eval)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, with ``key=value`` overrides anywhere after the command (argparse alone takes positional
    overrides only before the options, when the command has positional arguments of its own)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    stray = [a for a in extra if a.startswith("-") or "=" not in a or not hasattr(args, "overrides")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
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
