"""DeviceRegistry: JSON document, hot-plug events on the EventBus, refresh, tools missing or slow."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from pi_stream_agent.discovery.registry import DeviceRegistry, describe_devices
from pi_stream_agent.events import Event, EventBus
from pi_stream_agent.rootfs import Root
from tests.agent.helpers import FixtureTree, fixture_text
from tests.agent.pi_trees import (
    PI4_CARD,
    add_usb_card,
    build_pi4_platform,
    build_pi5_with_card,
    install_standins,
    remove_node,
)
from tests.agent.test_discovery_v4l2 import CARD_FORMATS, META_FORMATS

PI5_TWO = "v4l2/list_cameras_pi5_imx708_plus_imx219_tabs.txt"


class Events:
    """Collects EventBus events and lets a test wait for the next one."""

    def __init__(self, bus: EventBus) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        bus.subscribe(self.queue.put_nowait)

    async def next(self, within: float = 2.0) -> Event:
        return await asyncio.wait_for(self.queue.get(), within)


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH with the v4l2-ctl and rpicam-hello stand-ins; returns v4l2-ctl's answer directory."""
    bin_dir = install_standins(tmp_path / "bin", {"v4l2-ctl": "v4l2-ctl", "rpicam-hello": "rpicam-hello"})
    data = tmp_path / "v4l2-ctl-data"
    data.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("V4L2_CTL_STANDIN_DIR", str(data))
    cameras = tmp_path / "cameras.txt"
    cameras.write_text(fixture_text(PI5_TWO), encoding="utf-8")
    monkeypatch.setenv("RPICAM_STANDIN_OUTPUT", str(cameras))
    return data


@pytest.fixture
def no_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


PI5_CARD_JSON: dict[str, Any] = {
    "id": "usb-xhci-hcd.1-1",
    "name": "USB Video",
    "bus": "usb-xhci-hcd.1-1",
    "path": "/dev/video0",
    "stable_path": "/dev/v4l/by-id/usb-534d_USB_Video-video-index0",
    "driver": "uvcvideo",
    "formats": [
        {
            "fourcc": "MJPG",
            "description": "Motion-JPEG",
            "compressed": True,
            "sizes": [
                {"width": 1920, "height": 1080, "fps": [30.0, 25.0], "min_width": None, "min_height": None},
                {"width": 1280, "height": 720, "fps": [60.0, 30.0], "min_width": None, "min_height": None},
            ],
        },
        {
            "fourcc": "YUYV",
            "description": "YUYV 4:2:2",
            "compressed": False,
            "sizes": [
                {"width": 1920, "height": 1080, "fps": [5.0], "min_width": None, "min_height": None},
                {"width": 640, "height": 480, "fps": [30.0], "min_width": None, "min_height": None},
            ],
        },
    ],
    "controls": {},
}


async def test_pi5_document(tree: FixtureTree, tools: Path) -> None:
    build_pi5_with_card(tree)
    (tools / "video0.formats.txt").write_text(CARD_FORMATS)
    (tools / "video1.formats.txt").write_text(META_FORMATS)
    registry = DeviceRegistry(Root(tree.base), EventBus())
    await registry.start()
    try:
        document = registry.to_json()
    finally:
        await registry.stop()
    assert document["capture_devices"] == [PI5_CARD_JSON]
    assert [(c["index"], c["model"], len(c["modes"])) for c in document["csi_cameras"]] == [
        (0, "imx708", 3),
        (1, "imx219", 8),
    ]
    assert document["hardware_encoder"] == {"h264": False, "device": None, "name": None}
    assert [(n["path"], n["name"], n["role"]) for n in document["platform_nodes"]][:2] == [
        ("/dev/video19", "rpi-hevc-dec", "hevc_decoder"),
        ("/dev/video20", "pispbe-input", "isp"),
    ]
    assert document["unavailable"] == {}
    assert set(document) == {
        "capture_devices",
        "audio_devices",
        "csi_cameras",
        "hardware_encoder",
        "platform_nodes",
        "unavailable",
    }


async def test_tools_missing_are_explained(tree: FixtureTree, no_tools: None) -> None:
    build_pi5_with_card(tree)
    registry = DeviceRegistry(Root(tree.base), EventBus(), hotplug=False)
    await registry.start()
    document = registry.to_json()
    assert [d["path"] for d in document["capture_devices"]] == ["/dev/video0"]
    assert document["csi_cameras"] == []
    assert document["unavailable"] == {
        "formats": "v4l2-ctl not found on PATH (install v4l-utils for formats, controls and bus info)",
        "csi_cameras": "rpicam-hello or libcamera-hello not found on PATH (CSI cameras need rpicam-apps)",
    }
    await registry.stop()


async def test_hotplug_events_within_two_seconds(tree: FixtureTree, no_tools: None) -> None:
    build_pi4_platform(tree)
    bus = EventBus()
    events = Events(bus)
    registry = DeviceRegistry(Root(tree.base), bus)
    await registry.start()
    try:
        assert registry.hotplug_mode == "inotify"
        assert registry.capture_devices == []
        assert registry.hardware_encoder.h264 is True
        assert events.queue.empty()  # the first scan announces nothing

        add_usb_card(tree, PI4_CARD, "video2", "video3", by_id="usb-534d_USB_Video")
        added = await events.next(2.0)
        assert added.type == "device_added"
        assert added.data["device"]["id"] == "usb-0000:01:00.0-1.3"
        assert added.data["device"]["path"] == "/dev/video2"
        assert [d.path for d in registry.capture_devices] == ["/dev/video2"]

        remove_node(tree, "video3")
        remove_node(tree, "video2")
        removed = await events.next(2.0)
        assert (removed.type, removed.data) == ("device_removed", {"device": added.data["device"]})
        assert registry.capture_devices == []
        await asyncio.sleep(0.4)
        assert events.queue.empty()  # one card, one event each way: the metadata node is not a device
    finally:
        await registry.stop()


async def test_hotplug_by_polling(tree: FixtureTree, no_tools: None) -> None:
    build_pi4_platform(tree)
    bus = EventBus()
    events = Events(bus)
    registry = DeviceRegistry(Root(tree.base), bus, use_inotify=False, poll_interval_s=0.2, debounce_s=0.05)
    await registry.start()
    try:
        assert registry.hotplug_mode == "poll"
        assert registry.to_json()["unavailable"]["hotplug"] == "inotify disabled"
        add_usb_card(tree, PI4_CARD, "video2", "video3", by_id=None)
        added = await events.next(2.0)
        assert added.type == "device_added"
        assert added.data["device"]["stable_path"] is None
    finally:
        await registry.stop()


async def test_refresh_rereads_cameras_and_publishes(
    tree: FixtureTree, tools: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_pi4_platform(tree)
    bus = EventBus()
    events = Events(bus)
    registry = DeviceRegistry(Root(tree.base), bus, hotplug=False)
    await registry.start()
    assert [c.model for c in registry.csi_cameras] == ["imx708", "imx219"]
    add_usb_card(tree, PI4_CARD, "video2", "video3", by_id=None)
    monkeypatch.delenv("RPICAM_STANDIN_OUTPUT")  # the stand-in now prints "No cameras available!"
    await registry.refresh()
    assert registry.csi_cameras == []
    added = await events.next(0.1)  # published during refresh itself
    assert added.data["device"]["path"] == "/dev/video2"
    await registry.stop()


async def test_slow_tools_do_not_block_the_loop(
    tree: FixtureTree, tools: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_pi5_with_card(tree)
    monkeypatch.setenv("RPICAM_STANDIN_SLEEP", "1")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    task = asyncio.create_task(ticker())
    registry = DeviceRegistry(Root(tree.base), EventBus(), hotplug=False)
    await registry.start()  # rpicam-hello takes 1 s
    task.cancel()
    assert ticks >= 20  # the loop kept running while the subprocess ran in an executor
    assert len(registry.csi_cameras) == 2
    await registry.stop()


async def test_stop_leaves_no_task(tree: FixtureTree, no_tools: None) -> None:
    build_pi4_platform(tree)
    before = asyncio.all_tasks()
    registry = DeviceRegistry(Root(tree.base), EventBus())
    await registry.start()
    add_usb_card(tree, PI4_CARD, "video2", "video3", by_id=None)
    await asyncio.sleep(0.05)  # an event is pending in the debounce window
    await registry.stop()
    assert registry.hotplug_mode is None
    assert asyncio.all_tasks() == before


def test_describe_devices_for_the_cli(tree: FixtureTree, no_tools: None) -> None:
    build_pi4_platform(tree)
    add_usb_card(tree, PI4_CARD, "video2", "video3", by_id="usb-534d_USB_Video")
    document = describe_devices(Root(tree.base))
    assert [d["id"] for d in document["capture_devices"]] == ["usb-0000:01:00.0-1.3"]
    assert document["hardware_encoder"]["h264"] is True
    assert len(document["platform_nodes"]) == 15
    assert set(document["unavailable"]) == {"formats", "csi_cameras"}


def test_describe_devices_on_an_empty_root(tmp_path: Path, no_tools: None) -> None:
    document = describe_devices(Root(tmp_path))
    assert document["capture_devices"] == []
    assert document["hardware_encoder"] == {"h264": None, "device": None, "name": None}
    assert document["unavailable"]["capture_devices"].startswith("/sys/class/video4linux not found")
