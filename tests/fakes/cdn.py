"""A fake media CDN: real video files behind signed, expiring URLs, with HTTP Range (206) and CORS.

The providers hand out such URLs (TwelveLabs' HLS manifests and thumbnails, NomadicML's
signed MP4s). Files come from ``make_media`` (Debian's ffmpeg): an H.264 MP4, the same
clip as an HLS playlist with segments, and a JPEG frame. ``expire_all()`` makes every
URL handed out so far answer 403, as a signature past its time does; ``gone = True``
makes every URL answer 404, as after the provider deleted the batch.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from tests.fakes.server import FakeApp, Reply, Request

CLIP_SECONDS = 20
FPS = 25
_TYPES = {".mp4": "video/mp4", ".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t", ".jpg": "image/jpeg"}
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def make_media(directory: Path) -> Path:
    """Write clip.mp4, hls/index.m3u8 (+ segments) and thumb.jpg into ``directory``; returns it."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("ffmpeg is missing: apt-get install -y ffmpeg (see .ci/run)")
    quiet = [ffmpeg, "-loglevel", "error", "-y"]
    source = ["-f", "lavfi", "-i", f"testsrc2=duration={CLIP_SECONDS}:size=320x180:rate={FPS}"]
    encode = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", str(FPS)]
    subprocess.run([*quiet, *source, *encode, "-movflags", "+faststart", str(directory / "clip.mp4")], check=True)
    (directory / "hls").mkdir()
    subprocess.run(
        [*quiet, "-i", str(directory / "clip.mp4"), "-c", "copy", "-hls_time", "2", "-hls_playlist_type", "vod",
         "-hls_segment_filename", str(directory / "hls" / "seg%03d.ts"), str(directory / "hls" / "index.m3u8")],
        check=True,
    )  # fmt: skip
    subprocess.run(
        [*quiet, "-i", str(directory / "clip.mp4"), "-frames:v", "1", str(directory / "thumb.jpg")], check=True
    )
    return directory


class CdnFake(FakeApp):
    """Serves ``/<path>?token=…&Expires=…`` from the media directory while the token is valid; no API key.

    The signature is in the query, as CloudFront's and S3's are: the same file keeps its path.
    """

    def __init__(self, media: Path) -> None:
        super().__init__(api_key="")
        self.media = media
        self.base_url = ""  # set by the fixture
        self.tokens: dict[str, float] = {}  # token -> expiry (epoch seconds)
        self.gone = False
        self.served: list[tuple[str, int]] = []  # (path, status) of every answer

    def signed_url(self, path: str, expires_in: int = 900) -> str:
        """A fresh URL of ``path`` (e.g. "clip.mp4", "hls/index.m3u8") valid for ``expires_in`` seconds."""
        token = secrets.token_hex(8)
        expires = time.time() + expires_in
        self.tokens[token] = expires
        return f"{self.base_url}/{path}?token={token}&Expires={int(expires)}"

    def signer(self, path: str) -> Callable[[int], str]:
        return partial(self._sign, path)

    def _sign(self, path: str, expires_in: int) -> str:
        return self.signed_url(path, expires_in)

    def expire_all(self) -> None:
        for token in self.tokens:
            self.tokens[token] = 0

    def handle(self, request: Request) -> Reply:
        with self._lock:
            self.calls.append(("media", request.path))
        reply = self._serve(request)
        self.served.append((request.path, reply.status))
        reply.headers.setdefault("Access-Control-Allow-Origin", "*")  # hls.js reads segments with XHR
        reply.headers.setdefault("Access-Control-Expose-Headers", "Content-Length, Content-Range")
        return reply

    def route(self, request: Request):  # pragma: no cover - handle() is overridden
        raise NotImplementedError

    def _serve(self, request: Request) -> Reply:
        path = request.path.lstrip("/")
        token = (request.query.get("token") or [""])[0]
        if self.gone:
            return Reply(404, b"Not Found", {"Content-Type": "text/plain"})
        if self.tokens.get(token, 0) < time.time():
            return Reply(403, b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
                         {"Content-Type": "application/xml"})  # fmt: skip
        file = (self.media / path).resolve()
        if self.media.resolve() not in file.parents or not file.is_file():
            return Reply(404, b"Not Found", {"Content-Type": "text/plain"})
        data = file.read_bytes()
        headers = {"Content-Type": _TYPES.get(file.suffix, "application/octet-stream"), "Accept-Ranges": "bytes"}
        if file.suffix == ".m3u8":
            # Each segment URI is signed with the playlist's token, as a signed manifest's are.
            signature = f"?token={token}&Expires={int(self.tokens[token])}"
            lines = [line if line.startswith("#") or not line.strip() else line + signature
                     for line in data.decode().splitlines()]  # fmt: skip
            return Reply(200, ("\n".join(lines) + "\n").encode(), headers)
        wanted = _RANGE.match(request.headers.get("range", ""))
        if wanted is None:
            return Reply(200, data, headers)
        first, last = wanted.groups()
        start = int(first) if first else max(len(data) - int(last), 0)
        end = min(int(last), len(data) - 1) if first and last else len(data) - 1
        if start >= len(data):
            return Reply(416, b"", {**headers, "Content-Range": f"bytes */{len(data)}"})
        return Reply(206, data[start : end + 1], {**headers, "Content-Range": f"bytes {start}-{end}/{len(data)}"})
