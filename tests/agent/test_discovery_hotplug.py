"""Hot-plug watcher: inotify on <root>/dev, debounce, polling fallback, clean stop."""

from __future__ import annotations

import asyncio
import os
import struct
from pathlib import Path

import pytest

from pi_stream_agent.discovery.hotplug import (
    IN_CREATE,
    IN_DELETE,
    IN_IGNORED,
    IN_Q_OVERFLOW,
    HotplugWatcher,
    is_relevant,
    parse_inotify_events,
)
from pi_stream_agent.rootfs import Root
from tests.agent.helpers import FixtureTree


def event(mask: int, name: str, padded: int = 16) -> bytes:
    raw = name.encode()
    length = max(padded, len(raw) + 1) if name else 0
    return struct.pack("iIII", 1, mask, 0, length) + raw.ljust(length, b"\0")


def test_parse_inotify_events() -> None:
    data = event(IN_CREATE, "video2") + event(IN_DELETE, "media0", 32) + event(IN_IGNORED, "")
    assert parse_inotify_events(data) == [(IN_CREATE, "video2"), (IN_DELETE, "media0"), (IN_IGNORED, "")]
    # A torn tail (short read) is dropped, not misread.
    assert parse_inotify_events(data + b"\x01\x00") == parse_inotify_events(data)
    assert parse_inotify_events(b"") == []


def test_relevance() -> None:
    assert is_relevant(IN_CREATE, "video12")
    assert not is_relevant(IN_CREATE, "ttyUSB0")
    assert not is_relevant(IN_DELETE, "media2")
    assert is_relevant(IN_Q_OVERFLOW, "")
    assert is_relevant(IN_IGNORED, "")


class Recorder:
    """An on_change callback that counts calls and lets a test wait for the next one."""

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.calls = 0
        self.delay = delay
        self.fail = fail
        self.event = asyncio.Event()

    async def __call__(self) -> None:
        self.calls += 1
        self.event.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            raise RuntimeError("rescan failed")

    async def wait(self, within: float = 2.0) -> None:
        await asyncio.wait_for(self.event.wait(), within)
        self.event.clear()


@pytest.fixture
def dev_tree(tree: FixtureTree) -> FixtureTree:
    (tree.base / "dev").mkdir()
    return tree


async def test_inotify_notices_a_node_within_two_seconds(dev_tree: FixtureTree) -> None:
    recorder = Recorder()
    watcher = HotplugWatcher(Root(dev_tree.base), recorder, debounce_s=0.2)
    await watcher.start()
    try:
        assert watcher.mode == "inotify"
        loop = asyncio.get_running_loop()
        started = loop.time()
        dev_tree.write("dev/video2", "")
        dev_tree.write("dev/video3", "")  # the card's second node: same debounce window
        await recorder.wait(2.0)
        assert 0.15 <= loop.time() - started < 2.0
        await asyncio.sleep(0.4)
        assert recorder.calls == 1
        dev_tree.remove("dev/video2")
        await recorder.wait(2.0)
        assert recorder.calls == 2
    finally:
        await watcher.stop()


async def test_inotify_is_idle_between_events(dev_tree: FixtureTree) -> None:
    recorder = Recorder()
    watcher = HotplugWatcher(Root(dev_tree.base), recorder)
    await watcher.start()
    try:
        dev_tree.write("dev/ttyUSB0", "")  # not a video node
        dev_tree.write("dev/media3", "")
        await asyncio.sleep(0.4)
        assert recorder.calls == 0
        # Nothing scheduled: no debounce timer, no polling task; only the fd sits in the loop.
        assert watcher._timer is None
        assert watcher._poll_task is None
    finally:
        await watcher.stop()


async def test_change_during_callback_runs_it_again(dev_tree: FixtureTree) -> None:
    recorder = Recorder(delay=0.5)
    watcher = HotplugWatcher(Root(dev_tree.base), recorder, debounce_s=0.05)
    await watcher.start()
    try:
        dev_tree.write("dev/video0", "")
        await recorder.wait()
        dev_tree.write("dev/video1", "")  # arrives while the first callback still runs
        await recorder.wait(2.0)
        assert recorder.calls == 2
    finally:
        await watcher.stop()


async def test_failing_callback_does_not_stop_the_watch(dev_tree: FixtureTree) -> None:
    recorder = Recorder(fail=True)
    watcher = HotplugWatcher(Root(dev_tree.base), recorder, debounce_s=0.05)
    await watcher.start()
    try:
        dev_tree.write("dev/video0", "")
        await recorder.wait()
        await asyncio.sleep(0.1)
        dev_tree.write("dev/video1", "")
        await recorder.wait()
        assert recorder.calls == 2
    finally:
        await watcher.stop()


async def test_polls_when_dev_is_missing(tree: FixtureTree) -> None:
    recorder = Recorder()
    watcher = HotplugWatcher(Root(tree.base), recorder, debounce_s=0.05, poll_interval_s=0.1)
    await watcher.start()
    try:
        assert watcher.mode == "poll"
        assert watcher.reason is not None and "inotify unavailable" in watcher.reason
        tree.write("dev/video0", "")
        await recorder.wait(2.0)
        assert recorder.calls == 1
    finally:
        await watcher.stop()


async def test_polling_when_inotify_is_disabled(dev_tree: FixtureTree) -> None:
    recorder = Recorder()
    watcher = HotplugWatcher(
        Root(dev_tree.base), recorder, debounce_s=0.05, poll_interval_s=0.1, use_inotify=False
    )
    await watcher.start()
    try:
        assert watcher.mode == "poll"
        await asyncio.sleep(0.3)
        assert recorder.calls == 0  # unchanged set of names: no callback
        dev_tree.write("dev/video4", "")
        await recorder.wait(2.0)
        dev_tree.remove("dev/video4")
        await recorder.wait(2.0)
        assert recorder.calls == 2
    finally:
        await watcher.stop()


async def test_watched_directory_removed_falls_back_to_polling(dev_tree: FixtureTree) -> None:
    recorder = Recorder()
    watcher = HotplugWatcher(Root(dev_tree.base), recorder, debounce_s=0.05, poll_interval_s=0.1)
    await watcher.start()
    try:
        os.rmdir(dev_tree.base / "dev")
        await recorder.wait(2.0)  # going away is a change worth a rescan
        assert watcher.mode == "poll"
        dev_tree.write("dev/video0", "")  # recreated: the poll loop sees it
        await recorder.wait(2.0)
    finally:
        await watcher.stop()


def is_inotify_fd(fd: int) -> bool:
    try:
        return os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:inotify"
    except OSError:
        return False


async def test_stop_closes_the_fd_and_leaves_no_task(dev_tree: FixtureTree) -> None:
    before = asyncio.all_tasks()
    recorder = Recorder(delay=5.0)
    watcher = HotplugWatcher(Root(dev_tree.base), recorder, debounce_s=0.05)
    await watcher.start()
    assert watcher._inotify is not None
    fd = watcher._inotify.fd
    assert is_inotify_fd(fd)
    dev_tree.write("dev/video0", "")
    await recorder.wait()  # a callback is running (sleeping 5 s) when we stop
    await watcher.stop()
    assert watcher.mode is None
    assert not is_inotify_fd(fd)
    assert asyncio.all_tasks() == before
    await watcher.stop()  # twice is harmless


async def test_start_twice_keeps_one_watch(dev_tree: FixtureTree) -> None:
    recorder = Recorder()
    watcher = HotplugWatcher(Root(dev_tree.base), recorder)
    await watcher.start()
    first = watcher._inotify
    await watcher.start()
    assert watcher._inotify is first
    await watcher.stop()


def test_dev_path_is_under_the_root(tmp_path: Path) -> None:
    async def noop() -> None:
        return None

    watcher = HotplugWatcher(Root(tmp_path), noop)
    assert watcher._dev == str(tmp_path / "dev")
