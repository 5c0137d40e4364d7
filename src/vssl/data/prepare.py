"""``vssl prepare``: a folder of videos -> the ``vggsound`` layout (frames, 16 kHz audio, id list).

For every video under ``VIDEOS_DIR`` (recursively; ``.mp4 .mkv .webm .mov .avi .m4v .flv .mpg .mpeg .3gp``)::

    OUT/audio/{id}.wav     the first audio stream, decoded with PyAV (``vssl.audio.load_audio``): mono by
                           mean, resampled to 16 kHz by vssl's resampler, 16-bit PCM
    OUT/frames/{id}.jpg    the middle frame: the frame shown at half the audio's duration, i.e. at the
                           centre of the 3 s window the audio front end cuts (JPEG quality 95)
    OUT/{split}.txt        ids of every finished clip of VIDEOS_DIR, sorted (``--split``, default train)
    OUT/prepare_failures.tsv   video, kind, detail of every clip that failed in this run

so ``vggsound:OUT`` reads the result. ``id`` is the video's file stem; VGGSound downloads named
``{ytid}_{start_ms}_{end_ms}`` become ``{ytid}_{start:06d}`` (see ``canonical_clip_id``). With
``--frames-at T ...`` each clip gives one item per time instead: the frame shown at ``T`` s (from the video
stream's start) and the 3 s of audio centred on ``T`` (shifted to stay inside the clip), id ``{id}@{T}``.

Failures (reported with the file and the reason, never fatal to the run): ``corrupt`` (cannot be opened or
decoded), ``no video stream``, ``no audio stream``, ``too short``. The too-short rule (ours): a clip whose
decoded audio lasts less than ``min_duration`` (default 3.0 s, the front end's window, with 50 ms of slack
for codec padding) fails, because the front end would tile it — train on a looped sound; ``--min-duration
0`` keeps every clip. A time of ``--frames-at`` beyond the video's end also fails as too short.

Resumable: each file is written atomically (``vssl.atomic``), audio before frame, so a clip whose files
all exist is finished and skipped on the next run; failed clips are retried. Clips are processed in
parallel worker processes (forkserver where available, one torch thread each) behind a tqdm bar.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import av
import soundfile as sf
import torch
from PIL import Image
from tqdm import tqdm

from vssl.atomic import write_atomic, write_text_atomic
from vssl.audio import load_audio, open_media, stream_duration
from vssl.data.formats.vggsound import canonical_clip_id
from vssl.errors import ConfigError, DatasetError, MediaError

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".flv", ".mpg", ".mpeg", ".3gp")
FAILURE_KINDS = ("corrupt", "no video stream", "no audio stream", "too short")
FAILURES_FILE = "prepare_failures.tsv"
CLIPS_PER_WORKER = 8
"""Automatic worker count: a worker process costs about a second to start, worth it from 8 clips on."""
PADDING_SLACK = 0.05
"""Seconds of audio a clip may lack and still count as long enough (encoder priming and padding)."""


@dataclass(frozen=True)
class PrepareConfig:
    """What ``vssl prepare`` extracts from each video."""

    frames_at: tuple[float, ...] = ()
    """Times (s) of the frames to extract, one item each; empty: the middle frame, one item per clip."""
    workers: int = 0
    """Worker processes; 0 = one per CPU core (at most one per 8 clips), 1 = in this process."""
    split: str = "train"
    """Name of the id list written to ``OUT/{split}.txt``."""
    min_duration: float = 3.0
    """Clips with less audio than this (s) fail as too short; 0 keeps every clip."""
    sample_rate: int = 16000
    """Rate (Hz) of the written audio."""
    window: float = 3.0
    """Length (s) of the audio written per item when ``frames_at`` is given."""
    jpeg_quality: int = 95
    """JPEG quality of the written frames."""

    def __post_init__(self):
        if any(not math.isfinite(t) or t < 0 for t in self.frames_at):
            raise ConfigError(f"prepare: frame times must be >= 0 s, got {list(self.frames_at)}")
        if len(set(self.frames_at)) != len(self.frames_at):
            raise ConfigError(f"prepare: frame times repeat: {list(self.frames_at)}")
        if self.workers < 0:
            raise ConfigError(f"prepare: workers must be >= 0, got {self.workers}")
        if self.min_duration < 0 or self.window <= 0 or self.sample_rate <= 0:
            raise ConfigError("prepare: min_duration must be >= 0, window and sample_rate > 0")
        if not self.split or "/" in self.split or "\\" in self.split:
            raise ConfigError(f"prepare: split {self.split!r} must be a plain file name")


@dataclass(frozen=True)
class Failure:
    """A video that could not be prepared: ``kind`` is one of ``FAILURE_KINDS`` (or ``error``)."""

    video: Path
    kind: str
    detail: str


@dataclass
class PrepareSummary:
    """What a run did: ``ids`` lists every finished item of the videos (prepared now or before)."""

    out: Path
    ids: list[str] = field(default_factory=list)
    prepared: int = 0
    skipped: int = 0
    failures: list[Failure] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Failures per kind."""
        return dict(Counter(f.kind for f in self.failures))

    def text(self, limit: int = 50) -> str:
        """Human-readable summary: counts, then one line per failure (file: kind: detail), at most ``limit``."""
        lines = [
            f"prepared {self.prepared} clips, skipped {self.skipped} already finished, {len(self.failures)} failed; "
            f"{len(self.ids)} items in {self.out}"
        ]
        if self.failures:
            lines.append("failures: " + ", ".join(f"{kind} {n}" for kind, n in sorted(self.counts().items())))
            lines += [f"  {f.video}: {f.kind}: {f.detail}" for f in self.failures[:limit]]
            if len(self.failures) > limit:
                lines.append(f"  ... {len(self.failures) - limit} more in {self.out / FAILURES_FILE}")
        return "\n".join(lines)


class _ClipFailed(Exception):
    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail = kind, detail


# --------------------------------------------------------------------------------------------- one clip


def time_tag(seconds: float) -> str:
    """``2.5 -> "2.5"``, ``3.0 -> "3"``: the ``@{T}`` suffix of an item at an explicit time."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


def item_ids(clip_id: str, cfg: PrepareConfig) -> list[str]:
    """Ids of the items one clip gives."""
    return [f"{clip_id}@{time_tag(t)}" for t in cfg.frames_at] if cfg.frames_at else [clip_id]


def is_finished(out: Path, ids: list[str]) -> bool:
    """Whether every frame and audio file of ``ids`` exists (files are written atomically)."""
    return all((out / "frames" / f"{i}.jpg").is_file() and (out / "audio" / f"{i}.wav").is_file() for i in ids)


def _frame_at(container: av.container.InputContainer, stream: av.video.stream.VideoStream, target: float):
    """The frame shown at ``target`` s (stream time): the last frame starting at or before it."""
    try:
        container.seek(int(target / stream.time_base), stream=stream, backward=True, any_frame=False)
    except av.FFmpegError:
        container.seek(0)
    chosen = None
    try:
        for frame in container.decode(stream):
            if chosen is None or frame.time is None or frame.time <= target + 1e-6:
                chosen = frame
            if frame.time is not None and frame.time >= target:
                break
    except av.FFmpegError as err:
        if chosen is None:
            raise _ClipFailed("corrupt", f"cannot decode the video stream: {err}") from err
    if chosen is None:
        raise _ClipFailed("too short", f"no video frame at {target:.2f} s")
    return chosen.to_image()


def _frames(container: av.container.InputContainer, times: list[float]) -> list[Image.Image]:
    stream = container.streams.video[0]
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    duration = stream_duration(container, stream)
    images = []
    for t in times:
        if duration is not None and t > duration:
            raise _ClipFailed("too short", f"no frame at {t:.2f} s: the video lasts {duration:.2f} s")
        images.append(_frame_at(container, stream, start + t))
    return images


def _audio_window(wave: torch.Tensor, centre: float, cfg: PrepareConfig) -> torch.Tensor:
    """``cfg.window`` s of ``wave`` centred on ``centre`` s, shifted to stay inside the clip."""
    n = round(cfg.window * cfg.sample_rate)
    if wave.numel() <= n:
        return wave
    start = min(max(round(centre * cfg.sample_rate - n / 2), 0), wave.numel() - n)
    return wave[start : start + n]


def _write_wav(path: Path, wave: torch.Tensor, sample_rate: int) -> None:
    write_atomic(path, lambda tmp: sf.write(str(tmp), wave.numpy(), sample_rate, format="WAV", subtype="PCM_16"))


def _write_jpeg(path: Path, image: Image.Image, quality: int) -> None:
    write_atomic(path, lambda tmp: image.save(tmp, format="JPEG", quality=quality))


def _prepare(video: Path, clip_id: str, out: Path, cfg: PrepareConfig) -> list[str]:
    try:
        container = open_media(video)
    except (av.FFmpegError, OSError, ValueError) as err:
        raise _ClipFailed("corrupt", f"cannot open: {err}") from err
    with container:
        kinds = ", ".join(s.type for s in container.streams) or "none"
        if not container.streams.video:
            raise _ClipFailed("no video stream", f"streams: {kinds}")
        if not container.streams.audio:
            raise _ClipFailed("no audio stream", f"streams: {kinds}")
        try:
            wave = load_audio(video, cfg.sample_rate)
        except MediaError as err:
            raise _ClipFailed("corrupt", err.problem) from err
        duration = wave.numel() / cfg.sample_rate
        if duration + PADDING_SLACK < cfg.min_duration:
            raise _ClipFailed("too short", f"{duration:.2f} s of audio, less than {cfg.min_duration:g} s")
        times = list(cfg.frames_at) or [duration / 2]
        images = _frames(container, times)
    ids = item_ids(clip_id, cfg)
    for item_id, t, image in zip(ids, times, images, strict=True):
        clip = _audio_window(wave, t, cfg) if cfg.frames_at else wave
        _write_wav(out / "audio" / f"{item_id}.wav", clip, cfg.sample_rate)
        _write_jpeg(out / "frames" / f"{item_id}.jpg", image, cfg.jpeg_quality)
    return ids


def prepare_clip(video: Path, clip_id: str, out: Path, cfg: PrepareConfig) -> tuple[list[str], Failure | None]:
    """Extract one video's items into ``out``; returns (item ids, None) or ([], the failure)."""
    try:
        return _prepare(video, clip_id, out, cfg), None
    except _ClipFailed as failed:
        return [], Failure(video, failed.kind, failed.detail)
    except Exception as err:  # one odd file must not stop a run over 200 000 videos; it is reported
        logger.debug("unexpected error preparing %s", video, exc_info=True)
        return [], Failure(video, "error", f"{type(err).__name__}: {err}")


# --------------------------------------------------------------------------------------------- the run


def find_videos(videos_dir: Path) -> dict[str, Path]:
    """``{clip id: video path}`` of every video under ``videos_dir``; two videos with one id are an error."""
    videos_dir = Path(videos_dir)
    if not videos_dir.is_dir():
        raise DatasetError(f"{videos_dir}: videos folder not found")
    found: dict[str, Path] = {}
    for path in sorted(videos_dir.rglob("*")):
        if path.suffix.lower() not in VIDEO_EXTENSIONS or path.name.startswith(".") or not path.is_file():
            continue
        clip_id = canonical_clip_id(path.stem)
        if clip_id in found:
            raise DatasetError(f"{path}: same clip id {clip_id!r} as {found[clip_id]}; rename one of them")
        found[clip_id] = path
    if not found:
        raise DatasetError(f"{videos_dir}: no video files ({' '.join(VIDEO_EXTENSIONS)})")
    return found


def _worker_count(cfg: PrepareConfig, jobs: int) -> int:
    """Processes to use: ``cfg.workers``, or (auto) one per core but at most one per ``CLIPS_PER_WORKER`` clips."""
    if cfg.workers:
        return max(1, min(cfg.workers, jobs))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, jobs // CLIPS_PER_WORKER))


def _init_worker() -> None:
    torch.set_num_threads(1)  # parallelism comes from the processes


def _run(jobs: list[tuple[Path, str]], out: Path, cfg: PrepareConfig) -> Iterator[tuple[list[str], Failure | None]]:
    workers = _worker_count(cfg, len(jobs))
    if workers == 1:
        for video, clip_id in jobs:
            yield prepare_clip(video, clip_id, out, cfg)
        return
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload([__name__])  # workers fork from a process that already imported torch
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker)
    try:
        futures: list[Future] = [pool.submit(prepare_clip, video, clip_id, out, cfg) for video, clip_id in jobs]
        for future in as_completed(futures):
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def prepare(videos_dir: Path, out: Path, cfg: PrepareConfig = PrepareConfig(), progress: bool = True) -> PrepareSummary:
    """Prepare every video of ``videos_dir`` into ``out`` (layout in the module docstring)."""
    out = Path(out)
    videos = find_videos(videos_dir)
    for sub in ("frames", "audio"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    summary = PrepareSummary(out)
    jobs = []
    for clip_id, video in videos.items():
        ids = item_ids(clip_id, cfg)
        if is_finished(out, ids):
            summary.ids += ids
            summary.skipped += 1
        else:
            jobs.append((video, clip_id))
    with tqdm(total=len(jobs), desc="prepare", unit="clip", disable=not progress) as bar:
        for ids, failure in _run(jobs, out, cfg):
            bar.update()
            if failure is None:
                summary.ids += ids
                summary.prepared += 1
            else:
                summary.failures.append(failure)
    summary.ids.sort()
    summary.failures.sort(key=lambda f: str(f.video))
    write_text_atomic(out / f"{cfg.split}.txt", "".join(f"{i}\n" for i in summary.ids))
    rows = [f"{f.video}\t{f.kind}\t{' '.join(f.detail.split())}\n" for f in summary.failures]
    write_text_atomic(out / FAILURES_FILE, "video\tkind\tdetail\n" + "".join(rows))
    logger.info("%s", summary.text().splitlines()[0])
    return summary
