"""Camera controls end to end (issue 8 §2/§4): the real agent over loopback, its API, real ffmpeg publishers
into a real RTSP server, the rpicam-vid stand-in (real option parsing) and a stand-in v4l2-ctl that keeps each
card's control values and forgets them when the card is replugged.

The cameras' controls are given to the agent in the devices document's form (tests/agent/camera_controls.py):
below a fixture root the agent runs no discovery tools, and the controls parsers are discovery's part.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from pi_stream_agent.discovery.registry import DeviceRegistry
from pi_stream_agent.events import Event
from tests.agent.camera_controls import CARD_CONTROLS, IMX708_CONTROLS, OV5647_CONTROLS, csi_camera
from tests.agent.helpers import FixtureTree
from tests.agent.pi_trees import build_pi4_with_card, remove_node
from tests.agent.rtsp import RtspServer
from tests.agent.streams_helpers import STANDIN_DIR
from tests.agent.test_streams_e2e import (
    CAPTURE_STANDIN_DIR,
    SMALL,
    AgentFactory,
    api,
    make_config,
    readable,
    start_agent,  # noqa: F401 - the fixture
    wait_state,
)

CONTROLS_STANDIN_DIR = Path(__file__).resolve().parent / "bin" / "controls"
CARD_PATH = "/dev/v4l/by-id/usb-534d_USB_Video-video-index0"


@pytest.fixture
def cameras(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """What discovery would report: a CSI camera with its controls, and the card's controls."""
    given: dict[str, Any] = {"csi": [], "card": {}}
    original = DeviceRegistry.to_json

    def with_controls(self: DeviceRegistry) -> dict[str, Any]:
        document = original(self)
        document["csi_cameras"] = list(given["csi"])
        (document.get("unavailable") or {}).pop("csi_cameras", None)
        for device in document.get("capture_devices") or []:
            device["controls"] = json.loads(json.dumps(given["card"]))
        return document

    monkeypatch.setattr(DeviceRegistry, "to_json", with_controls)
    yield given


@pytest.fixture
def v4l2_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stand-ins first on PATH; the v4l2-ctl stand-in's state directory."""
    state = tmp_path / "v4l2-ctl"
    state.mkdir()
    controls = tmp_path / "card-controls.json"
    controls.write_text(json.dumps(CARD_CONTROLS))
    monkeypatch.setenv("V4L2CTL_STATE_DIR", str(state))
    monkeypatch.setenv("V4L2CTL_CONTROLS", str(controls))
    path = [str(CONTROLS_STANDIN_DIR), str(CAPTURE_STANDIN_DIR), str(STANDIN_DIR), os.environ["PATH"]]
    monkeypatch.setenv("PATH", os.pathsep.join(path))
    return state


def events_of(agent: Any, kind: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    def collect(event: Event) -> None:
        if event.type == kind:
            seen.append(event.data)

    agent.bus.subscribe(collect)
    return seen


def rpicam_runs(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def standin_get(node: Path, name: str) -> int:
    argv = [str(CONTROLS_STANDIN_DIR / "v4l2-ctl"), "-d", str(node), "-C", name]
    answer = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30).stdout
    return int(answer.split(":")[1])


def standin_set(node: Path, name: str, value: int) -> None:
    argv = [str(CONTROLS_STANDIN_DIR / "v4l2-ctl"), "-d", str(node), "-c", f"{name}={value}"]
    subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30)


def test_the_v4l2_ctl_standin_keeps_values_and_forgets_them_on_replug(
    tmp_path: Path, v4l2_state: Path
) -> None:
    tree = FixtureTree(tmp_path / "root")
    build_pi4_with_card(tree)
    node = tree.base / "dev" / "video2"
    standin_set(node, "brightness", 12)
    assert standin_get(node, "brightness") == 12
    remove_node(tree, "video2")
    remove_node(tree, "video3")
    build_pi4_with_card(tree)
    assert standin_get(node, "brightness") == 0
    refused = subprocess.run(
        [str(CONTROLS_STANDIN_DIR / "v4l2-ctl"), "-d", str(node), "-c", "brightness=65"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode == 1 and "Numerical result out of range" in refused.stderr


async def wait_for(predicate: Any, timeout_s: float = 20.0) -> None:
    for _ in range(int(timeout_s / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_csi_settings_are_checked_stored_and_applied_by_a_restart(
    tmp_path: Path,
    rtsp_server: RtspServer,
    start_agent: AgentFactory,  # noqa: F811
    cameras: dict[str, Any],
    v4l2_state: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tree = FixtureTree(tmp_path / "root")
    build_pi4_with_card(tree)
    cameras["csi"] = [csi_camera("imx708", IMX708_CONTROLS)]
    log = tmp_path / "rpicam.log"
    monkeypatch.setenv("RPICAM_STANDIN_LOG", str(log))
    stream = {"id": "csi", "source": {"type": "csi", "camera": 0}, **SMALL, "settings": {"af_mode": "manual"}}
    agent = await start_agent(make_config(tmp_path, rtsp_server, [stream], simulate=False, root=tree.base))
    await wait_state(agent, "csi", {"running"})
    announced = events_of(agent, "stream_controls")
    base, headers = api(agent)
    streams_file = tmp_path / "state" / "streams.yaml"
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(f"{base}/streams/csi/controls") as response:
            assert response.status == 200
            doc = await response.json()
        by_id = {entry["id"]: entry for entry in doc["controls"]}
        assert by_id["af_mode"]["value"] == "manual"
        assert by_id["lens_position"]["max"] == 15.0  # the camera's range, not the vocabulary's 32
        assert "hdr" not in by_id  # not listed by this camera

        # Problems: all named, nothing applied or stored.
        runs_before = len(rpicam_runs(log))
        bad = {"brightness": 2, "lens_position": 20, "hdr": True, "rotation": "90"}
        async with session.put(f"{base}/streams/csi/controls", json=bad) as response:
            assert response.status == 422
            error = (await response.json())["error"]
        assert error["code"] == "invalid_config"
        problems = {p["field"]: p for p in error["details"]["problems"]}
        assert set(problems) == {"brightness", "lens_position", "hdr", "rotation"}
        assert problems["lens_position"]["label"] == "Lens position"
        assert (
            problems["lens_position"]["message"] == "Lens position must be between 0 and 15 on this camera."
        )
        assert problems["hdr"]["message"] == "HDR is not available for this camera."
        assert not streams_file.exists()  # still the seed: nothing was written
        await asyncio.sleep(0.5)
        assert len(rpicam_runs(log)) == runs_before

        # Several settings in one call: stored, then one fast restart with the new options.
        change = {"rotation": "180", "brightness": 0.1, "af_mode": "continuous", "lens_position": None}
        async with session.put(f"{base}/streams/csi/controls", json=change) as response:
            assert response.status == 200, await response.text()
            confirmed = {entry["id"]: entry["value"] for entry in (await response.json())["controls"]}
        assert confirmed["rotation"] == "180" and confirmed["brightness"] == 0.1
        assert confirmed["af_mode"] == "continuous" and confirmed["lens_position"] is None
        stored = yaml.safe_load(streams_file.read_text())["streams"][0]
        assert stored["settings"] == {"rotation": "180", "af_mode": "continuous", "brightness": 0.1}
        await wait_for(lambda: len(rpicam_runs(log)) > runs_before)
        await wait_state(agent, "csi", {"running"})
        argv = rpicam_runs(log)[-1]
        for option, value in (
            ("--rotation", "180"),
            ("--brightness", "0.1"),
            ("--autofocus-mode", "continuous"),
        ):
            assert argv[argv.index(option) + 1] == value
        await readable(f"{rtsp_server.read_base}/csi")
        assert announced and announced[-1]["stream_id"] == "csi"
        assert {e["id"]: e["value"] for e in announced[-1]["controls"]["controls"]}["rotation"] == "180"

        # The stream's form (PUT /streams/{id}) without settings keeps them.
        async with session.get(f"{base}/streams/csi") as response:
            config = (await response.json())["config"]
        config.pop("settings")
        config.pop("v4l2_controls")
        async with session.put(f"{base}/streams/csi", json={**config, "fps": 10}) as response:
            assert response.status == 200
            assert (await response.json())["stream"]["config"]["settings"]["rotation"] == "180"

        # One autofocus cycle: a restart that focuses continuously, then the configured mode again.
        await wait_state(agent, "csi", {"running"})
        async with session.put(f"{base}/streams/csi/controls", json={"af_mode": "manual"}) as response:
            assert response.status == 200
        await wait_state(agent, "csi", {"running"})
        runs = len(rpicam_runs(log))
        async with session.post(f"{base}/streams/csi/autofocus") as response:
            assert response.status == 202
        await wait_for(lambda: len(rpicam_runs(log)) > runs)
        focused = rpicam_runs(log)[runs]
        assert focused[focused.index("--autofocus-mode") + 1] == "continuous"
        await wait_state(agent, "csi", {"running"})
        async with session.post(f"{base}/streams/csi/restart") as response:
            assert response.status == 202
        await wait_for(lambda: len(rpicam_runs(log)) > runs + 1)
        again = rpicam_runs(log)[-1]
        assert again[again.index("--autofocus-mode") + 1] == "manual"

        # A fixed-focus camera: no autofocus to trigger.
        cameras["csi"] = [csi_camera("ov5647", OV5647_CONTROLS)]
        async with session.post(f"{base}/streams/csi/autofocus") as response:
            assert response.status == 409
            message = (await response.json())["error"]["message"]
        assert message.startswith("This camera has no autofocus")


async def test_card_controls_are_set_live_and_set_again_after_a_replug(
    tmp_path: Path,
    rtsp_server: RtspServer,
    start_agent: AgentFactory,  # noqa: F811
    cameras: dict[str, Any],
    v4l2_state: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tree = FixtureTree(tmp_path / "root")
    build_pi4_with_card(tree)
    cameras["card"] = CARD_CONTROLS
    capture_log = tmp_path / "capture.log"
    monkeypatch.setenv("CAPTURE_STANDIN_LOG", str(capture_log))
    stream = {"id": "hdmi", "source": {"type": "v4l2", "device": CARD_PATH}, **SMALL}
    agent = await start_agent(make_config(tmp_path, rtsp_server, [stream], simulate=False, root=tree.base))
    first = await wait_state(agent, "hdmi", {"running"})
    announced = events_of(agent, "stream_controls")
    base, headers = api(agent)
    calls = v4l2_state / "calls.log"

    def card_value(name: str) -> int:
        """What the card (its node as it is now) holds, asked through the stand-in."""
        return standin_get(tree.base / "dev" / "video2", name)

    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(f"{base}/streams/hdmi/controls") as response:
            by_id = {entry["id"]: entry for entry in (await response.json())["controls"]}
        assert by_id["v4l2:brightness"]["value"] == 0 and by_id["v4l2:brightness"]["apply"] == "live"
        assert by_id["rotation"]["apply"] == "restart"  # no flip controls: an ffmpeg filter

        refused = {
            "v4l2:brightness": 100,
            "v4l2:exposure_time_absolute": 10,
            "v4l2:power_line_frequency": "2",
        }
        async with session.put(f"{base}/streams/hdmi/controls", json=refused) as response:
            assert response.status == 422
            fields = {p["field"] for p in (await response.json())["error"]["details"]["problems"]}
        assert fields == {"v4l2:brightness", "v4l2:exposure_time_absolute"}
        assert not calls.exists() or "-c" not in calls.read_text()  # nothing set on the card

        change = {"v4l2:brightness": 10, "v4l2:power_line_frequency": "2"}
        async with session.put(f"{base}/streams/hdmi/controls", json=change) as response:
            assert response.status == 200, await response.text()
            confirmed = {entry["id"]: entry["value"] for entry in (await response.json())["controls"]}
        assert confirmed["v4l2:brightness"] == 10 and confirmed["v4l2:power_line_frequency"] == "2"
        assert (card_value("brightness"), card_value("power_line_frequency")) == (10, 2)
        status = agent.streams.status("hdmi", reader_host="x")  # type: ignore[union-attr]
        assert status["pids"] == first["pids"]  # live: no restart
        assert announced[-1]["stream_id"] == "hdmi"

        # Replugged: the card forgets (a new node), the agent sets the stored values again once running.
        remove_node(tree, "video2")
        remove_node(tree, "video3")
        await wait_state(agent, "hdmi", {"waiting_for_device"}, timeout_s=10)
        # While it is away a change is checked against what it last reported, stored, and set on return.
        async with session.put(f"{base}/streams/hdmi/controls", json={"v4l2:contrast": 50}) as response:
            assert response.status == 200, await response.text()
        build_pi4_with_card(tree)
        announced.clear()
        await wait_state(agent, "hdmi", {"running"})
        await wait_for(lambda: bool(announced))
        assert (card_value("brightness"), card_value("power_line_frequency")) == (10, 2)
        assert card_value("contrast") == 50
        assert len([line for line in calls.read_text().splitlines() if '"-c"' in line]) >= 2

        # Orientation through ffmpeg (the card has no flip controls): a restart with the filter.
        async with session.put(f"{base}/streams/hdmi/controls", json={"rotation": "180"}) as response:
            assert response.status == 200
        await wait_for(lambda: "hflip,vflip" in capture_log.read_text())
        await wait_state(agent, "hdmi", {"running"})
        await readable(f"{rtsp_server.read_base}/hdmi")
