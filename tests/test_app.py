"""``vssl serve``: the handlers on the real fixture files, and the Gradio app driven by headless Chromium."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from PIL import Image

from vssl.app import analyse_image, analyse_video, summary
from vssl.data.synth.video import write_video
from vssl.errors import VsslError
from vssl.inference import noise_clip, silence_clip

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def test_image_handler_on_uploads_and_negatives(localizer, pair):
    overlay, text, record = analyse_image(localizer, str(pair[0]), str(pair[1]))
    expected = localizer.localize(*pair)
    assert isinstance(overlay, Image.Image) and text == summary(expected)
    assert record["max"] == expected.max and record["abstain"] == expected.abstain
    for sound, clip in (("silence", silence_clip()), ("noise", noise_clip())):
        _, text, record = analyse_image(localizer, str(pair[0]), None, sound)
        assert text == summary(localizer.localize(pair[0], clip))
    lines = dict(line.split(": ", 1) for line in text.splitlines())
    assert {"decision", "absolute max (cosine)", "threshold"} <= set(lines)
    assert lines["threshold"] == "0.5500 (maxq3, (cos+1)/2)"
    with pytest.raises(VsslError, match="upload an audio clip"):
        analyse_image(localizer, str(pair[0]), None)


def test_video_handler(localizer, tmp_path):
    video = write_video(tmp_path / "clip.mp4", seconds=2.0, fps=10, size=(64, 48))
    path, text, timeline = analyse_video(localizer, str(video), tmp_path / "out", fps=2)
    assert Path(path) == tmp_path / "out" / "clip-overlay.mp4" and Path(path).stat().st_size > 1000
    assert "frames analysed: 4 at 2 fps" in text and len(timeline["frames"]) == 4
    assert timeline["video"] == "clip.mp4"  # the upload's name, not a server path
    _, _, silent = analyse_video(localizer, str(video), tmp_path / "out", "silence", fps=2)
    assert silent["audio"] == "silence"


def test_app_is_built(localizer, require):
    require("gradio", "app")
    from vssl.app import build_app

    app = build_app(localizer, "test-model")
    assert {"image-input", "audio-input", "result", "overlay", "video-input"} <= {
        block.elem_id for block in app.blocks.values()
    }


def _click_and_read(page, button: str, textbox: str, previous: str) -> str:
    """Click ``button`` and return the new text of ``textbox`` once it differs from ``previous``."""
    page.click(button)
    page.wait_for_function(
        "([box, prev]) => { const v = document.querySelector(box + ' textarea').value; return v && v !== prev; }",
        arg=[textbox, previous],
        timeout=60_000,
    )
    return page.locator(f"{textbox} textarea").input_value()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.browser
def test_browser_uploads_real_files_and_reads_the_decision(localizer, pair, tmp_path, require, unavailable):
    if not CHROMIUM.exists():
        unavailable(f"Debian's chromium not found at {CHROMIUM} (apt-get install chromium; .ci/run installs it)")
    require("gradio", "app")
    sync_api = require("playwright.sync_api", "browser")
    from vssl.app import serve

    video = write_video(tmp_path / "clip.mp4", seconds=2.0, fps=10, size=(64, 48))
    app, url = serve(localizer, port=_free_port(), name="test-model", block=False)
    assert url.startswith("http://127.0.0.1:")
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
            page = browser.new_page()
            page.goto(url)
            page.locator("#image-input input[type=file]").set_input_files(str(pair[0]))
            page.locator("#audio-input input[type=file]").set_input_files(str(pair[1]))
            page.locator("#audio-input audio, #audio-input [data-testid=waveform-Audio]").first.wait_for()
            shown = _click_and_read(page, "#localize", "#result", "")
            assert shown == summary(localizer.localize(*pair))
            assert page.locator("#overlay img").count() == 1
            page.get_by_label("silence").check()
            assert _click_and_read(page, "#localize", "#result", shown) == summary(
                localizer.localize(pair[0], silence_clip())
            )
            # A wav renamed .png: refused by decoding, the reason shown in the page (not a stack trace).
            fake = tmp_path / "sound.png"
            fake.write_bytes(pair[1].read_bytes())
            page.locator("#image-input input[type=file]").set_input_files(str(fake))
            page.click("#localize")
            page.get_by_text("sound.png: not an image the decoder can read").first.wait_for(timeout=60_000)
            assert "Traceback" not in page.content()
            page.get_by_role("tab", name="Video").click()
            page.locator("#video-input input[type=file]").set_input_files(str(video))
            page.locator("#video-input video").first.wait_for()
            text = _click_and_read(page, "#localize-video", "#video-result", "")
            assert text.startswith("frames analysed: 4 at 2 fps")
            browser.close()
    finally:
        app.close()
