"""Restart pressed → new frames in Home Assistant's HLS stream: how long the live view freezes.

One real Home Assistant 2025.4.4 with ``stream`` (HLS, PyAV) loaded and one simulated Pi with one small
test-pattern stream (320x240, 10 fps, a key frame every second) published to the real RTSP test server, added
through the config flow (bench/ha_common.py). A viewer asks for the camera's HLS stream as the frontend does
(``camera/stream`` over the WebSocket) and polls its media playlist every 50 ms, as a player does. Then
``--restarts`` times, once the picture moves: ``POST /api/v1/streams/{id}/restart`` (what the Restart button
sends).

Measured per restart, from the request:
* **running**: the agent's ``stream_state`` event back to ``running`` (the new publisher's first frames);
* **new frames**: the viewer's playlist grows again (a new part or segment) once the new publisher runs
  (after the agent's ``running`` event: the old session's last part, flushed when the old publisher went,
  does not count).
  A viewer whose HLS session ended (Home Assistant dropped its worker) asks for the stream again, as the
  camera card does when the camera comes back, and the frames of the new session count.

``--integration DIR`` runs another copy of the integration (e.g. the code before a change, exported with
``git archive``) for a before/after comparison.

    .venv/bin/python -m bench.ha_restart_picture [--restarts 20] [--json FILE] [--integration DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import add_json_argument, summarize, write_json
from bench.ha_common import (
    AgentEventLog,
    BenchAgent,
    HomeAssistantProcess,
    home_assistant,
    load_average,
    workdir,
)

STREAM: dict[str, Any] = {
    "id": "front_door", "name": "Front door", "source": {"type": "test", "pattern": "testsrc2"},
    "width": 320, "height": 240, "fps": 10, "bitrate": "300k", "keyframe_interval_s": 1,
}  # fmt: skip
CAMERA = "camera.front_door"
POLL_S = 0.05
GONE_AFTER_S = 0.5  # a playlist that answers 404 this long: the session ended, ask for the stream again
_SEQUENCE = re.compile(r"#EXT-X-MEDIA-SEQUENCE:(\d+)")


def progress(playlist: str) -> tuple[int, int]:
    """How far an HLS media playlist has got: (segments ever listed, parts in the newest segment)."""
    match = _SEQUENCE.search(playlist)
    first = int(match.group(1)) if match else 0
    lines = playlist.splitlines()
    segments = sum(1 for line in lines if line.startswith("#EXTINF"))
    trailing_parts = 0
    for line in reversed(lines):
        if line.startswith("#EXTINF"):
            break
        if line.startswith("#EXT-X-PART:"):
            trailing_parts += 1
    return first + segments, trailing_parts


class Viewer:
    """A player of the camera's HLS stream: polls its playlist, records when it grows, asks again when its
    session ends."""

    def __init__(self, ha: HomeAssistantProcess) -> None:
        self.ha = ha
        self.growth: list[float] = []  # our clock, each time the playlist grew
        self.sessions = 0
        self.log: list[tuple[float, str]] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self, session: aiohttp.ClientSession) -> None:
        self._task = asyncio.create_task(self._run(session))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                await self._task

    async def _playlist_url(self, session: aiohttp.ClientSession) -> str:
        while True:
            try:
                (result,) = await self.ha.ws(
                    session, [{"type": "camera/stream", "entity_id": CAMERA, "format": "hls"}]
                )
            except RuntimeError:
                await asyncio.sleep(0.1)  # the camera is unavailable (stream restarting): ask again
                continue
            self.sessions += 1
            self.log.append((time.time(), f"session {result['url']}"))
            return self.ha.url + str(result["url"]).replace("master_playlist", "playlist")

    async def _run(self, session: aiohttp.ClientSession) -> None:
        url = await self._playlist_url(session)
        last: tuple[int, int] | None = None
        missing_since: float | None = None
        while True:
            async with session.get(url) as response:
                body = await response.text() if response.status == 200 else None
            now = time.time()
            self.log.append((now, f"{response.status} {progress(body) if body else ''}"))
            if body is None:
                # Not ready yet (a new session), or gone (HA ended its worker): ask again after a while.
                missing_since = missing_since or now
                if now - missing_since > GONE_AFTER_S:
                    url, last, missing_since = await self._playlist_url(session), None, None
            else:
                missing_since = None
                current = progress(body)
                if last is not None and current != last:
                    self.growth.append(now)
                last = current
            await asyncio.sleep(POLL_S)

    async def wait_growth(self, after: float, timeout_s: float) -> float:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for moment in self.growth:
                if moment > after:
                    return moment
            await asyncio.sleep(0.01)
        raise TimeoutError("the HLS playlist did not grow")


def stats(values: list[float]) -> dict[str, Any]:
    return {"unit": "s", **summarize(values).to_json()}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    running_s: list[float] = []
    frames_s: list[float] = []
    timeouts = 0
    with workdir("ha-restart-picture-", keep=args.keep) as path:
        agent = BenchAgent(path / "agent", "restart-pi", streams=[STREAM])
        await asyncio.to_thread(agent.start)
        events = AgentEventLog()
        viewer: Viewer | None = None
        try:
            async with (
                aiohttp.ClientSession() as session,
                home_assistant(session, path / "ha", ("stream",), args.integration) as ha,
            ):
                await events.start(session, agent)
                await ha.add_pi(session, agent)
                viewer = Viewer(ha)
                await viewer.start(session)
                await viewer.wait_growth(time.time(), 60)
                for number in range(1, args.restarts + 1):
                    await viewer.wait_growth(time.time(), 120)  # the picture moves before each restart
                    pressed = time.time()
                    await agent.request(session, "POST", f"/streams/{STREAM['id']}/restart")
                    try:
                        left = await events.wait_for(
                            lambda e: e.type == "stream_state" and e.data.get("state") != "running",
                            pressed,
                            15,
                        )
                        back = await events.wait_for(
                            lambda e: e.type == "stream_state" and e.data.get("state") == "running",
                            left.received,
                            30,
                        )
                        frames = await viewer.wait_growth(back.received, args.timeout)
                    except TimeoutError as err:
                        timeouts += 1
                        print(f"  restart {number:2}: {err}")
                        continue
                    running_s.append(back.received - pressed)
                    frames_s.append(frames - pressed)
                    print(
                        f"  restart {number:2}: running after {running_s[-1]:5.2f} s,"
                        f" new frames in HA after {frames_s[-1]:5.2f} s"
                    )
        finally:
            if viewer is not None:
                await viewer.stop()
                if args.keep:
                    (path / "viewer.log").write_text("".join(f"{t:.3f} {m}\n" for t, m in viewer.log))
            await events.stop()
            await asyncio.to_thread(agent.stop)
    result = {
        "restarts": args.restarts,
        "integration": str(args.integration) if args.integration else "this checkout",
        "restart_to_running": stats(running_s),
        "restart_to_new_frames_in_ha": stats(frames_s),
        "timeouts": timeouts,
        "viewer_sessions": viewer.sessions if viewer is not None else 0,
        "raw_s": {"running": running_s, "new_frames": frames_s},
        "load_average": load_average(),
    }
    for label, key in (
        ("restart → running", "restart_to_running"),
        ("restart → new frames in HA's HLS", "restart_to_new_frames_in_ha"),
    ):
        s = result[key]
        print(
            f"{label:<36} p50 {s['median']:5.2f} s  p95 {s['p95']:5.2f} s"
            f"  max {s['max']:5.2f} s  (n={s['n']})"
        )
    print(f"timeouts {timeouts}, HLS sessions the viewer opened {result['viewer_sessions']}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restarts", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=60.0, help="give up on one restart after this long")
    parser.add_argument(
        "--integration", type=Path, default=None, help="another copy of custom_components/pi_stream"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    add_json_argument(parser)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    if args.json:
        write_json(args.json, {"benchmark": "ha_restart_picture", **result})


if __name__ == "__main__":
    main()
