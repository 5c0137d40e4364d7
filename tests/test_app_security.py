"""``vssl serve`` under hostile input: upload checks by decoding, size and duration limits, no server paths.

The checks of `vssl.inference.uploads` are tested as functions, then through a real server on loopback:
oversized, malformed and path-traversal uploads, and requests that name server paths or URLs instead of uploads.
"""

from __future__ import annotations

import http.server
import os
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from vssl.app import analyse_image, analyse_video
from vssl.audio import load_audio
from vssl.cli import build_parser
from vssl.data.synth.video import write_video
from vssl.errors import ConfigError, VsslError
from vssl.inference.uploads import (
    UploadError,
    UploadLimits,
    check_video,
    display_name,
    read_audio,
    read_image,
    upload_path,
)
from vssl.vision import load_image

SECRET = "vssl-secret-6f1d0c"  # the content of a server file no request may read
SERVER_LIMITS = UploadLimits(max_bytes=300_000, max_audio_seconds=5.0, max_video_seconds=3.0)


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    """Good and bad files: the good ones written by their encoders, the bad ones named as what they are not."""
    d = tmp_path_factory.mktemp("media")
    rng = np.random.default_rng(0)
    files = {"jpg": d / "frame.jpg", "wav": d / "clip.wav", "long_wav": d / "long.wav", "mp4": d / "clip.mp4"}
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(files["jpg"], quality=90)
    sf.write(files["wav"], (rng.standard_normal(32000) * 0.1).astype(np.float32), 16000, subtype="PCM_16")
    sf.write(files["long_wav"], np.zeros(16000 * 8, np.float32), 16000, subtype="PCM_16")
    write_video(files["mp4"], seconds=2.0, fps=10, size=(64, 48))
    files["long_mp4"] = write_video(d / "long.mp4", seconds=4.0, fps=10, size=(64, 48))
    wav, jpg = files["wav"].read_bytes(), files["jpg"].read_bytes()
    bad = {
        "wav_as_png": ("sound.png", wav),
        "wav_as_mp4": ("sound.mp4", wav),
        "jpg_as_wav": ("picture.wav", jpg),
        "jpg_as_mp4": ("picture.mp4", jpg),
        "text_as_jpg": ("notes.jpg", b"just some text, not a picture\n" * 20),
        "random_jpg": ("noise.jpg", rng.bytes(4000)),
        "random_wav": ("noise.wav", rng.bytes(4000)),
        "random_mp4": ("noise.mp4", rng.bytes(4000)),
        "truncated_wav": ("cut.wav", wav[: len(wav) // 2]),
        "header_only_wav": ("header.wav", wav[:44]),
        "truncated_jpg": ("cut.jpg", jpg[: len(jpg) // 2]),
        "empty_jpg": ("empty.jpg", b""),
    }
    for key, (name, data) in bad.items():
        (d / name).write_bytes(data)
        files[key] = d / name
    return files


# ---------------------------------------------------------------- the checks as functions


def test_limits_and_names():
    with pytest.raises(ConfigError, match="max_bytes must be positive"):
        UploadLimits(max_bytes=0)
    assert display_name("/tmp/gradio/abc/../../etc/passwd") == "passwd"
    assert display_name("<img src=x onerror=alert(1)>.png") == "_img src_x onerror_alert(1)_.png"
    args = build_parser().parse_args(["serve", "--model", "m"])
    assert args.host == "127.0.0.1" and args.max_upload_mb == 50 and args.max_video_seconds == 600


def test_upload_path_accepts_only_regular_files_inside_the_upload_folder(tmp_path):
    root, secret = tmp_path / "uploads", tmp_path / "secret.txt"
    (root / "abc").mkdir(parents=True)
    secret.write_text(SECRET)
    upload = root / "abc" / "frame.jpg"
    upload.write_bytes(b"x")
    (root / "abc" / "link.jpg").symlink_to(secret)
    assert upload_path({"path": str(upload), "orig_name": "../../etc/passwd"}, root) == upload
    assert upload_path(str(upload), root) == upload and upload_path(None, root) is None
    for raw in (
        "/etc/passwd",
        str(secret),
        f"{root}/../secret.txt",
        f"{root}/abc/../../secret.txt",
        str(root / "abc" / "link.jpg"),  # a symlink out of the folder
        str(root / "abc"),  # a directory
        str(root),
        "abc/frame.jpg",  # relative: resolved against the working directory, never trusted
        "http://127.0.0.1:1/clip.mp4",  # FFmpeg would fetch it
        "file:///etc/passwd",
    ):
        with pytest.raises(UploadError, match="not a file uploaded to this app") as info:
            upload_path({"path": raw}, root)
        assert str(root) not in str(info.value) and SECRET not in str(info.value)
    with pytest.raises(UploadError, match="names no uploaded file"):
        upload_path({"url": "http://example.com/a.jpg"}, root)


def test_images_are_checked_by_decoding(media):
    assert np.array_equal(np.asarray(read_image(media["jpg"])), np.asarray(load_image(media["jpg"])))
    for key in ("wav_as_png", "text_as_jpg", "random_jpg", "truncated_jpg", "empty_jpg"):
        with pytest.raises(UploadError) as info:
            read_image(media[key])
        message = str(info.value)
        assert message.startswith(f"{media[key].name}: ") and str(media[key].parent) not in message, message
    with pytest.raises(UploadError, match="sound.png: not an image the decoder can read"):
        read_image(media["wav_as_png"])
    with pytest.raises(UploadError, match="frame.jpg: 64x48 pixels, above the limit of 1,000"):
        read_image(media["jpg"], UploadLimits(max_pixels=1000))
    with pytest.raises(UploadError, match=r"frame.jpg: 0.0 MB, above the upload limit of 0.001 MB"):
        read_image(media["jpg"], UploadLimits(max_bytes=1000))


def test_audio_is_checked_by_decoding_and_duration(media):
    assert torch.equal(read_audio(media["wav"], 16000), load_audio(media["wav"], 16000))
    expected = {
        "truncated_wav": "cut.wav: the WAV file is truncated",
        "header_only_wav": "header.wav: the WAV file is truncated",
        "jpg_as_wav": r"picture.wav: not audio the decoders can read \(no audio stream",
        "random_wav": "noise.wav: not audio the decoders can read",
        "long_wav": "long.wav: 8.0 s of audio, longer than the limit of 5 s",
    }
    for key, message in expected.items():
        with pytest.raises(UploadError, match=message) as info:
            read_audio(media[key], 16000, SERVER_LIMITS)
        assert str(media[key].parent) not in str(info.value)


def test_videos_are_checked_by_decoding_and_duration(media):
    assert check_video(media["mp4"]) == pytest.approx(2.0, abs=0.11)
    expected = {
        "wav_as_mp4": r"sound.mp4: no video stream \(streams: audio\)",
        "jpg_as_mp4": "picture.mp4: a still image, not a video",
        "random_mp4": "noise.mp4: not a video the decoder can read",
        "long_mp4": "long.mp4: 4.0 s long, above the limit of 3 s",
    }
    for key, message in expected.items():
        with pytest.raises(UploadError, match=message):
            check_video(media[key], SERVER_LIMITS)
    with pytest.raises(UploadError, match="frames of 64x48 pixels, above the limit"):
        check_video(media["mp4"], UploadLimits(max_pixels=1000))


def test_handlers_refuse_choices_the_page_does_not_offer(localizer, media, tmp_path):
    with pytest.raises(VsslError, match="unknown sound; choose one of"):
        analyse_image(localizer, str(media["jpg"]), None, "<b>/etc/passwd</b>")
    with pytest.raises(VsslError, match=r"must be in \[0.5, 10\], got 1000"):
        analyse_video(localizer, str(media["mp4"]), tmp_path, fps=1000)
    with pytest.raises(UploadError, match="cut.wav: the WAV file is truncated"):
        analyse_image(localizer, str(media["jpg"]), str(media["truncated_wav"]))
    assert not any(tmp_path.iterdir())


# ---------------------------------------------------------------- a real server on loopback


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Recorder(http.server.BaseHTTPRequestHandler):
    """An internal service the app must never be made to call: records every request, answers the secret."""

    hits: list[str] = []

    def do_GET(self):  # noqa: N802 (the name http.server calls)
        self.hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(SECRET.encode())

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(localizer, tmp_path_factory, require):
    """``(url, upload folder, secret file, internal service URL)`` of the app launched with `SERVER_LIMITS`."""
    require("gradio", "app")
    from vssl.app import serve

    root = tmp_path_factory.mktemp("server")
    secret = root / "secret.txt"
    secret.write_text(SECRET)
    internal = http.server.HTTPServer(("127.0.0.1", _free_port()), _Recorder)
    threading.Thread(target=internal.serve_forever, daemon=True).start()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADIO_TEMP_DIR", str(root / "gradio"))
        app, url = serve(localizer, port=_free_port(), name="test-model", block=False, limits=SERVER_LIMITS)
        try:
            yield url, Path(app.GRADIO_CACHE), secret, f"http://127.0.0.1:{internal.server_port}"
        finally:
            app.close()
            internal.shutdown()


@pytest.fixture(autouse=True)
def _client_temp_files(tmp_path, monkeypatch):
    """gradio_client leaves an empty folder per downloaded file in the system temp folder: keep them in tmp_path."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


def _client(url: str, downloads: Path):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=str(downloads), analytics_enabled=False)


def _refusal(client, api: str, *args) -> str:
    """The message of the error the app answers ``args`` with (the text the page shows)."""
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as info:
        client.predict(*args, api_name=api)
    return str(info.value)


def _call(url: str, api: str, data: list) -> str:
    """Call ``api`` with raw JSON (any payload, no client-side checks); the whole event stream as text."""
    import httpx

    event = httpx.post(f"{url}gradio_api/call/{api}", json={"data": data}, timeout=30)
    if event.status_code != 200:
        return event.text
    return httpx.get(f"{url}gradio_api/call/{api}/{event.json()['event_id']}", timeout=120).text


def test_server_binds_loopback(server):
    url = server[0]
    assert url.startswith("http://127.0.0.1:")


def test_server_refuses_malformed_and_oversized_uploads_with_clear_messages(server, media, tmp_path):
    import httpx
    from gradio_client import handle_file

    url, root = server[0], str(server[1])
    client = _client(url, tmp_path)
    image, audio, silence = handle_file(str(media["jpg"])), handle_file(str(media["wav"])), "silence"
    assert client.predict(image, audio, "uploaded audio", api_name="/on_image")[1].startswith("decision: ")
    expected = [
        ("/on_image", (handle_file(str(media["wav_as_png"])), None, silence), "sound.png: not an image the decoder"),
        ("/on_image", (handle_file(str(media["text_as_jpg"])), None, silence), "notes.jpg: not an image"),
        ("/on_image", (handle_file(str(media["random_jpg"])), None, silence), "noise.jpg: not an image"),
        ("/on_image", (image, handle_file(str(media["truncated_wav"])), "uploaded audio"), "cut.wav: the WAV file is"),
        ("/on_image", (image, handle_file(str(media["jpg_as_wav"])), "uploaded audio"), "picture.wav: not audio"),
        ("/on_image", (image, handle_file(str(media["long_wav"])), "uploaded audio"), "long.wav: 8.0 s of audio"),
        ("/on_video", (handle_file(str(media["random_mp4"])), "silence", 2), "noise.mp4: not a video"),
        ("/on_video", (handle_file(str(media["wav_as_mp4"])), "silence", 2), "sound.mp4: no video stream"),
        ("/on_video", (handle_file(str(media["long_mp4"])), "silence", 2), "long.mp4: 4.0 s long, above the limit"),
        ("/on_video", (handle_file(str(media["mp4"])), "silence", 99), "must be in [0.5, 10], got 99"),
    ]
    for api, args, message in expected:
        shown = _refusal(client, api, *args)
        assert message in shown and root not in shown and "Traceback" not in shown, shown
    # Larger than max_bytes: Gradio refuses the upload itself (413) and stores nothing.
    big = tmp_path / "big.jpg"
    big.write_bytes(os.urandom(SERVER_LIMITS.max_bytes + 1))
    before = set(Path(root).rglob("*"))
    with big.open("rb") as fh:
        answer = httpx.post(f"{url}gradio_api/upload", files={"files": ("big.jpg", fh)}, timeout=30)
    assert answer.status_code == 413 and "maximum allowed size" in answer.text
    assert set(Path(root).rglob("*")) == before


def test_upload_names_cannot_traverse(server, media, tmp_path):
    import httpx

    url, root = server[0], server[1]
    sentinel = tmp_path / "planted.txt"
    names = ["../../etc/passwd", "../" * 12 + str(sentinel).lstrip("/"), "..\\..\\evil.jpg", "/etc/passwd"]
    for name in names:
        answer = httpx.post(f"{url}gradio_api/upload", files={"files": (name, b"not what it claims")}, timeout=30)
        assert answer.status_code == 200, answer.text
        (stored,) = answer.json()
        assert (
            Path(stored).resolve().is_relative_to(root.resolve()) and Path(stored).read_bytes() == b"not what it claims"
        )
        # The app refuses it by content, naming it by its base name only.
        shown = _call(url, "on_image", [{"path": stored, "meta": {"_type": "gradio.FileData"}}, None, "silence"])
        assert "not an image the decoder can read" in shown and str(root) not in shown, shown
    assert not sentinel.exists() and not (root.parent / "etc").exists()


def test_api_cannot_make_the_app_read_server_paths_or_urls(server, media):
    import httpx

    url, root, secret, internal = server
    paths = [
        "/etc/passwd",
        str(secret),
        f"{root}/../secret.txt",
        f"{root}/abc/../../secret.txt",
        f"{internal}/clip.mp4",
        "file:///etc/passwd",
    ]
    for path in paths:
        for is_stream in (False, True):  # Gradio passes http(s) "stream" paths to the handlers unchecked
            payload = {"path": path, "is_stream": is_stream, "meta": {"_type": "gradio.FileData"}}
            for api, data in (
                ("on_image", [payload, payload, "uploaded audio"]),
                ("on_video", [payload, "silence", 2]),
            ):
                answer = _call(url, api, data)
                assert "event: error" in answer and "event: complete" not in answer, answer
                assert SECRET not in answer and "root:x:0:0" not in answer, answer
                if is_stream and path.startswith("http"):  # refused by the app's own check, before any decoder
                    assert "clip.mp4: not a file uploaded to this app" in answer, answer
    assert _Recorder.hits == []
    for path in ("/etc/passwd", str(secret), f"{root}/../secret.txt"):
        answer = httpx.get(f"{url}gradio_api/file={path}", timeout=30)
        assert answer.status_code == 403 and SECRET not in answer.text
    assert httpx.get(f"{url}monitoring/summary", timeout=30).status_code == 403  # Gradio's default: open


def test_temporary_files_are_removed(localizer, media, tmp_path, monkeypatch, require):
    """Uploads, overlays and anything in the system temp dir: gone once the server stops (no leftovers)."""
    require("gradio", "app")
    from gradio_client import handle_file

    from vssl.app import serve

    gradio_dir, system_tmp = tmp_path / "gradio", tmp_path / "tmp"
    system_tmp.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(gradio_dir))
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    app, url = serve(localizer, port=_free_port(), block=False, limits=SERVER_LIMITS)
    try:
        client = _client(url, tmp_path / "downloads")
        client.predict(
            handle_file(str(media["jpg"])), handle_file(str(media["wav"])), "uploaded audio", api_name="/on_image"
        )
        overlay, _, _ = client.predict(handle_file(str(media["mp4"])), "silence", 2, api_name="/on_video")
        assert Path(overlay).stat().st_size > 1000
        _refusal(client, "/on_video", handle_file(str(media["random_mp4"])), "silence", 2)
        made = [p for p in gradio_dir.rglob("*") if p.is_file()]
        assert any(p.name == "clip-overlay.mp4" for p in made) and len(made) >= 5
    finally:
        app.close()
    deadline = time.monotonic() + 10
    while (left := [p for p in (*gradio_dir.rglob("*"), *system_tmp.rglob("*")) if p.is_file()]) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.2)
    assert left == []
