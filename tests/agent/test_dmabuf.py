"""DMA-buf: debugfs bufinfo of every kernel era, dma-buf fdinfo, the process scan and the reader."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pi_stream_agent.rootfs import Gaps, Root
from pi_stream_agent.telemetry.dmabuf import (
    BUFINFO,
    DmabufFdinfo,
    DmaBuffer,
    DmabufReader,
    parse_bufinfo,
    parse_fdinfo,
    scan_processes,
)
from tests.agent.helpers import FixtureTree, fixture_files, fixture_text

OLD_FORMAT = "dmabuf/bufinfo_pi4_2020_kernel_old_format_firmware1345.txt"
PARTIAL = "dmabuf/bufinfo_pi4_6.x_vcsmcma_v3d_partial_rpicam598.txt"
EMPTY = "dmabuf/bufinfo_empty_6.1.21_rpicam573.txt"
HEADER_ONLY = "dmabuf/bufinfo_header_rpicam384.txt"

SAMPLE_KEYS = {"total_bytes", "buffers", "by_exporter", "by_device", "by_process", "source"}


# --- bufinfo: every captured sample ---------------------------------------------------------------------


def test_every_bufinfo_fixture_is_covered() -> None:
    assert set(fixture_files("dmabuf")) == {OLD_FORMAT, PARTIAL, EMPTY, HEADER_ONLY}


def test_bufinfo_old_format_4_19() -> None:
    table = parse_bufinfo(fixture_text(OLD_FORMAT))
    assert table.columns == ["size", "flags", "mode", "count", "exp_name"]
    # Footer: "Total 4 objects, 33177600 bytes" — four 1920x1080x4 drm buffers of 08294400 bytes.
    assert (table.total_objects, table.total_bytes) == (4, 33177600)
    assert [b.size for b in table.buffers] == [8294400] * 4
    assert [b.count for b in table.buffers] == [9, 9, 5, 5]
    assert table.buffers[0] == DmaBuffer(
        size=8294400,
        flags=0,
        mode=0x80005,
        count=9,
        exporter="drm",
        inode=None,
        name=None,
        devices=["fec00000.v3d", "fec00000.v3d"],
    )
    assert [len(b.devices) for b in table.buffers] == [2, 2, 1, 1]
    assert table.bytes_total() == 33177600
    assert table.buffer_count() == 4
    assert table.bytes_by_exporter() == {"drm": 33177600}
    # A device attached twice to one buffer counts that buffer once.
    assert table.bytes_by_device() == {"fec00000.v3d": 33177600}


def test_bufinfo_partial_6x_with_name_column() -> None:
    table = parse_bufinfo(fixture_text(PARTIAL))
    # A middle chunk: no header, no footer.
    assert table.columns is None
    assert (table.total_objects, table.total_bytes) == (None, None)
    assert len(table.buffers) == 7
    assert [b.inode for b in table.buffers] == [80, 79, 78, 77, 76, 75, 38]
    assert all(b.name is None for b in table.buffers)  # "<none>"
    first, last = table.buffers[0], table.buffers[-1]
    assert (first.size, first.exporter, first.count, first.devices) == (
        622592,
        "videobuf2_dma_contig",
        9,
        ["gpu", "fec00000.v3d"],
    )
    assert (last.size, last.flags, last.mode, last.count, last.exporter, last.devices) == (
        1048576,
        2,
        0x80007,
        1,
        "vc_sm_cma",
        [],
    )
    # Totals from the rows: 6 x 622592 + 1048576.
    assert table.bytes_total() == 4784128
    assert table.buffer_count() == 7
    assert table.bytes_by_exporter() == {"videobuf2_dma_contig": 3735552, "vc_sm_cma": 1048576}
    assert table.bytes_by_device() == {"gpu": 3735552, "fec00000.v3d": 3735552}


def test_bufinfo_empty_6_1_followed_by_vcsm_state() -> None:
    table = parse_bufinfo(fixture_text(EMPTY))
    assert table.columns == ["size", "flags", "mode", "count", "exp_name", "ino", "name"]
    assert (table.total_objects, table.total_bytes) == (0, 0)
    # The vcsm-cma state after the footer ("VC-ServiceHandle …", "Total resource count") is not bufinfo.
    assert table.buffers == []
    assert table.bytes_by_exporter() == {}
    assert table.recognised


def test_bufinfo_stops_at_footer() -> None:
    # Two dumps pasted one after the other (as bug reports do): only the first table counts.
    text = fixture_text(EMPTY) + fixture_text(OLD_FORMAT)
    table = parse_bufinfo(text)
    assert (table.total_objects, table.total_bytes, table.buffers) == (0, 0, [])


def test_bufinfo_header_only_5x() -> None:
    table = parse_bufinfo(fixture_text(HEADER_ONLY))
    assert table.columns == ["size", "flags", "mode", "count", "exp_name", "ino"]
    assert table.buffers == []
    assert table.total_bytes is None
    assert table.bytes_total() == 0
    assert table.recognised


def test_bufinfo_5x_rows_from_kernel_format() -> None:
    # No captured 5.4-5.15 rows exist (fixtures README "Gaps"); built from dma-buf.c's format
    # "%08zu\t%08x\t%08x\t%08ld\t%s\t%08lu\t%s\n" where an unnamed buffer prints "" (row ends in a TAB).
    text = (
        "\nDma-buf Objects:\n"
        "size    \tflags   \tmode    \tcount   \texp_name\tino     \n"
        "00065536\t00000002\t00080007\t00000003\tlinux,cma\t00000112\tls_grid\n"
        "\tAttached Devices:\n"
        "\tbcm2835-isp\n"
        "Total 1 devices attached\n"
        "\n"
        "00622592\t00000000\t00080005\t00000004\tvideobuf2_dma_contig\t00000113\t\n"
        "\tExclusive fence: drm_sched v3d_render signalled\n"
        "\tAttached Devices:\n"
        "Total 0 devices attached\n"
        "\n"
        "\nTotal 2 objects, 688128 bytes\n"
    )
    table = parse_bufinfo(text)
    assert [(b.exporter, b.inode, b.name, b.devices) for b in table.buffers] == [
        ("linux,cma", 112, "ls_grid", ["bcm2835-isp"]),
        ("videobuf2_dma_contig", 113, None, []),
    ]
    assert table.bytes_by_device() == {"bcm2835-isp": 65536}
    assert (table.total_objects, table.total_bytes) == (2, 688128)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage\n",
        "\x00\xff",
        "Total objects\n",
        "size\n",
        "123\tzz\t1\t1\tx\n",
        "\tAttached Devices:\n\tgpu\n",
    ],
)
def test_bufinfo_garbage_never_raises(text: str) -> None:
    table = parse_bufinfo(text)
    assert table.buffers == []
    assert table.total_bytes is None


# --- fdinfo ----------------------------------------------------------------------------------------------
# No captured dma-buf fdinfo from a Pi exists (fixtures README "Gaps"). Test input follows the kernel's
# format strings: fs/proc/fd.c seq_show "pos:\t%lli\nflags:\t0%o\nmnt_id:\t%i\nino:\t%lu\n", then
# drivers/dma-buf/dma-buf.c dma_buf_show_fdinfo "size:\t%zu\ncount:\t%ld\nexp_name:\t%s\n" and, when the
# buffer has a name, "name:\t%s\n".


def fdinfo_text(
    ino: int | None, size: int | None, exporter: str, name: str | None = None, count: int = 1
) -> str:
    text = "pos:\t0\nflags:\t02000002\nmnt_id:\t15\n"
    if ino is not None:
        text += f"ino:\t{ino}\n"
    if size is not None:
        text += f"size:\t{size}\ncount:\t{count}\nexp_name:\t{exporter}\n"
    if name is not None:
        text += f"name:\t{name}\n"
    return text


def test_parse_fdinfo_from_kernel_format() -> None:
    assert parse_fdinfo(fdinfo_text(112, 65536, "linux,cma", "ls_grid", 2)) == DmabufFdinfo(
        size=65536,
        count=2,
        exporter="linux,cma",
        name="ls_grid",
        inode=112,
        flags=0o2000002,
        pos=0,
        mnt_id=15,
    )
    unnamed = parse_fdinfo(fdinfo_text(80, 622592, "videobuf2_dma_contig"))
    assert (unnamed.size, unnamed.exporter, unnamed.name, unnamed.inode) == (
        622592,
        "videobuf2_dma_contig",
        None,
        80,
    )


def test_parse_fdinfo_garbage_and_non_dmabuf() -> None:
    assert parse_fdinfo("") == DmabufFdinfo()
    assert parse_fdinfo("size:\tbig\ncount\nino: -x\n\x00") == DmabufFdinfo()
    # A pre-5.3 kernel: only the generic lines.
    generic = parse_fdinfo("pos:\t0\nflags:\t02\nmnt_id:\t11\n")
    assert (generic.size, generic.flags, generic.mnt_id) == (None, 2, 11)


# --- synthetic /proc tree ------------------------------------------------------------------------------


def add_process(
    tree: FixtureTree, pid: int, comm: str | None, fds: dict[int, tuple[str, str | None]]
) -> None:
    """A /proc/<pid> with ``comm`` and fd symlinks (target, fdinfo text or None for a missing fdinfo)."""
    base = tree.base / "proc" / str(pid)
    (base / "fd").mkdir(parents=True)
    (base / "fdinfo").mkdir()
    if comm is not None:
        (base / "comm").write_text(comm + "\n")
    for fd, (target, info) in fds.items():
        os.symlink(target, base / "fd" / str(fd))
        if info is not None:
            (base / "fdinfo" / str(fd)).write_text(info)


@pytest.fixture
def deny(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], None]]:
    """Make opening/listing given paths fail with EACCES. The tests run as root, where chmod does not
    deny anything, so the two os calls the scanner uses are wrapped for those paths only."""
    denied: set[str] = set()
    real_scandir, real_open = os.scandir, os.open

    def check(path: Any) -> None:
        if str(path) in denied:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))

    def fake_scandir(path: Any = ".") -> Any:
        check(path)
        return real_scandir(path)

    def fake_open(path: Any, *args: Any, **kwargs: Any) -> int:
        check(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "scandir", fake_scandir)
    monkeypatch.setattr(os, "open", fake_open)
    yield lambda path: denied.add(str(path))


VB2 = "videobuf2_dma_contig"


def build_proc(tree: FixtureTree, deny: Callable[[Path], None]) -> None:
    tree.write("proc/meminfo", "MemTotal: 1 kB\n")  # non-pid entries are ignored
    os.symlink("100", tree.base / "proc" / "self")
    add_process(
        tree,
        100,
        "rpicam-vid",
        {
            0: ("/dev/null", None),
            10: ("/dmabuf:", fdinfo_text(80, 622592, VB2)),
            11: ("/dmabuf:", fdinfo_text(80, 622592, VB2)),  # dup() of fd 10: same buffer
            12: ("/dmabuf:ls_grid", fdinfo_text(81, 65536, "linux,cma", "ls_grid")),
            13: ("/dmabuf:", fdinfo_text(38, 1048576, "vc_sm_cma")),
            14: ("socket:[4242]", None),
        },
    )
    add_process(tree, 200, "ffmpeg", {5: ("/dmabuf:", fdinfo_text(80, 622592, VB2))})  # shares inode 80
    add_process(tree, 300, "Xorg", {3: ("/dmabuf:", fdinfo_text(500, 8294400, "drm"))})
    deny(tree.base / "proc/300/fd")  # another user's process
    add_process(tree, 400, "rpicam-vid", {7: ("/dmabuf:", fdinfo_text(90, 622592, VB2))})
    (tree.base / "proc/500").mkdir()  # exited between listing /proc and opening its fd directory
    add_process(tree, 600, "gone", {3: ("/dmabuf:", None)})  # fd closed before its fdinfo was read
    add_process(tree, 700, "secret", {4: ("/dmabuf:", fdinfo_text(95, 4096, "system"))})
    deny(tree.base / "proc/700/fdinfo/4")
    add_process(tree, 800, None, {3: ("/dmabuf:", fdinfo_text(96, 8192, "system"))})  # exited before comm


def test_scan_processes(tree: FixtureTree, deny: Callable[[Path], None]) -> None:
    build_proc(tree, deny)
    scan = scan_processes(Root(tree.base))
    # rpicam-vid 100: 622592 (inode 80 once) + 65536 + 1048576; rpicam-vid 400: 622592 → summed by comm.
    assert scan.by_process == {"rpicam-vid": 2359296, "ffmpeg": 622592}
    # Across processes each buffer once: inodes 80, 81, 38, 90.
    assert sorted(scan.buffers) == [38, 80, 81, 90]
    assert scan.bytes_total() == 622592 + 65536 + 1048576 + 622592
    assert scan.bytes_by_exporter() == {VB2: 1245184, "linux,cma": 65536, "vc_sm_cma": 1048576}
    assert scan.processes_denied == 1  # 300
    assert scan.processes_vanished == 2  # 500, 800
    assert scan.fds_unreadable == 2  # 600 (gone), 700 (EACCES)
    assert scan.processes == 6  # 100, 200, 400, 600, 700, 800


def test_scan_old_kernels(tree: FixtureTree) -> None:
    # Before 5.3: "anon_inode:dmabuf" links and only generic fdinfo lines, so no size to count.
    add_process(tree, 10, "old", {3: ("anon_inode:dmabuf", "pos:\t0\nflags:\t02\nmnt_id:\t11\n")})
    # A kernel whose fdinfo has size but no "ino:" line: without an inode each fd counts on its own.
    add_process(
        tree,
        11,
        "noino",
        {
            3: ("/dmabuf:", fdinfo_text(None, 4096, "system")),
            4: ("/dmabuf:", fdinfo_text(None, 4096, "system")),
        },
    )
    scan = scan_processes(Root(tree.base))
    assert scan.by_process == {"noino": 8192}
    assert scan.fds_unreadable == 1
    assert scan.bytes_total() == 8192


def test_scan_without_proc_raises_oserror(tree: FixtureTree) -> None:
    with pytest.raises(FileNotFoundError):
        scan_processes(Root(tree.base))


# --- reader ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "total", "count", "by_exporter", "by_device"),
    [
        (OLD_FORMAT, 33177600, 4, {"drm": 33177600}, {"fec00000.v3d": 33177600}),
        (
            PARTIAL,
            4784128,
            7,
            {VB2: 3735552, "vc_sm_cma": 1048576},
            {"gpu": 3735552, "fec00000.v3d": 3735552},
        ),
        (EMPTY, 0, 0, {}, {}),
        (HEADER_ONLY, 0, 0, {}, {}),
    ],
)
def test_reader_debugfs(
    tree: FixtureTree,
    fixture: str,
    total: int,
    count: int,
    by_exporter: dict[str, int],
    by_device: dict[str, int],
) -> None:
    tree.write(BUFINFO, fixture_text(fixture))
    add_process(tree, 100, "rpicam-vid", {10: ("/dmabuf:", fdinfo_text(80, 622592, VB2))})
    gaps = Gaps()
    assert DmabufReader(Root(tree.base)).sample(gaps, 0.0) == {
        "dmabuf": {
            "total_bytes": total,
            "buffers": count,
            "by_exporter": by_exporter,
            "by_device": by_device,
            "by_process": {"rpicam-vid": 622592},
            "source": "debugfs",
        }
    }
    assert gaps.reasons == {}


def test_reader_debugfs_without_proc(tree: FixtureTree) -> None:
    tree.write(BUFINFO, fixture_text(OLD_FORMAT))
    gaps = Gaps()
    sample = DmabufReader(Root(tree.base)).sample(gaps, 0.0)["dmabuf"]
    assert sample["source"] == "debugfs"
    assert sample["total_bytes"] == 33177600
    assert sample["by_process"] is None
    assert "/proc not found" in gaps.reasons["dmabuf.by_process"]


def test_reader_permission_denied_debugfs_falls_back_to_fdinfo(
    tree: FixtureTree, deny: Callable[[Path], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    build_proc(tree, deny)
    tree.write(BUFINFO, fixture_text(OLD_FORMAT))
    bufinfo_path = str(tree.base / BUFINFO)
    real_read_text = Root.read_text

    # The normal non-root case: /sys/kernel/debug is mode 0700 root.
    def fake_read_text(self: Root, relative: str) -> str:
        if str(self.path(relative)) == bufinfo_path:
            raise PermissionError(errno.EACCES, "Permission denied", bufinfo_path)
        return real_read_text(self, relative)

    monkeypatch.setattr(Root, "read_text", fake_read_text)
    gaps = Gaps()
    sample = DmabufReader(Root(tree.base)).sample(gaps, 0.0)["dmabuf"]
    assert sample == {
        "total_bytes": 2359296,
        "buffers": 4,
        "by_exporter": {VB2: 1245184, "linux,cma": 65536, "vc_sm_cma": 1048576},
        "by_device": None,
        "by_process": {"rpicam-vid": 2359296, "ffmpeg": 622592},
        "source": "fdinfo",
    }
    reason = gaps.reasons["dmabuf.by_device"]
    assert "/sys/kernel/debug/dma_buf/bufinfo: permission denied" in reason
    assert "debugfs" in reason
    assert set(gaps.reasons) == {"dmabuf.by_device"}


def test_reader_garbage_bufinfo_falls_back(tree: FixtureTree) -> None:
    tree.write(BUFINFO, "\x00\xffnot a table\n")
    add_process(tree, 100, "rpicam-vid", {10: ("/dmabuf:", fdinfo_text(80, 622592, VB2))})
    gaps = Gaps()
    sample = DmabufReader(Root(tree.base)).sample(gaps, 0.0)["dmabuf"]
    assert (sample["source"], sample["total_bytes"], sample["buffers"]) == ("fdinfo", 622592, 1)
    assert "unexpected format" in gaps.reasons["dmabuf.by_device"]


def test_reader_nothing_available(tree: FixtureTree) -> None:
    gaps = Gaps()
    sample = DmabufReader(Root(tree.base)).sample(gaps, 0.0)
    assert sample == {"dmabuf": dict.fromkeys(SAMPLE_KEYS)}
    for key in SAMPLE_KEYS:
        assert f"dmabuf.{key}" in gaps.reasons
    assert "bufinfo not found" in gaps.reasons["dmabuf.total_bytes"]
    assert "/proc not found" in gaps.reasons["dmabuf.total_bytes"]


def test_reader_on_this_machine_never_raises() -> None:
    # Real /: no dma_buf in this machine's debugfs, and a real /proc to walk.
    gaps = Gaps()
    sample = DmabufReader(Root(Path("/"))).sample(gaps, 0.0)["dmabuf"]
    assert set(sample) == SAMPLE_KEYS
    if os.access("/sys/kernel/debug/dma_buf/bufinfo", os.R_OK):
        assert sample["source"] == "debugfs"
    else:
        assert sample["source"] == "fdinfo"
        assert sample["by_device"] is None
    assert isinstance(sample["by_process"], dict)


def test_process_scan_is_rate_limited(tree: FixtureTree) -> None:
    add_process(tree, 100, "rpicam-vid", {10: ("/dmabuf:", fdinfo_text(80, 622592, VB2))})
    reader = DmabufReader(Root(tree.base), process_scan_interval_s=30.0)
    assert reader.sample(Gaps(), 100.0)["dmabuf"]["by_process"] == {"rpicam-vid": 622592}
    add_process(tree, 200, "ffmpeg", {5: ("/dmabuf:", fdinfo_text(81, 4096, "system"))})
    # 29 s later: the cached scan, the new process is not seen yet.
    cached = reader.sample(Gaps(), 129.0)["dmabuf"]
    assert cached["by_process"] == {"rpicam-vid": 622592}
    assert cached["total_bytes"] == 622592
    # 30 s after the first scan: walked again.
    fresh = reader.sample(Gaps(), 130.0)["dmabuf"]
    assert fresh["by_process"] == {"rpicam-vid": 622592, "ffmpeg": 4096}
    assert fresh["total_bytes"] == 626688


def test_debugfs_is_read_every_sample(tree: FixtureTree) -> None:
    tree.write(BUFINFO, fixture_text(EMPTY))
    reader = DmabufReader(Root(tree.base))
    assert reader.sample(Gaps(), 0.0)["dmabuf"]["total_bytes"] == 0
    tree.write(BUFINFO, fixture_text(OLD_FORMAT))
    assert reader.sample(Gaps(), 1.0)["dmabuf"]["total_bytes"] == 33177600


def test_background_rescan_serves_the_previous_result_until_the_new_one_is_ready(tree: FixtureTree) -> None:
    # The first scan is synchronous (the first sample has data); later ones run in a worker thread and
    # are picked up by the next sample, so the event loop never waits for a walk over every process.
    add_process(tree, 100, "rpicam-vid", {10: ("/dmabuf:", fdinfo_text(11, 4096, VB2))})
    reader = DmabufReader(Root(tree.base), process_scan_interval_s=10.0, background=True)
    try:
        assert reader.process_scan(0.0).by_process == {"rpicam-vid": 4096}  # type: ignore[union-attr]
        add_process(tree, 101, "ffmpeg", {5: ("/dmabuf:", fdinfo_text(12, 8192, "system"))})
        first = reader.process_scan(10.0)  # due: submitted to the worker; the previous result is served
        assert first is not None and "ffmpeg" not in first.by_process
        assert reader._pending is not None
        reader._pending.result(timeout=5)
        assert reader.process_scan(10.5).by_process == {"rpicam-vid": 4096, "ffmpeg": 8192}  # type: ignore[union-attr]
    finally:
        reader.close()
