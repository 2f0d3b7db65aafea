"""A real browser watching a camera in Home Assistant's frontend, reading the stamps of the frames it shows.

Headless Chromium (Debian's ``chromium``) over the DevTools protocol, as scripts/demo.d/screenshot.py drives
it (its ``DevTools`` client and log-in are reused): it logs in as the benchmark's user, opens a dashboard
view holding one picture-entity card of the camera in live view, and waits until the card's video plays.
Which player the card uses is the frontend's own choice (``ha-hls-player``: hls.js, in low-latency mode
with at most two streams on the page; WebRTC only where go2rtc is loaded).

Then a small script in the page reads every frame the video element presents
(``requestVideoFrameCallback``): it draws the frame on a canvas, reads glass_latency's stamp blocks (the
same layout as ``glass_latency.read_stamp``: 64 bits of 16x16 blocks from the top-left, 48 bits of ms and
16 check bits) and keeps (stamp, the wall-clock moment the frame was to be displayed:
``performance.timeOrigin + expectedDisplayTime``). Chromium's clock and the stamp's are the same machine's.

Needs the frontend's Python package (home-assistant-frontend, which ``scripts/demo`` installs) and
Debian's chromium.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.common import REPO_ROOT
from bench.glass_latency import BITS, BLOCK, PER_ROW
from bench.ha_common import PASSWORD, USERNAME, HomeAssistantProcess, free_port

sys.path.insert(0, str(REPO_ROOT / "scripts" / "demo.d"))
from screenshot import VIDEOS_JS, DevTools  # scripts/demo.d is not a package: found through sys.path

VIEW = "glass"

# The stamp reader in the page. Bits as glass_latency.read_stamp: block centres, luma > 128 is a 1.
READER_JS = f"""
(() => {{
  const all = (root, tag, out = []) => {{
    for (const el of root.querySelectorAll('*')) {{
      if (el.tagName === tag) out.push(el);
      if (el.shadowRoot) all(el.shadowRoot, tag, out);
    }}
    return out;
  }};
  const stream = all(document, 'HA-CAMERA-STREAM')[0];
  const video = all(stream.shadowRoot, 'VIDEO')[0];
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth; canvas.height = {BLOCK} * {(BITS + PER_ROW - 1) // PER_ROW};
  const context = canvas.getContext('2d', {{willReadFrequently: true}});
  window.__stamps = [];
  window.__unreadable = 0;
  const read = () => {{
    context.drawImage(video, 0, 0, canvas.width, canvas.height, 0, 0, canvas.width, canvas.height);
    const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
    let ms = 0, check = 0;
    for (let bit = 0; bit < {BITS}; bit++) {{
      const x = (bit % {PER_ROW}) * {BLOCK} + {BLOCK // 2};
      const y = Math.floor(bit / {PER_ROW}) * {BLOCK} + {BLOCK // 2};
      const i = (y * canvas.width + x) * 4;
      const on = (0.299 * pixels[i] + 0.587 * pixels[i + 1] + 0.114 * pixels[i + 2]) > 128 ? 1 : 0;
      if (bit < 48) ms += on * 2 ** bit; else check += on * 2 ** (bit - 48);
    }}
    return check === ((ms % 65536) ^ 0xFFFF) ? ms : null;
  }};
  const frame = (now, meta) => {{
    const stamp = read();
    if (stamp === null) window.__unreadable++;
    else window.__stamps.push([stamp, performance.timeOrigin + meta.expectedDisplayTime]);
    video.requestVideoFrameCallback(frame);
  }};
  video.requestVideoFrameCallback(frame);
  return video.videoWidth + 'x' + video.videoHeight;
}})()
"""


# What hls.js itself says (its public getters), from the frontend's player element.
HLS_STATE_JS = """
(() => {
  const all = (root, tag, out = []) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.tagName === tag) out.push(el);
      if (el.shadowRoot) all(el.shadowRoot, tag, out);
    }
    return out;
  };
  const player = all(document, 'HA-HLS-PLAYER')[0];
  const hls = player && player._hlsPolyfillInstance;
  const video = player && all(player.shadowRoot, 'VIDEO')[0];
  if (!hls) return JSON.stringify(null);
  return JSON.stringify({low_latency_mode: hls.config.lowLatencyMode, target_latency_s: hls.targetLatency,
                         latency_s: hls.latency, playback_rate: video ? video.playbackRate : null,
                         hls_js_version: hls.constructor.version || null});
})()
"""


def dashboard(camera: str) -> dict[str, Any]:
    """One view with the camera's card in live view, as a person would put it on a dashboard."""
    card = {"type": "picture-entity", "entity": camera, "camera_view": "live", "show_state": False}
    return {"title": "Glass", "views": [{"title": "Glass", "path": VIEW, "cards": [card]}]}


async def _auth_code(session: aiohttp.ClientSession, ha: HomeAssistantProcess) -> str:
    """An authorization code from Home Assistant's own login flow, for the frontend's auth callback."""
    async with session.post(
        ha.url + "/auth/login_flow",
        json={"client_id": ha.client_id, "handler": ["homeassistant", None], "redirect_uri": ha.client_id},
    ) as response:
        flow = await response.json()
    async with session.post(
        ha.url + f"/auth/login_flow/{flow['flow_id']}",
        json={"username": USERNAME, "password": PASSWORD, "client_id": ha.client_id},
    ) as response:
        return str((await response.json())["result"])


@dataclass
class Shown:
    stamp_s: float
    displayed_at: float


class BrowserPlayer:
    """Chromium showing the camera card: ``start`` returns once it plays, ``shown`` reads the stamps."""

    def __init__(self, ha: HomeAssistantProcess, camera: str) -> None:
        self.ha = ha
        self.camera = camera
        self.player = ""
        self._process: asyncio.subprocess.Process | None = None
        self._profile = ""
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._tools: DevTools | None = None

    async def start(self, session: aiohttp.ClientSession, timeout_s: float = 90) -> None:
        browser = shutil.which("chromium") or shutil.which("chromium-browser")
        if browser is None:
            raise RuntimeError("--browser needs Debian's chromium: apt-get install chromium")
        await self.ha.ws(session, [{"type": "lovelace/config/save", "config": dashboard(self.camera)}])
        port = free_port()
        self._profile = tempfile.mkdtemp(prefix="pi-stream-chromium-")
        self._process = await asyncio.create_subprocess_exec(
            browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--mute-audio",
            f"--remote-debugging-port={port}", "--remote-debugging-address=127.0.0.1",
            f"--user-data-dir={self._profile}", "--window-size=1000,900",
            "--autoplay-policy=no-user-gesture-required", "about:blank",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        pages: list[dict[str, Any]] = []
        while not pages:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                    pages = [t for t in await response.json() if t.get("type") == "page"]
            if time.monotonic() > deadline:
                raise RuntimeError("chromium did not open its DevTools port")
            await asyncio.sleep(0.3)
        self._ws = await session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)
        self._tools = DevTools(self._ws)
        for domain in ("Page", "Runtime"):
            await self._tools.call(f"{domain}.enable")
        code = await _auth_code(session, self.ha)
        state = base64.b64encode(json.dumps({"hassUrl": self.ha.url, "clientId": self.ha.client_id}).encode())
        await self._tools.call(
            "Page.navigate",
            url=f"{self.ha.url}/lovelace/{VIEW}?auth_callback=1&code={code}&state={state.decode()}",
        )
        while True:
            videos = json.loads(await self._evaluate(VIDEOS_JS))
            if videos and videos[0]["playing"] and videos[0]["width"]:
                self.player = videos[0]["player"]
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the camera card did not play within {timeout_s:g} s: {videos}")
            await asyncio.sleep(0.5)
        await self._evaluate(READER_JS)

    async def _evaluate(self, expression: str) -> Any:
        assert self._tools is not None
        result = await self._tools.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"in the page: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def shown(self) -> tuple[list[Shown], int]:
        """Every frame shown so far (stamp, when displayed) and how many had no readable stamp."""
        stamps = json.loads(await self._evaluate("JSON.stringify(window.__stamps)"))
        unreadable = int(await self._evaluate("window.__unreadable"))
        return [Shown(stamp / 1000, at / 1000) for stamp, at in stamps], unreadable

    async def hls_state(self) -> dict[str, Any] | None:
        """hls.js's low-latency mode, target latency and latency (s) as it sees them; the playback rate."""
        state: dict[str, Any] | None = json.loads(await self._evaluate(HLS_STATE_JS))
        return state

    async def stop(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)  # Chromium and its helpers: its own group
            await self._process.wait()
        if self._profile:
            shutil.rmtree(self._profile, ignore_errors=True)
