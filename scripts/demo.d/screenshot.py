"""Looks at the running demo the way a person would: headless Chromium (Debian's ``chromium``) logs in as the
demo user, opens a page, waits, reports every camera stream on it (through the shadow DOMs: which player,
is its video playing, at what size, how far) and saves a screenshot.

    .venv/bin/python scripts/demo.d/screenshot.py [--url http://127.0.0.1:8123] [--path /lovelace/pi]
        [--wait 60] [--out .demo/screenshot.png]

The login is Home Assistant's own: an authorization code from ``/auth/login_flow`` handed to the frontend's
``?auth_callback=1&code=…&state=…`` page, which exchanges it and stores the tokens as after a manual login.
Chromium talks to it over the DevTools protocol on a loopback port; it runs in a temporary profile and is
killed (its process group) at the end. Exit status 1 unless every camera stream on the page plays.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provision import HomeAssistant

VIDEOS_JS = """
(() => {
  const all = (root, tag, out = []) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.tagName === tag) out.push(el);
      if (el.shadowRoot) all(el.shadowRoot, tag, out);
    }
    return out;
  };
  return JSON.stringify(all(document, 'HA-CAMERA-STREAM').map(stream => {
    const video = stream.shadowRoot ? all(stream.shadowRoot, 'VIDEO')[0] : undefined;
    return {entity: stream.stateObj ? stream.stateObj.entity_id : null,
            player: stream.shadowRoot
              ? [...stream.shadowRoot.children].map(c => c.tagName.toLowerCase()).join(',') : '',
            playing: !!video && !video.paused && video.readyState >= 2,
            currentTime: video ? video.currentTime : 0,
            width: video ? video.videoWidth : 0, height: video ? video.videoHeight : 0};
  }));
})()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def auth_code(session: aiohttp.ClientSession, ha: HomeAssistant, username: str, password: str) -> str:
    flow = await ha.request(
        "POST",
        "/auth/login_flow",
        {"client_id": ha.client_id, "handler": ["homeassistant", None], "redirect_uri": ha.client_id},
    )
    result = await ha.request(
        "POST",
        f"/auth/login_flow/{flow['flow_id']}",
        {"username": username, "password": password, "client_id": ha.client_id},
    )
    return str(result["result"])


class DevTools:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0
        self.console: list[str] = []  # the page's console errors and warnings, and failed log entries

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            message = await self.ws.receive_json()
            if message.get("method") == "Runtime.consoleAPICalled" and message["params"]["type"] in (
                "error",
                "warning",
            ):
                args = message["params"].get("args", [])
                self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
            elif message.get("method") == "Log.entryAdded" and message["params"]["entry"]["level"] == "error":
                entry = message["params"]["entry"]
                self.console.append(f"{entry.get('text')} {entry.get('url', '')}")
            elif (
                message.get("method") == "Network.responseReceived"
                and message["params"]["response"]["status"] >= 400
            ):
                response = message["params"]["response"]
                self.console.append(f"HTTP {response['status']} {response['url']}")
            elif message.get("method") == "Network.loadingFailed":
                self.console.append(
                    f"failed: {message['params'].get('errorText')} ({message['params'].get('type')})"
                )
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result


async def look(args: argparse.Namespace, port: int) -> tuple[list[dict[str, Any]], bytes]:
    """Log in, open the page, watch the camera streams; their states and the screenshot."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        ha = HomeAssistant(session, args.url)
        code = await auth_code(session, ha, args.username, args.password)
        deadline = time.monotonic() + 30
        while True:
            try:
                async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                    pages = [t for t in await response.json() if t.get("type") == "page"]
                if pages:
                    break
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("chromium did not open its DevTools port")
            await asyncio.sleep(0.3)
        async with session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            tools = DevTools(ws)
            for domain in ("Page", "Runtime", "Log", "Network"):
                await tools.call(f"{domain}.enable")
            state = base64.b64encode(
                json.dumps({"hassUrl": ha.url, "clientId": ha.client_id}).encode()
            ).decode()
            await tools.call(
                "Page.navigate", url=f"{ha.url}{args.path}?auth_callback=1&code={code}&state={state}"
            )
            # Until every camera stream plays (and a few seconds more, so the picture moves), or --wait.
            deadline = time.monotonic() + args.wait
            playing_since: float | None = None
            while True:
                await asyncio.sleep(1)
                result = await tools.call("Runtime.evaluate", expression=VIDEOS_JS, returnByValue=True)
                videos: list[dict[str, Any]] = json.loads(result["result"]["value"])
                if args.verbose:
                    print(json.dumps(videos))
                    for line in tools.console:
                        print("console:", line[:400])
                    tools.console.clear()
                if videos and all(video["playing"] for video in videos):
                    playing_since = playing_since or time.monotonic()
                else:
                    playing_since = None
                now = time.monotonic()
                if now > deadline or (playing_since is not None and now - playing_since > 5):
                    break
            shot = await tools.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)
            return videos, base64.b64decode(shot["data"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8123")
    parser.add_argument("--path", default="/lovelace/pi")
    parser.add_argument("--username", default="demo")
    parser.add_argument("--password", default="pi-stream-demo")
    parser.add_argument("--wait", type=float, default=60.0, help="at most this long for every camera to play")
    parser.add_argument("--size", default="1400,1600")
    parser.add_argument("--verbose", action="store_true", help="print the players' state every second")
    parser.add_argument("--out", default=".demo/screenshot.png")
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("needs Debian's chromium: apt-get install chromium", file=sys.stderr)
        return 2
    port = free_port()
    profile = tempfile.mkdtemp(prefix="pi-stream-chromium-")
    process = subprocess.Popen(
        [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--mute-audio",
         f"--remote-debugging-port={port}", "--remote-debugging-address=127.0.0.1",
         f"--user-data-dir={profile}", f"--window-size={args.size}",
         "--autoplay-policy=no-user-gesture-required", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        videos, picture = asyncio.run(look(args, port))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # Chromium and its helpers: its own process group
        process.wait()
        shutil.rmtree(profile, ignore_errors=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_bytes(picture)
    print(f"screenshot: {args.out}")
    for video in videos:
        print(f"{video['entity']}: {'playing' if video['playing'] else 'NOT playing'} ({video['player']}), "
              f"{video['width']}x{video['height']}, at {video['currentTime']:.1f} s")  # fmt: skip
    return 0 if videos and all(video["playing"] for video in videos) else 1


if __name__ == "__main__":
    sys.exit(main())
