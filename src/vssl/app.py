"""``vssl serve``: a web app (Gradio, the optional extra ``app``) around a `Localizer`.

Tab "Image + audio": upload a frame and a clip, or choose silence or noise as the sound; shows the overlay
on the absolute scale, the map's absolute maximum, the decision (source visible / no visible source) and the
threshold it used. Tab "Video": upload a video; shows the overlay video (with its audio) and the per-frame
timeline.

Hardening: binds 127.0.0.1 unless told otherwise. Uploads are limited in size (Gradio refuses larger ones),
duration and frame size, and checked by decoding, not by name (`vssl.inference.uploads`; a refusal is a
one-line message in the page). The handlers get Gradio's raw payloads (``preprocess=False``: Gradio's own
image and audio conversions never run on uploads) and open only files inside Gradio's upload folder. Results
go to a fresh folder per request inside it; Gradio deletes uploads and results an hour after they were made
(checked every 10 minutes) and at shutdown. At most `MAX_QUEUE` requests wait; one runs at a time.

The handlers (`analyse_image`, `analyse_video`) are plain functions of files, usable without a browser.
"""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from vssl.errors import ConfigError, VsslError
from vssl.inference.config import LocalizerConfig
from vssl.inference.inputs import noise_clip, silence_clip
from vssl.inference.localizer import Localizer
from vssl.inference.render import render_overlay
from vssl.inference.result import Localization
from vssl.inference.uploads import (
    DEFAULT_LIMITS,
    UploadLimits,
    check_video,
    decoding_video,
    display_name,
    read_audio,
    read_image,
    upload_path,
)

UPLOADED = "uploaded audio"
SOUNDS = (UPLOADED, "silence", "noise")
VIDEO_SOUNDS = ("the video's audio", "silence", "noise")
FPS_RANGE = (0.5, 10.0)
"""Analysed frames per second the Video tab offers (and accepts from the API)."""
MAX_QUEUE = 16
"""Requests that may wait for their turn; more are refused ("queue full") rather than piling up."""
KEEP_FILES = (600, 3600)
"""Every 600 s, Gradio deletes the uploads and results older than 3600 s (and all of them at shutdown)."""
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
"""Addresses only this machine reaches; the app binds the first unless told otherwise."""
DEFAULT_PORT = 7860
"""Gradio's usual port."""

logger = logging.getLogger(__name__)


def summary(result: Localization) -> str:
    """The result in a few ``key: value`` lines (what the page shows and the browser test reads)."""
    t = result.threshold
    if result.abstain is None:
        decision = "none (uncalibrated model)"
    else:
        decision = "no visible source (abstain)" if result.abstain else "source visible"
    lines = [
        f"decision: {decision}",
        f"absolute max (cosine): {result.max:.4f}",
        f"absolute min (cosine): {result.min:.4f}",
    ]
    if t is not None and result.score is not None:
        lines += [f"score ({t.scale}): {result.score:.4f}", f"threshold: {t.value:.4f} ({t.rule}, {t.scale})"]
    if result.box is not None:
        lines.append("box: [" + ", ".join(f"{v:.1f}" for v in result.box) + "]")
    return "\n".join(lines)


def analyse_image(
    localizer: Localizer,
    image: str | Path | None,
    audio: str | Path | None,
    sound: str = UPLOADED,
    limits: UploadLimits = DEFAULT_LIMITS,
) -> tuple[Image.Image, str, dict[str, Any]]:
    """Uploaded files (paths) and the sound choice -> (overlay, summary, JSON record without the raw map rows).

    Each file is checked and decoded once (`read_image`, `read_audio`); a refusal is an `UploadError`."""
    if sound not in SOUNDS:
        raise VsslError(f"unknown sound; choose one of {list(SOUNDS)}")  # no echo of request text
    if not image:
        raise VsslError("upload an image")
    if sound == UPLOADED and not audio:
        raise VsslError("upload an audio clip, or choose silence or noise")
    cfg = localizer.cfg.audio
    frame = read_image(image, limits)
    if sound == UPLOADED:
        clip, title = read_audio(audio, cfg.sample_rate, limits), display_name(audio)
    else:
        clip, title = (silence_clip(cfg) if sound == "silence" else noise_clip(cfg)), sound
    result = localizer.localize(frame, clip)
    assert isinstance(result, Localization)
    return render_overlay(result, title=title), summary(result), result.to_json()


def analyse_video(
    localizer: Localizer,
    video: str | Path | None,
    out_dir: str | Path,
    sound: str = VIDEO_SOUNDS[0],
    fps: float = 2.0,
    limits: UploadLimits = DEFAULT_LIMITS,
) -> tuple[str, str, dict[str, Any]]:
    """An uploaded video -> (overlay MP4 path in ``out_dir``, summary, timeline JSON).

    The video is checked first (`check_video`); a refusal, or a decoding failure later on, is an `UploadError`."""
    from vssl.inference.video import localize_video

    if sound not in VIDEO_SOUNDS:
        raise VsslError(f"unknown sound; choose one of {list(VIDEO_SOUNDS)}")
    if not video:
        raise VsslError("upload a video")
    if not FPS_RANGE[0] <= fps <= FPS_RANGE[1]:
        raise VsslError(f"analysed frames per second must be in [{FPS_RANGE[0]:g}, {FPS_RANGE[1]:g}], got {fps:g}")
    check_video(video, limits)
    name = display_name(video)
    negative = sound if sound in ("silence", "noise") else None
    out = Path(out_dir) / f"{Path(name).stem}-overlay.mp4"
    with decoding_video(video):
        timeline = localize_video(localizer, video, out, negative=negative, fps=fps, progress=False)
    abstained = sum(bool(f["abstain"]) for f in timeline.frames)
    decided = sum(f["abstain"] is not None for f in timeline.frames)
    text = (
        f"frames analysed: {len(timeline.frames)} at {fps:g} fps\n"
        f"no visible source in {abstained} of {decided} decided frames\n"
        f"absolute max (cosine) over the video: {max(f['max'] for f in timeline.frames):.4f}"
    )
    return str(out), text, {**timeline.to_json(), "video": name}  # the upload's name, not its server path


def _gradio() -> Any:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a local tool: no usage reports unless asked for
    try:
        return importlib.import_module("gradio")
    except ImportError:
        raise VsslError("the web app needs gradio (pip install -e '.[app]' in the vssl checkout)") from None


def _threshold_note(localizer: Localizer) -> str:
    t = localizer.threshold
    if t is None:
        return "This model has **no calibration**: maps are shown, but there is no abstain decision."
    return (
        f"Threshold **{t.value:.4f}** ({t.rule}, on the {t.scale} scale): a frame whose map never exceeds it has "
        "no visible source."
    )


def _fps(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise VsslError("analysed frames per second must be a number") from None


def build_app(localizer: Localizer, name: str = "vssl", limits: UploadLimits = DEFAULT_LIMITS) -> Any:
    """The Gradio Blocks app (not launched); the handlers get Gradio's raw upload payloads (``preprocess=False``)."""
    gr = _gradio()

    @contextmanager
    def request_dir() -> Iterator[Path]:
        """A new folder for one request's result files, inside Gradio's upload folder: Gradio serves them from
        there and deletes them with the uploads. (Gradio's own cache names an image by its content and rewrites
        it in place, so two requests with the same overlay would race: a client could read a truncated file.)
        Removed at once if the request fails; a refusal becomes the one-line message the page shows."""
        root = Path(app.GRADIO_CACHE)
        root.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="vssl-", dir=root))
        try:
            yield folder
        except Exception as exc:
            shutil.rmtree(folder, ignore_errors=True)
            if isinstance(exc, VsslError):
                raise gr.Error(str(exc)) from exc
            raise

    def on_image(image: Mapping | None, audio: Mapping | None, sound: str):
        with request_dir() as out:
            root = app.GRADIO_CACHE
            overlay, text, record = analyse_image(
                localizer, upload_path(image, root), upload_path(audio, root), sound, limits
            )
            overlay.save(out / "overlay.png")
            return str(out / "overlay.png"), text, record

    def on_video(video: Mapping | None, sound: str, fps: Any):
        with request_dir() as out:
            return analyse_video(localizer, upload_path(video, app.GRADIO_CACHE), out, sound, _fps(fps), limits)

    with gr.Blocks(title=f"vssl: {name}", analytics_enabled=False, delete_cache=KEEP_FILES) as app:
        gr.Markdown(f"## Where is the sound? ({name})\n{_threshold_note(localizer)}")
        with gr.Tab("Image + audio"):
            with gr.Row():
                image = gr.Image(type="filepath", label="Frame", sources=["upload"], elem_id="image-input")
                with gr.Column():
                    audio = gr.Audio(type="filepath", label="Audio", sources=["upload"], elem_id="audio-input")
                    sound = gr.Radio(list(SOUNDS), value=UPLOADED, label="Sound", elem_id="sound")
                    run = gr.Button("Localize", variant="primary", elem_id="localize")
            with gr.Row():
                overlay = gr.Image(label="Heatmap", show_label=False, format="png", elem_id="overlay")
                with gr.Column():
                    text = gr.Textbox(label="Result", lines=6, elem_id="result")
                    record = gr.JSON(label="JSON", elem_id="record")
            run.click(on_image, [image, audio, sound], [overlay, text, record], preprocess=False)
        with gr.Tab("Video"):
            with gr.Row():
                video = gr.Video(label="Video", sources=["upload"], elem_id="video-input")
                with gr.Column():
                    video_sound = gr.Radio(list(VIDEO_SOUNDS), value=VIDEO_SOUNDS[0], label="Sound")
                    fps = gr.Slider(*FPS_RANGE, value=2, step=0.5, label="Analysed frames per second")
                    run_video = gr.Button("Localize video", variant="primary", elem_id="localize-video")
            with gr.Row():
                video_out = gr.Video(label="Overlay", elem_id="video-overlay")
                with gr.Column():
                    video_text = gr.Textbox(label="Result", lines=4, elem_id="video-result")
                    timeline = gr.JSON(label="Timeline", elem_id="timeline")
            run_video.click(on_video, [video, video_sound, fps], [video_out, video_text, timeline], preprocess=False)
    return app


@dataclass(frozen=True)
class ServeConfig(LocalizerConfig):
    """``vssl serve``: the localizer, where the app listens, and what uploads it accepts."""

    host: str = LOCAL_HOSTS[0]
    """address to bind; 127.0.0.1: this machine only (the app has no authentication), 0.0.0.0: every interface"""
    port: int = DEFAULT_PORT
    """TCP port to listen on"""
    limits: UploadLimits = field(default_factory=UploadLimits)
    """largest upload, audio and video lengths, frame size (--max-upload-mb, --max-audio-seconds, ...)"""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.host.strip():
            raise ConfigError("host must not be empty (127.0.0.1: this machine only)")
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"port must be in 1..65535, got {self.port}")


def serve(
    localizer: Localizer,
    host: str = LOCAL_HOSTS[0],
    port: int = DEFAULT_PORT,
    name: str = "vssl",
    block: bool = True,
    limits: UploadLimits = DEFAULT_LIMITS,
):
    """Launch the app on ``host:port``; with ``block=False`` return ``(app, url)`` while it runs in a thread."""
    if host not in LOCAL_HOSTS:
        logger.warning("serving on %s: other machines can reach the app, which has no authentication", host)
    app = build_app(localizer, name, limits).queue(max_size=MAX_QUEUE, default_concurrency_limit=1)
    _, url, _ = app.launch(
        server_name=host,
        server_port=port,
        share=False,
        prevent_thread_lock=not block,
        quiet=not block,
        max_file_size=limits.max_bytes,  # Gradio refuses larger uploads before storing them
        enable_monitoring=False,  # Gradio's default leaves /monitoring/summary open to anyone
        show_error=False,  # unexpected exceptions reach the page as "Error", not as their text
    )
    return app, url
