"""preflight on fixture trees built from real /proc/meminfo captures, with real sockets on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pi_stream_agent.rootfs import Root
from pi_stream_agent.streams.model import ExitCause, PipelineSpec, PreflightResult, ProcessSpec
from pi_stream_agent.streams.preflight import camera_cma_need_bytes, preflight
from pi_stream_agent.telemetry.meminfo import read_cma
from tests.agent.helpers import FixtureTree, fixture_text
from tests.agent.rtsp import RtspServer, free_port


async def check(spec: PipelineSpec, *, root: Root, **options: Any) -> PreflightResult:
    """The pre-flight as the agent wires it: CMA read through the telemetry's reader of the same root."""
    return await preflight(spec, root=root, cma=lambda: read_cma(root), **options)


PI4_BOARD: dict[str, Any] = {"camera_buffers_from_cma": True, "soc": "BCM2711"}
ZERO_BOARD: dict[str, Any] = {"camera_buffers_from_cma": True, "soc": "BCM2835"}
PI5_BOARD: dict[str, Any] = {"camera_buffers_from_cma": False, "soc": "BCM2712"}

NEAR_FULL = "meminfo/pi_512mb_hqcam_picamera2_46_cmafree39252.txt"  # CmaTotal 262144 kB, CmaFree 39252 kB
KIB = 1024


def csi_spec(url: str, *, encoding: str = "hardware") -> PipelineSpec:
    # Shaped like the rpicam-vid | ffmpeg pipe of fixtures/pi/streaming/rpicam_vid_low_latency_…txt.
    return PipelineSpec(
        stream_id="garden",
        processes=(
            ProcessSpec(
                "rpicam-vid", ("rpicam-vid", "-t", "0", "-n", "--inline", "--codec", "h264", "-o", "-")
            ),
            ProcessSpec("ffmpeg", ("ffmpeg", "-i", "-", "-c", "copy", "-f", "rtsp", url)),
        ),
        encoding=encoding,  # type: ignore[arg-type]
        main_url=url,
    )


def v4l2_spec(url: str, device: str = "/dev/video0") -> PipelineSpec:
    # Shaped like fixtures/pi/streaming/ffmpeg_h264_v4l2m2m_usb_webcam_rtsp_pi3b_rpiffmpeg41.txt.
    return PipelineSpec(
        stream_id="hdmi",
        processes=(
            ProcessSpec(
                "ffmpeg",
                (
                    "ffmpeg",
                    "-input_format",
                    "yuyv422",
                    "-f",
                    "v4l2",
                    "-i",
                    device,
                    "-c:v",
                    "h264_v4l2m2m",
                    "-f",
                    "rtsp",
                    url,
                ),
            ),
        ),
        encoding="hardware",
        main_url=url,
        device_path=device,
    )


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP port on loopback that accepts connections (as an RTSP server's control port does)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield int(server.getsockname()[1])
    finally:
        server.close()


def url_for(port: int) -> str:
    return f"rtsp://publisher:s3cret@127.0.0.1:{port}"


def with_meminfo(tree: FixtureTree, relative: str) -> Root:
    tree.write("proc/meminfo", fixture_text(relative))
    return Root(tree.base)


# ---------------------------------------------------------------------------------------- CMA


def test_need_floor_numbers() -> None:
    # 6 YUV420 + 6 raw frames at 1.5 bytes per pixel, plus 12 x 512 KiB of H.264 bitstream buffers.
    assert camera_cma_need_bytes(640, 480, hardware_encoder=True) == 12 * 460_800 + 6_291_456
    assert camera_cma_need_bytes(4056, 3040, hardware_encoder=True) == 228_235_776
    assert camera_cma_need_bytes(1920, 1080, hardware_encoder=False) == 37_324_800
    # rpicam-apps#158 measured 366 MB for libcamera-vid 4096x3040 --codec yuv420: the floor stays below.
    assert camera_cma_need_bytes(4096, 3040, hardware_encoder=False) == 224_133_120 < 366_000_000


async def test_near_full_cma_refuses_full_resolution(tree: FixtureTree, listener: int) -> None:
    # picamera2#46: on this 512 MB Pi the HQ camera failed to start at full resolution.
    url = url_for(listener)
    result = await check(
        csi_spec(url),
        rtsp_publish_url=url,
        root=with_meminfo(tree, NEAR_FULL),
        board=PI4_BOARD,
        width=4056,
        height=3040,
    )
    assert result == PreflightResult(
        ok=False,
        cause=ExitCause.BUFFER_ALLOCATION,
        message=(
            "not enough free CMA for a 4056x3040 camera stream: at least 218 MiB needed, 38 MiB free "
            "(other camera or codec users hold the rest; it is retried when memory frees up)"
        ),
        cma_free_bytes=39252 * KIB,
    )


async def test_near_full_cma_still_fits_vga(tree: FixtureTree, listener: int) -> None:
    url = url_for(listener)
    result = await check(
        csi_spec(url),
        rtsp_publish_url=url,
        root=with_meminfo(tree, NEAR_FULL),
        board=PI4_BOARD,
        width=640,
        height=480,
    )
    assert result == PreflightResult(ok=True, cma_free_bytes=39252 * KIB)


async def test_full_cma_of_an_idle_pi4_is_plenty(tree: FixtureTree, listener: int) -> None:
    # picamera2#972: Pi 4B, 512 MiB CMA, 441276 kB free.
    url = url_for(listener)
    result = await check(
        csi_spec(url),
        rtsp_publish_url=url,
        root=with_meminfo(tree, "meminfo/pi4b_grep_cma_picamera2_972.txt"),
        board=PI4_BOARD,
        width=4056,
        height=3040,
    )
    assert result == PreflightResult(ok=True, cma_free_bytes=441276 * KIB)


async def test_1080p_fits_the_1gb_capture(tree: FixtureTree, listener: int) -> None:
    # rpicam-apps#384: 1 GB Pi with 62052 kB CMA free; 1080p needs about 42 MiB.
    url = url_for(listener)
    root = with_meminfo(tree, "meminfo/pi_1gb_arm64_rpicam384_cmafree62052.txt")
    ok = await check(csi_spec(url), rtsp_publish_url=url, root=root, board=PI4_BOARD, width=1920, height=1080)
    assert ok == PreflightResult(ok=True, cma_free_bytes=62052 * KIB)
    five_mp = await check(
        csi_spec(url), rtsp_publish_url=url, root=root, board=PI4_BOARD, width=2592, height=1944
    )
    assert five_mp.ok is False
    assert five_mp.cause is ExitCause.BUFFER_ALLOCATION


async def test_legacy_8mib_cma_is_too_small_for_any_camera_stream(tree: FixtureTree, listener: int) -> None:
    # 2017 Zero W with the pre-KMS 8 MiB CMA (108 kB free): even VGA needs more than all of it.
    url = url_for(listener)
    result = await check(
        csi_spec(url),
        rtsp_publish_url=url,
        root=with_meminfo(tree, "meminfo/pizerow_4.9_armv6l_cma8M_nearly_full_dphrpi100.txt"),
        board=ZERO_BOARD,
        width=640,
        height=480,
    )
    assert result.ok is False
    assert result.cause is ExitCause.BUFFER_ALLOCATION
    assert result.cma_free_bytes == 108 * KIB
    assert result.message == (
        "not enough free CMA for a 640x480 camera stream: at least 11 MiB needed, 0 MiB free "
        "(more than the whole CMA area (8 MiB): lower the resolution or enlarge CMA "
        "(dtoverlay=vc4-kms-v3d,cma-NNN in config.txt))"
    )


async def test_pi5_camera_buffers_do_not_come_from_cma(tree: FixtureTree, listener: int) -> None:
    # Same near-full CMA, but on a Pi 5 the camera allocates from the system heap: not checked.
    url = url_for(listener)
    result = await check(
        csi_spec(url, encoding="software"),
        rtsp_publish_url=url,
        root=with_meminfo(tree, NEAR_FULL),
        board=PI5_BOARD,
        width=4056,
        height=3040,
    )
    assert result == PreflightResult(ok=True, cma_free_bytes=None)


async def test_unknown_board_is_not_checked(tree: FixtureTree, listener: int) -> None:
    url = url_for(listener)
    board = {"camera_buffers_from_cma": None, "soc": None}
    result = await check(
        csi_spec(url),
        rtsp_publish_url=url,
        root=with_meminfo(tree, NEAR_FULL),
        board=board,
        width=4056,
        height=3040,
    )
    assert result == PreflightResult(ok=True)


async def test_usb_card_is_not_a_cma_camera(tree: FixtureTree, listener: int) -> None:
    url = url_for(listener)
    tree.write("dev/video0", "")
    result = await check(
        v4l2_spec(url),
        rtsp_publish_url=url,
        root=with_meminfo(tree, NEAR_FULL),
        board=PI4_BOARD,
        width=1920,
        height=1080,
    )
    assert result == PreflightResult(ok=True)


@pytest.mark.parametrize("content", [None, "", "CmaTotal: lots\nCmaFree: none\n", b"\xff\xfe\x00garbage"])
async def test_unreadable_meminfo_lets_the_start_go_ahead(
    tree: FixtureTree, listener: int, content: str | bytes | None
) -> None:
    if content is not None:
        tree.write("proc/meminfo", content)
    url = url_for(listener)
    result = await check(
        csi_spec(url), rtsp_publish_url=url, root=Root(tree.base), board=PI4_BOARD, width=4056, height=3040
    )
    assert result == PreflightResult(ok=True)


# -------------------------------------------------------------------------------------- device


async def test_device_present(tree: FixtureTree, listener: int) -> None:
    tree.write("dev/video0", "")
    url = url_for(listener)
    result = await check(
        v4l2_spec(url), rtsp_publish_url=url, root=Root(tree.base), board=PI4_BOARD, width=1920, height=1080
    )
    assert result.ok is True


async def test_device_absent_is_waited_for_before_anything_else(tree: FixtureTree) -> None:
    closed = url_for(free_port())  # the server is down too, but the missing card is what matters
    result = await check(
        v4l2_spec(closed),
        rtsp_publish_url=closed,
        root=Root(tree.base),
        board=PI4_BOARD,
        width=1920,
        height=1080,
    )
    assert result == PreflightResult(
        ok=False,
        cause=ExitCause.DEVICE_GONE,
        message="/dev/video0 is not present (unplugged?); the stream starts when it returns",
    )


async def test_stable_by_id_link_follows_the_card(tree: FixtureTree, listener: int) -> None:
    by_id = "/dev/v4l/by-id/usb-MACROSILICON_USB_Video-video-index0"
    tree.write("dev/video2", "")
    link = tree.base / by_id.lstrip("/")
    link.parent.mkdir(parents=True)
    os.symlink("../../video2", link)  # udev writes relative links
    url = url_for(listener)
    spec = v4l2_spec(url, device=by_id)
    ok = await check(
        spec, rtsp_publish_url=url, root=Root(tree.base), board=PI4_BOARD, width=1920, height=1080
    )
    assert ok.ok is True
    tree.remove("dev/video2")  # unplugged: the link dangles
    gone = await check(
        spec, rtsp_publish_url=url, root=Root(tree.base), board=PI4_BOARD, width=1920, height=1080
    )
    assert gone.cause is ExitCause.DEVICE_GONE
    assert gone.message is not None and gone.message.startswith(by_id)


async def test_device_check_can_be_skipped(tree: FixtureTree, listener: int) -> None:
    url = url_for(listener)
    result = await check(
        v4l2_spec(url),
        rtsp_publish_url=url,
        root=Root(tree.base),
        board=PI4_BOARD,
        width=1920,
        height=1080,
        check_device=False,
    )
    assert result.ok is True


# ---------------------------------------------------------------------------------------- RTSP


REFUSED = "(connection refused: is MediaMTX running?)"


async def test_rtsp_server_refusing(tree: FixtureTree) -> None:
    port = free_port()
    url = url_for(port)
    started = time.monotonic()
    result = await check(
        csi_spec(url),
        rtsp_publish_url=url,
        root=with_meminfo(tree, NEAR_FULL),
        board=PI4_BOARD,
        width=640,
        height=480,
    )
    assert time.monotonic() - started < 1.0
    assert result == PreflightResult(
        ok=False,
        cause=ExitCause.RTSP_UNREACHABLE,
        message=f"the RTSP server at 127.0.0.1:{port} is not reachable {REFUSED}",
        cma_free_bytes=39252 * KIB,  # read before the network check, and kept
    )
    assert "s3cret" not in (result.message or "")


async def test_rtsp_timeout_is_respected(tree: FixtureTree) -> None:
    # A listener whose accept queue is full: the kernel drops further SYNs, so connect() hangs.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = int(server.getsockname()[1])
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        await asyncio.sleep(0.1)
        url = url_for(port)
        started = time.monotonic()
        result = await check(
            csi_spec(url),
            rtsp_publish_url=url,
            root=Root(tree.base),
            board=PI5_BOARD,
            width=640,
            height=480,
            timeout_s=0.3,
        )
        elapsed = time.monotonic() - started
    finally:
        for filler in fillers:
            filler.close()
        server.close()
    assert 0.25 <= elapsed < 1.0
    assert result == PreflightResult(
        ok=False,
        cause=ExitCause.RTSP_UNREACHABLE,
        message=f"the RTSP server at 127.0.0.1:{port} is not reachable (no answer within 0.3 s)",
    )


async def test_udp_only_rtsp_server_answers_on_tcp(tree: FixtureTree, rtsp_server: RtspServer) -> None:
    # rtsp-server-perl takes media over UDP only, but its control connection is TCP like every RTSP server.
    url = rtsp_server.publish_base
    result = await check(
        csi_spec(url), rtsp_publish_url=url, root=Root(tree.base), board=PI5_BOARD, width=320, height=240
    )
    assert result == PreflightResult(ok=True)


async def test_default_rtsp_port_is_554(tree: FixtureTree) -> None:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 554)) == 0:
            pytest.skip("something listens on port 554 here")
    url = "rtsp://127.0.0.1/garden"
    result = await check(
        csi_spec(url), rtsp_publish_url=url, root=Root(tree.base), board=PI5_BOARD, width=640, height=480
    )
    assert result.cause is ExitCause.RTSP_UNREACHABLE
    assert result.message is not None and "127.0.0.1:554 " in result.message


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("rtsp://publisher:s3cret@127.0.0.1:99999/garden", "Port out of range 0-65535"),
        ("rtsp://publisher:s3cret@127.0.0.1:abc/garden", "Port could not be cast to integer value as 'abc'"),
        ("not a url", "no host"),
    ],
)
async def test_unusable_publish_url(tree: FixtureTree, url: str, reason: str) -> None:
    result = await check(
        csi_spec(url), rtsp_publish_url=url, root=Root(tree.base), board=PI5_BOARD, width=640, height=480
    )
    assert result == PreflightResult(
        ok=False, cause=ExitCause.RTSP_UNREACHABLE, message=f"the RTSP publish URL is not usable ({reason})"
    )
