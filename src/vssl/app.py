"""``vssl serve``: a web app (Gradio, the optional extra ``app``) around a `Localizer`.

Tab "Image + audio": upload a frame and a clip, or choose silence or noise as the sound; shows the overlay
on the absolute scale, the map's absolute maximum, the decision (source visible / no visible source) and the
threshold it used. Tab "Video": upload a video; shows the overlay video (with its audio) and the per-frame
timeline. Binds 127.0.0.1 unless told otherwise: the app reads any file uploaded to it.

The handlers (`analyse_image`, `analyse_video`) are plain functions of files, usable without a browser.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image

from vssl.errors import VsslError
from vssl.inference.inputs import noise_clip, silence_clip
from vssl.inference.localizer import Localizer
from vssl.inference.render import render_overlay
from vssl.inference.result import Localization

UPLOADED = "uploaded audio"
SOUNDS = (UPLOADED, "silence", "noise")
VIDEO_SOUNDS = ("the video's audio", "silence", "noise")


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
    localizer: Localizer, image: str | None, audio: str | None, sound: str = UPLOADED
) -> tuple[Image.Image, str, dict[str, Any]]:
    """Uploaded files (paths) and the sound choice -> (overlay, summary, JSON record without the raw map rows)."""
    if not image:
        raise VsslError("upload an image")
    if sound == UPLOADED and not audio:
        raise VsslError("upload an audio clip, or choose silence or noise")
    cfg = localizer.cfg.audio
    clip = {"silence": silence_clip(cfg), "noise": noise_clip(cfg)}.get(sound, audio)
    result = localizer.localize(Path(image), Path(clip) if isinstance(clip, str) else clip)
    assert isinstance(result, Localization)
    title = sound if sound != UPLOADED else Path(audio or "").name
    return render_overlay(result, title=title), summary(result), result.to_json()


def analyse_video(
    localizer: Localizer, video: str | None, sound: str = VIDEO_SOUNDS[0], fps: float = 2.0
) -> tuple[str, str, dict[str, Any]]:
    """An uploaded video -> (overlay MP4 path, summary, timeline JSON)."""
    from vssl.inference.video import localize_video

    if not video:
        raise VsslError("upload a video")
    negative = sound if sound in ("silence", "noise") else None
    out = Path(tempfile.mkdtemp(prefix="vssl-app-")) / f"{Path(video).stem}-overlay.mp4"
    timeline = localize_video(localizer, video, out, negative=negative, fps=fps, progress=False)
    abstained = sum(bool(f["abstain"]) for f in timeline.frames)
    decided = sum(f["abstain"] is not None for f in timeline.frames)
    text = (
        f"frames analysed: {len(timeline.frames)} at {fps:g} fps\n"
        f"no visible source in {abstained} of {decided} decided frames\n"
        f"absolute max (cosine) over the video: {max(f['max'] for f in timeline.frames):.4f}"
    )
    return str(out), text, timeline.to_json()


def _gradio() -> Any:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a local tool: no usage reports unless asked for
    try:
        return importlib.import_module("gradio")
    except ImportError:
        raise VsslError("the web app needs gradio (pip install 'vssl[app]')") from None


def _threshold_note(localizer: Localizer) -> str:
    t = localizer.threshold
    if t is None:
        return "This model has **no calibration**: maps are shown, but there is no abstain decision."
    return (
        f"Threshold **{t.value:.4f}** ({t.rule}, on the {t.scale} scale): a frame whose map never exceeds it has "
        "no visible source."
    )


def build_app(localizer: Localizer, name: str = "vssl") -> Any:
    """The Gradio Blocks app (not launched)."""
    gr = _gradio()

    def on_image(image, audio, sound):
        try:
            return analyse_image(localizer, image, audio, sound)
        except VsslError as exc:
            raise gr.Error(str(exc)) from exc

    def on_video(video, sound, fps):
        try:
            return analyse_video(localizer, video, sound, float(fps))
        except VsslError as exc:
            raise gr.Error(str(exc)) from exc

    with gr.Blocks(title=f"vssl: {name}", analytics_enabled=False) as app:
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
            run.click(on_image, [image, audio, sound], [overlay, text, record])
        with gr.Tab("Video"):
            with gr.Row():
                video = gr.Video(label="Video", sources=["upload"], elem_id="video-input")
                with gr.Column():
                    video_sound = gr.Radio(list(VIDEO_SOUNDS), value=VIDEO_SOUNDS[0], label="Sound")
                    fps = gr.Slider(0.5, 10, value=2, step=0.5, label="Analysed frames per second")
                    run_video = gr.Button("Localize video", variant="primary", elem_id="localize-video")
            with gr.Row():
                video_out = gr.Video(label="Overlay", elem_id="video-overlay")
                with gr.Column():
                    video_text = gr.Textbox(label="Result", lines=4, elem_id="video-result")
                    timeline = gr.JSON(label="Timeline", elem_id="timeline")
            run_video.click(on_video, [video, video_sound, fps], [video_out, video_text, timeline])
    return app


def serve(localizer: Localizer, host: str = "127.0.0.1", port: int = 7860, name: str = "vssl", block: bool = True):
    """Launch the app on ``host:port``; with ``block=False`` return ``(app, url)`` while it runs in a thread."""
    app = build_app(localizer, name)
    _, url, _ = app.launch(
        server_name=host, server_port=port, share=False, prevent_thread_lock=not block, quiet=not block
    )
    return app, url
