"""Glass-to-glass frame age through Home Assistant's stream (HLS, LL-HLS parts): from a frame entering the
publisher to the moment a player can have it from Home Assistant.

The parts, all real but the camera:

* **Camera**: bench/standins/rpicam-vid, first on the agent's PATH. It is glass_latency's stand-in camera
  (``stamp_frame``/``camera``: 640x480 at 15 fps, each frame stamped with its capture time in its pixels)
  and glass_latency's stand-in encoder (libx264 zerolatency, Annex-B H.264 as rpicam-vid ``--inline``
  writes it), honouring the agent's ``--framerate``, ``--intra`` and ``--bitrate``.
* **Agent**: ``/usr/bin/python3 -m pi_stream_agent run`` on a Pi 4 fixture tree (``root``: the bcm2835
  encoder node is there, so the CSI stream is the hardware path), with one CSI stream (640x480, 15 fps,
  1 Mbit/s, key frame every ``--keyframe-interval`` s): the agent really runs rpicam-vid → its relay ffmpeg
  (``-c:v copy``, key-frame tap on) → its RTSP server (the patched rtsp-server-perl, UDP).
* **Home Assistant** 2025.4.4 (bench/ha_common.py) with ``stream`` loaded as the demo loads it
  (``stream:`` with no options: LL-HLS on, 1 s parts, 6 s segments — HA's defaults in
  ``homeassistant/components/stream/__init__.py``). ``--variants`` runs other settings of HA's own, each in
  a fresh Home Assistant: ``classic`` (``ll_hls: false``: 2 s segments, no parts), or HA's options
  ``part_duration`` (0.2-1.5 s) and ``segment_duration`` (2-10 s) as ``KEY=VALUE`` joined by ``+``. The Pi
  is added through the config flow; HA's stream worker reads the camera's ``stream_source``.
* **Viewer** (this script): asks ``camera/stream`` (format hls) as the frontend does, then follows the media
  playlist as hls.js does in low-latency mode: blocking playlist reloads (``_HLS_msn``/``_HLS_part``) for
  the next part, each new part fetched the moment the playlist lists it, and each segment fetched the
  moment the playlist completes it (what a classic HLS player would download). After the run, each
  segment (init.mp4 + its parts) is decoded with PyAV; each frame is mapped to the part that carried it
  (by the byte position of its packet) and its stamp read back.
* **RTSP reader**, in the same run on the same published path: glass_latency's low-latency ffmpeg reader
  (``reader_argv``), for the comparison with P3.
* **Browser** (``--browser``): Home Assistant also loads ``frontend``, and headless Chromium shows the
  camera's card in live view (bench/browser_player.py: the frontend's own player, hls.js). Each frame it
  shows has its stamp read in the page: what a person would see, after 15 s for the player to settle.

Recorded per frame: stamp → the moment the part (or segment) carrying it had been fetched, the
*availability age*: what a player could show at the earliest. Per part (segment): the age of its newest
frame then, the *live-edge age*: how far the newest picture a player has lags behind the camera. A player
plays a steady distance behind that edge, its hold-back: the playlist's PART-HOLD-BACK in low-latency
mode, HOLD-BACK otherwise (three target durations when absent, RFC 8216bis; hls.js's latency controller
does the same), read from HA's playlist and reported with the estimate live-edge age + hold-back.
Everything runs on this machine: one clock.

Also recorded: how long from asking for the stream (``camera/stream``) to the first playlist with media,
fetched as a player does (a plain playlist request, which Home Assistant answers once a second segment
exists).

    .venv/bin/python -m bench.ha_glass_latency [--seconds 30] [--keyframe-interval 1] [--browser]
        [--json FILE]
        [--variants demo,classic,part_duration=0.5,part_duration=0.5+segment_duration=2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import av

from bench.browser_player import BrowserPlayer
from bench.common import REPO_ROOT, add_json_argument, percentile, write_json
from bench.glass_latency import HEIGHT, WIDTH, read_stamp, reader_argv
from bench.ha_common import BenchAgent, HomeAssistantProcess, home_assistant, load_average, workdir
from tests.agent.helpers import FixtureTree
from tests.agent.pi_trees import build_pi4_platform

STANDINS = REPO_ROOT / "bench" / "standins"  # the stamped rpicam-vid
STREAM_ID = "glass"
CAMERA = f"camera.{STREAM_ID}"
FPS = 15
WARMUP_S = 3.0  # after the first part: HA's worker and the reader settle
BROWSER_WARMUP_S = 15.0  # after the card plays: hls.js settles at its target (raised by stalls at start)
_PART = re.compile(r'^#EXT-X-PART:.*URI="\./segment/(\d+)\.(\d+)\.m4s"')
_SEGMENT = re.compile(r"^\./segment/(\d+)\.m4s$")


@dataclass(frozen=True)
class Variant:
    """One configuration of Home Assistant's ``stream`` (each runs in a fresh Home Assistant)."""

    name: str
    stream_yaml: str  # under ``stream:`` in configuration.yaml; "" = HA's defaults, as the demo has it

    @property
    def low_latency(self) -> bool:
        off = {f"ll_hls: {word}" for word in ("false", "no", "off", "0")}
        return not any(line.strip().lower() in off for line in self.stream_yaml.splitlines())


STREAM_OPTIONS = ("ll_hls", "part_duration", "segment_duration")  # HA's own (stream/__init__.py)


def variant(name: str) -> Variant:
    """``demo`` (HA's defaults), ``classic`` (``ll_hls=false``), or HA's stream options joined by ``+``:
    ``part_duration=0.5+segment_duration=2``."""
    if name == "demo":
        return Variant(name, "")
    if name == "classic":
        return Variant(name, "ll_hls: false")
    lines = []
    for option in name.split("+"):
        key, sep, value = option.partition("=")
        if not sep or key not in STREAM_OPTIONS:
            raise argparse.ArgumentTypeError(
                f"unknown variant {name!r}: demo, classic, or {'/'.join(STREAM_OPTIONS)}=VALUE joined by +"
            )
        lines.append(f"{key}: {value}")
    return Variant(name, "\n".join(lines))


def stream_config(keyframe_interval_s: float) -> dict[str, Any]:
    return {
        "id": STREAM_ID, "name": "Glass", "source": {"type": "csi", "camera": 0}, "width": WIDTH,
        "height": HEIGHT, "fps": FPS, "bitrate": "1M", "keyframe_interval_s": keyframe_interval_s,
    }  # fmt: skip


# ----------------------------------------------------------------------------------------------- playlist


@dataclass(frozen=True)
class Playlist:
    """What a player reads from an HLS media playlist (RFC 8216bis), as Home Assistant writes it."""

    parts: tuple[tuple[int, int], ...]  # (segment sequence, part index), in order
    complete: tuple[int, ...]  # sequences of the complete segments (listed with #EXTINF and their URI)
    tags: dict[str, str]  # TARGETDURATION, PART-TARGET, PART-HOLD-BACK, HOLD-BACK, START-OFFSET …


def parse_playlist(text: str) -> Playlist:
    parts: list[tuple[int, int]] = []
    complete: list[int] = []
    tags: dict[str, str] = {}
    for line in text.splitlines():
        if match := _PART.match(line):
            parts.append((int(match.group(1)), int(match.group(2))))
        elif match := _SEGMENT.match(line):
            complete.append(int(match.group(1)))
        elif line.startswith("#EXT-X-TARGETDURATION:"):
            tags["TARGETDURATION"] = line.split(":", 1)[1]
        elif line.startswith(("#EXT-X-PART-INF:", "#EXT-X-SERVER-CONTROL:", "#EXT-X-START:")):
            prefix = "START-" if line.startswith("#EXT-X-START:") else ""
            for attribute in line.split(":", 1)[1].split(","):
                name, _, value = attribute.partition("=")
                tags[prefix + name] = value
    return Playlist(tuple(parts), tuple(complete), tags)


# ------------------------------------------------------------------------------------------------- viewer


@dataclass
class Fetched:
    sequence: int
    part: int | None  # None: the whole segment
    at: float  # time.time() once its last byte had arrived
    data: bytes


@dataclass
class Viewer:
    """An LL-HLS player's network side (hls.js in low-latency mode): blocking reloads for the next part."""

    ha: HomeAssistantProcess
    parts: list[Fetched] = field(default_factory=list)
    segments: list[Fetched] = field(default_factory=list)
    init: bytes = b""
    first_playlist: str = ""
    blocking_reloads: int = 0
    failed_reloads: int = 0

    async def playlist_url(self, session: aiohttp.ClientSession, timeout_s: float = 60) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                (result,) = await self.ha.ws(
                    session, [{"type": "camera/stream", "entity_id": CAMERA, "format": "hls"}]
                )
                return self.ha.url + str(result["url"]).replace("master_playlist", "playlist")
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)  # the camera is not available yet (the stream is starting)

    async def run(self, session: aiohttp.ClientSession, url: str, until: asyncio.Event) -> None:
        base = url.rsplit("/", 1)[0]
        while True:  # the first playlist (404 until HA's worker has its first part or segment)
            status, body, _ = await _get(session, url)
            if status == 200 and _live_edge(parse_playlist(body.decode())) is not None:
                break
            await asyncio.sleep(0.1)
        self.first_playlist = body.decode()
        status, self.init, _ = await _get(session, base + "/init.mp4")
        if status != 200:
            raise RuntimeError(f"init.mp4: HTTP {status}")
        playlist = parse_playlist(self.first_playlist)
        # The parts of the segment in progress that are already listed: the decoder needs them (the
        # segment's key frame is in its part 0), not the figures (their frames are older than the window).
        if playlist.parts and (live := playlist.parts[-1][0]) not in playlist.complete:
            for sequence, index in playlist.parts:
                if sequence == live:
                    self.parts.append(
                        await _fetch(session, f"{base}/segment/{sequence}.{index}.m4s", sequence, index)
                    )
        # Live from here: the parts and segments that appear after the first playlist.
        seen_parts = set(playlist.parts)
        seen_segments = set(playlist.complete)
        wanted = _live_edge(playlist)
        while not until.is_set():
            assert wanted is not None
            msn, part = wanted
            # A part (LL-HLS); or, without parts, the segment after ``msn`` (see _live_edge).
            query = f"_HLS_msn={msn}" + (f"&_HLS_part={part}" if part is not None else "")
            status, body, _ = await _get(session, f"{url}?{query}")
            self.blocking_reloads += 1
            if status != 200:  # the part did not come within HA's part timeout: ask again
                self.failed_reloads += 1
                await asyncio.sleep(0.05)
                continue
            playlist = parse_playlist(body.decode())
            for new in [p for p in playlist.parts if p not in seen_parts]:
                seen_parts.add(new)
                self.parts.append(await _fetch(session, f"{base}/segment/{new[0]}.{new[1]}.m4s", *new))
            for sequence in [s for s in playlist.complete if s not in seen_segments]:
                seen_segments.add(sequence)
                self.segments.append(await _fetch(session, f"{base}/segment/{sequence}.m4s", sequence, None))
            wanted = _live_edge(playlist) or wanted


def _live_edge(playlist: Playlist) -> tuple[int, int | None] | None:
    """The blocking reload to ask for next (None: nothing listed yet). With parts (LL-HLS): the part after
    the newest listed one, or part 0 of the next segment. Without parts (``ll_hls: false``): ``_HLS_msn`` of
    the newest complete segment alone. Home Assistant answers a request without ``_HLS_part`` once segment
    ``msn + 1`` exists (hls.py), and without LL-HLS a segment only exists once it is complete (its muxer
    writes nothing before it closes the segment): the answer comes the moment the next segment is listed,
    as a player polling without delay would see it."""
    if playlist.parts:
        sequence, index = playlist.parts[-1]
        if sequence in playlist.complete:
            return sequence + 1, 0
        return sequence, index + 1
    if playlist.complete:
        return playlist.complete[-1], None
    return None


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes, float]:
    async with session.get(url) as response:
        body = await response.read()
        return response.status, body, time.time()


async def _fetch(session: aiohttp.ClientSession, url: str, sequence: int, part: int | None) -> Fetched:
    status, body, at = await _get(session, url)
    if status != 200:
        raise RuntimeError(f"{url}: HTTP {status}")
    return Fetched(sequence, part, at, body)


# ------------------------------------------------------------------------------------------------ decoding


@dataclass(frozen=True)
class Frame:
    stamp_s: float | None  # the capture time read from the picture (None: unreadable)
    available_at: float  # when the part or segment that carried it had been fetched


def decode(init: bytes, pieces: list[Fetched]) -> list[Frame]:
    """The frames of one segment's pieces (its parts in order, or the whole segment), each with the fetch
    time of the piece whose bytes carried its packet."""
    data = init + b"".join(piece.data for piece in pieces)
    ends: list[tuple[int, float]] = []  # (end offset in ``data``, fetched at) per piece
    offset = len(init)
    for piece in pieces:
        offset += len(piece.data)
        ends.append((offset, piece.at))
    fetched_at: dict[int, float] = {}  # packet pts → when its piece had been fetched
    frames: list[Frame] = []
    with av.open(io.BytesIO(data), format="mp4") as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.size and packet.pts is not None:
                fetched_at[packet.pts] = next(at for end, at in ends if packet.pos < end)
            for picture in packet.decode():  # the flush packet (size 0) returns what the decoder held
                grey = picture.to_ndarray(format="gray").tobytes()
                stamp = read_stamp(grey)
                frames.append(Frame(None if stamp is None else stamp / 1000, fetched_at[picture.pts]))
    return frames


def by_segment(pieces: Iterable[Fetched]) -> dict[int, list[Fetched]]:
    grouped: dict[int, list[Fetched]] = {}
    for piece in pieces:
        grouped.setdefault(piece.sequence, []).append(piece)
    return grouped


def part_frames(init: bytes, parts: list[Fetched]) -> list[Frame]:
    """Frames of the parts, per segment whose parts were all fetched from part 0 (a decoder starts at the
    segment's key frame)."""
    frames: list[Frame] = []
    for pieces in by_segment(parts).values():
        if [p.part for p in pieces] == list(range(len(pieces))):
            frames += decode(init, pieces)
    return frames


def segment_frames(init: bytes, segments: list[Fetched]) -> list[Frame]:
    return [frame for segment in segments for frame in decode(init, [segment])]


# --------------------------------------------------------------------------------------------- RTSP reader


@dataclass
class RtspReader:
    """glass_latency's low-latency ffmpeg reader on the published path, in a thread."""

    url: str
    frames: list[Frame] = field(default_factory=list)
    _proc: subprocess.Popen[bytes] | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            reader_argv(self.url), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, start_new_session=True
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        size = WIDTH * HEIGHT
        while len(frame := self._proc.stdout.read(size)) == size:
            arrived = time.time()
            stamp = read_stamp(frame)
            self.frames.append(Frame(None if stamp is None else stamp / 1000, arrived))

    def stop(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
        if self._thread is not None:
            self._thread.join(5)


# ----------------------------------------------------------------------------------------------- figures


def ages(frames: list[Frame], start: float, end: float, pieces: bool = True) -> dict[str, Any]:
    """Availability age of the frames captured in [start, end): p50/p95/min/max in ms. With ``pieces``,
    also the *live-edge age*: per part (or segment), the age of its newest frame when it had been fetched,
    how far the newest picture a player can have lags behind the camera."""
    inside = [f for f in frames if f.stamp_s is not None and start <= f.stamp_s < end]
    values = [f.available_at - f.stamp_s for f in inside if f.stamp_s is not None]
    if not values:
        return {"frames": 0, "unreadable_stamps": sum(1 for f in frames if f.stamp_s is None)}
    result: dict[str, Any] = {
        "frames": len(values),
        "unreadable_stamps": sum(1 for f in frames if f.stamp_s is None),
        **_ms(values),
    }
    if pieces:
        newest: dict[float, float] = {}  # fetched at → the newest stamp it carried
        for frame in frames:
            if frame.stamp_s is not None:
                newest[frame.available_at] = max(newest.get(frame.available_at, 0.0), frame.stamp_s)
        edges = [at - stamp for at, stamp in newest.items() if start <= stamp < end]
        result["pieces"] = len(edges)
        if edges:  # none when the window is shorter than a segment
            result["live_edge"] = _ms(edges)
    return result


def _ms(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 50) * 1000, 1),
        "p95_ms": round(percentile(values, 95) * 1000, 1),
        "min_ms": round(min(values) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }


def hold_back_s(tags: dict[str, str], low_latency: bool) -> tuple[float, str]:
    """How far behind the live edge a player plays: PART-HOLD-BACK in low-latency mode, HOLD-BACK
    otherwise; when the playlist gives no HOLD-BACK, RFC 8216bis's default of three target durations."""
    if low_latency and "PART-HOLD-BACK" in tags:
        return float(tags["PART-HOLD-BACK"]), "PART-HOLD-BACK"
    if "HOLD-BACK" in tags:
        return float(tags["HOLD-BACK"]), "HOLD-BACK"
    return 3 * float(tags["TARGETDURATION"]), "3 x TARGETDURATION (no HOLD-BACK in the playlist)"


# -------------------------------------------------------------------------------------------------- run


async def run(args: argparse.Namespace, chosen: Variant) -> dict[str, Any]:
    with workdir(f"ha-glass-latency-{chosen.name}-", keep=args.keep) as path:
        tree = FixtureTree(path / "root")
        build_pi4_platform(tree)
        agent = BenchAgent(
            path / "agent", "glass-pi", streams=[stream_config(args.keyframe_interval)],
            root=tree.base, path_dirs=(STANDINS,),
        )  # fmt: skip
        stream_yaml = {"stream": chosen.stream_yaml} if chosen.stream_yaml else None
        await asyncio.to_thread(agent.start)
        reader: RtspReader | None = None
        viewer_task: asyncio.Task[None] | None = None
        browser: BrowserPlayer | None = None
        shown: list[Frame] = []
        unreadable_shown = 0
        hls_state: dict[str, Any] | None = None
        components = ("stream", "frontend") if args.browser else ("stream",)
        try:
            async with (
                aiohttp.ClientSession() as session,
                home_assistant(
                    session, path / "ha", components, component_config=stream_yaml, onboarded=args.browser
                ) as ha,
            ):
                status = await agent.request(session, "GET", f"/streams/{STREAM_ID}")
                if status.get("encoding") != "hardware":
                    raise RuntimeError(f"the stream is not on the CSI hardware path: {status}")
                await ha.add_pi(session, agent)
                viewer = Viewer(ha)
                asked = time.time()  # a viewer opens the camera: HA starts its stream worker
                url = await viewer.playlist_url(session)
                done = asyncio.Event()
                viewer_task = asyncio.create_task(viewer.run(session, url, done))
                while not viewer.first_playlist:
                    if viewer_task.done():
                        viewer_task.result()  # raises what stopped it
                    await asyncio.sleep(0.01)
                first_playlist_s = time.time() - asked
                playlist = parse_playlist(viewer.first_playlist)
                warmup_s = WARMUP_S
                if args.browser:
                    browser = BrowserPlayer(ha, CAMERA)
                    await browser.start(session)
                    warmup_s = BROWSER_WARMUP_S  # hls.js reaches its target latency (playback rate ≤ 2)
                    print(f"the camera card plays ({browser.player})")
                reader = RtspReader(str(status["urls"]["main"]))
                reader.start()
                start = time.time() + warmup_s
                end = start + args.seconds
                # Until the segment holding the last frame of the window is complete and fetched.
                tail_s = float(playlist.tags["TARGETDURATION"]) * 1.5 + 2
                print(f"measuring {args.seconds:g} s after {warmup_s:g} s of warm-up (+{tail_s:g} s tail)")
                await asyncio.sleep(end + tail_s - time.time())
                if browser is not None:
                    displayed, unreadable_shown = await browser.shown()
                    hls_state = await browser.hls_state()
                    shown = [Frame(d.stamp_s, d.displayed_at) for d in displayed]
                done.set()
                await asyncio.wait_for(viewer_task, 15)
                reader.stop()
        finally:
            if browser is not None:
                await browser.stop()
            if viewer_task is not None and not viewer_task.done():
                viewer_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                    await viewer_task
            if reader is not None:
                reader.stop()
            await asyncio.to_thread(agent.stop)
    low_latency = chosen.low_latency
    results = {
        "ll_hls_parts": ages(part_frames(viewer.init, viewer.parts), start, end) if low_latency else None,
        "hls_segments": ages(segment_frames(viewer.init, viewer.segments), start, end),
        "rtsp_reader": ages(reader.frames, start, end, pieces=False),
    }
    if browser is not None:
        results["browser"] = {
            "player": browser.player,
            "hls_js": hls_state,
            **ages(shown, start, end, pieces=False),
            "unreadable_stamps": unreadable_shown,
        }
    tags = playlist.tags
    player: dict[str, Any] = {}
    for key, ll in (("ll_hls_parts", True), ("hls_segments", False)):
        if results[key] and results[key].get("live_edge"):
            hold, source = hold_back_s(tags, ll)
            # A player keeps playing ``hold`` behind the live edge it has (hls.js's latency controller);
            # the live edge itself lags the camera by the live-edge age.
            player[key] = {
                "hold_back_s": hold,
                "hold_back_from": source,
                "p50_ms": round(results[key]["live_edge"]["p50_ms"] + hold * 1000, 1),
            }
    return {
        "home_assistant_stream_config": chosen.stream_yaml or "(none: HA's defaults)",
        "playlist_tags": tags,
        "open_to_first_playlist_s": round(first_playlist_s, 3),
        "first_playlist": viewer.first_playlist,
        "blocking_reloads": viewer.blocking_reloads,
        "failed_blocking_reloads": viewer.failed_reloads,
        "parts_fetched": len(viewer.parts),
        "segments_fetched": len(viewer.segments),
        "part_durations_s": _durations(viewer.first_playlist),
        "results": results,
        "player_latency_estimate": player,
        "load_average": load_average(),
    }


def _durations(playlist: str) -> list[float]:
    return [float(m) for m in re.findall(r"#EXT-X-PART:DURATION=([\d.]+)", playlist)]


def report(name: str, result: dict[str, Any]) -> None:
    print(f"{name} (stream: {result['home_assistant_stream_config'].replace(chr(10), '; ')}):")
    labels = {
        "ll_hls_parts": "LL-HLS parts (blocking reload)",
        "hls_segments": "HLS whole segments",
        "rtsp_reader": "RTSP reader, same path",
        "browser": "shown by Chromium (camera card)",
    }
    for key, label in labels.items():
        r = result["results"].get(key)
        if not r:
            continue
        if not r.get("frames"):
            print(f"  {label:<34} no frames")
            continue
        print(
            f"  {label:<34} p50 {r['p50_ms']:7.1f} ms  p95 {r['p95_ms']:7.1f} ms  "
            f"min {r['min_ms']:7.1f}  max {r['max_ms']:7.1f}  (n={r['frames']}, "
            f"unreadable {r['unreadable_stamps']})"
        )
        if edge := r.get("live_edge"):
            print(
                f"  {'':<34} live edge (newest frame of each of {r['pieces']}): "
                f"p50 {edge['p50_ms']:7.1f} ms  p95 {edge['p95_ms']:7.1f} ms"
            )
    if state := (result["results"].get("browser") or {}).get("hls_js"):
        print("  hls.js in the page: " + ", ".join(f"{k}={v}" for k, v in state.items()))
    tags = result["playlist_tags"]
    print("  playlist: " + ", ".join(f"{k}={v}" for k, v in tags.items()))
    print(f"  camera/stream asked → first playlist with media: {result['open_to_first_playlist_s']:.2f} s")
    for key, estimate in result["player_latency_estimate"].items():
        print(
            f"  a player of {labels[key]}: ≈ {estimate['p50_ms'] / 1000:.2f} s "
            f"(live edge p50 + {estimate['hold_back_s']:g} s {estimate['hold_back_from']})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=30.0, help="the measured window (≥ 30 s: ≥ 450 frames)"
    )
    parser.add_argument(
        "--keyframe-interval", type=float, default=1.0, help="the stream's keyframe_interval_s"
    )
    parser.add_argument(
        "--variants",
        type=lambda text: [variant(name) for name in text.split(",")],
        default=[variant("demo")],
        help="HA stream settings, each in a fresh HA: demo (HA's defaults), classic, or KEY=VALUE[+…]",
    )
    parser.add_argument(
        "--browser", action="store_true", help="also a camera card in headless Chromium (needs the frontend)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    add_json_argument(parser)
    args = parser.parse_args()
    variants: dict[str, Any] = {}
    for chosen in args.variants:
        variants[chosen.name] = asyncio.run(run(args, chosen))
        report(chosen.name, variants[chosen.name])
    result = {
        "benchmark": "ha_glass_latency",
        "stream": stream_config(args.keyframe_interval),
        "window_s": args.seconds,
        "variants": variants,
    }
    if args.json:
        write_json(
            args.json, {**result, "command": "python -m bench.ha_glass_latency " + " ".join(sys.argv[1:])}
        )


if __name__ == "__main__":
    main()
