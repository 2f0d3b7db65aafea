"""Before a (re)start: is the device there, is the RTSP server listening, is there CMA for the camera?

Each check answers "can this start succeed?" cheaply, so the supervisor can wait for the right thing
(a device, the server, memory) with a clear message instead of spawning a doomed publisher. A check
that cannot decide (unreadable file, odd URL field) lets the start go ahead: the publisher itself is
the final judge, and :mod:`.causes` names what went wrong. :func:`preflight` never raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any
from urllib.parse import urlsplit

from pi_stream_agent.rootfs import Root
from pi_stream_agent.streams.model import CmaReader, ExitCause, PipelineSpec, PreflightResult

# Default RTSP ports when the URL names none: 554 (RFC 2326), 322 for RTSP over TLS (RFC 7826).
_DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322}

_CAMERA_PROGRAMS = frozenset({"rpicam-vid", "libcamera-vid"})

# --- CMA estimate for rpicam-vid ------------------------------------------------------------------
# A floor: the buffers rpicam-vid itself allocates from the dma-heap, which is CMA on Pi 0-4
# (vidbuf_cached → linux,cma; rpicam-apps core/dma_heaps.cpp). From rpicam-apps:
#   core/rpicam_app.cpp ConfigureVideo(): the YUV420 video stream gets ``bufferCount = 6`` and the raw
#   sensor stream the same count; both are allocated in setupCapture() at the stream's frame size.
#   encoder/h264_encoder.cpp: the hardware encoder maps NUM_CAPTURE_BUFFERS = 12 bitstream buffers of
#   ``sizeimage = 512 << 10`` bytes.
# The raw frames are at least the output size in practice (mode selection prefers a sensor mode no
# smaller than the output) at 1.25-1.5 bytes per pixel (10/12-bit packed), so 1.5 bytes per pixel
# (the YUV420 size) is used for both streams.
# Measured (fixtures README §1, rpicam-apps#158, CM4 + IMX477, 4096x3040 --codec yuv420): libcamera-vid
# took 366 MB of CMA; this floor gives 224 MB for that mode. The difference is libcamera's own ISP and
# metadata buffers, which depend on the sensor and are not counted: a start that fails this check
# cannot succeed, one that passes may still fail (and is then classified as BUFFER_ALLOCATION).
# Note CmaFree also excludes CMA pages lent to movable allocations (page cache) that the kernel can
# migrate away on demand, another reason to compare against a floor, not a generous estimate.
VIDEO_BUFFERS = 6
RAW_BUFFERS = 6
YUV420_BYTES_PER_PIXEL = 1.5
HW_ENCODER_BITSTREAM_BYTES = 12 * (512 << 10)

_MIB = 1024 * 1024


def camera_cma_need_bytes(width: int, height: int, *, hardware_encoder: bool) -> int:
    """The least CMA an rpicam-vid start at ``width``x``height`` allocates (see the notes above)."""
    frame = int(width * height * YUV420_BYTES_PER_PIXEL)
    need = (VIDEO_BUFFERS + RAW_BUFFERS) * frame
    if hardware_encoder:
        need += HW_ENCODER_BITSTREAM_BYTES
    return need


def _is_camera_pipeline(spec: PipelineSpec) -> bool:
    """A CSI source: the pipeline runs rpicam-vid (or its old name)."""
    for process in spec.processes:
        program = os.path.basename(process.argv[0]) if process.argv else ""
        if process.name in _CAMERA_PROGRAMS or program in _CAMERA_PROGRAMS:
            return True
    return False


def _mib(value: int) -> str:
    return f"{value / _MIB:.0f} MiB"


def _check_device(spec: PipelineSpec, root: Root) -> PreflightResult | None:
    if not spec.device_path:
        return None
    try:
        present = os.path.exists(root.path(spec.device_path))  # follows /dev/v4l/by-id links
    except (OSError, ValueError):
        return None  # cannot tell: let the start decide
    if present:
        return None
    return PreflightResult(
        ok=False,
        cause=ExitCause.DEVICE_GONE,
        message=f"{spec.device_path} is not present (unplugged?); the stream starts when it returns",
    )


def _check_cma(
    spec: PipelineSpec, cma: CmaReader, board: dict[str, Any], width: int, height: int
) -> tuple[PreflightResult | None, int | None]:
    """A failure (or None) and the CmaFree read, if the check applies at all."""
    # Only CSI cameras on boards whose camera buffers come from CMA (Pi 0-4); on a Pi 5 they come
    # from the system heap, and USB cards (uvcvideo) use vmalloc'ed buffers.
    if board.get("camera_buffers_from_cma") is not True or not _is_camera_pipeline(spec):
        return None, None
    free, total = cma()
    if free is None:
        return None, None
    need = camera_cma_need_bytes(width, height, hardware_encoder=spec.encoding == "hardware")
    if need <= free:
        return None, free
    if total is not None and need > total:
        advice = (
            f"more than the whole CMA area ({_mib(total)}): lower the resolution or enlarge CMA "
            "(dtoverlay=vc4-kms-v3d,cma-NNN in config.txt)"
        )
    else:
        advice = "other camera or codec users hold the rest; it is retried when memory frees up"
    message = (
        f"not enough free CMA for a {width}x{height} camera stream: at least {_mib(need)} needed, "
        f"{_mib(free)} free ({advice})"
    )
    failed = PreflightResult(
        ok=False, cause=ExitCause.BUFFER_ALLOCATION, message=message, cma_free_bytes=free
    )
    return failed, free


def _publish_address(url: str) -> tuple[str, int]:
    """Host and port of an RTSP URL; raises ValueError when there is no usable host or port."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise ValueError("no host")
    port = parts.port  # raises ValueError for a port out of range or not a number
    if port is None:
        port = _DEFAULT_PORTS.get(parts.scheme.lower(), _DEFAULT_PORTS["rtsp"])
    return host, port


async def check_rtsp(url: str, timeout_s: float) -> PreflightResult | None:
    # A TCP connect is right for both transports: an RTSP server takes its control connection (the
    # ANNOUNCE/SETUP/RECORD exchange) over TCP even when the media then flows over UDP.
    try:
        host, port = _publish_address(url)
    except ValueError as exc:
        # Never echo the URL itself: it may carry the publish password.
        return PreflightResult(
            ok=False, cause=ExitCause.RTSP_UNREACHABLE, message=f"the RTSP publish URL is not usable ({exc})"
        )
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except TimeoutError:
        reason = f"no answer within {timeout_s:g} s"
    except ConnectionRefusedError:
        reason = "connection refused: is MediaMTX running?"
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
    else:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), timeout_s)
        return None
    return PreflightResult(
        ok=False,
        cause=ExitCause.RTSP_UNREACHABLE,
        message=f"the RTSP server at {where} is not reachable ({reason})",
    )


async def preflight(
    spec: PipelineSpec,
    *,
    rtsp_publish_url: str,
    root: Root,
    cma: CmaReader,
    board: dict[str, Any],
    width: int,
    height: int,
    timeout_s: float = 1.0,
    check_device: bool = True,
) -> PreflightResult:
    """Whether starting ``spec`` can succeed now; the first failing check explains why not.

    Order: device (a missing card is waited for, nothing else matters), CMA (local and cheap), RTSP
    server (a network round trip, bounded by ``timeout_s``). ``board`` is the agent's board info
    (``camera_buffers_from_cma``, ``soc``); ``cma`` reads (CmaFree, CmaTotal) — the telemetry's reader,
    wired by the agent. ``cma_free_bytes`` is set whenever CmaFree was read.
    """
    cma_free: int | None = None
    try:
        if check_device:
            failed = _check_device(spec, root)
            if failed is not None:
                return failed
        failed, cma_free = _check_cma(spec, cma, board, width, height)
        if failed is not None:
            return failed
        failed = await check_rtsp(rtsp_publish_url, timeout_s)
        if failed is not None:
            return PreflightResult(
                ok=False, cause=failed.cause, message=failed.message, cma_free_bytes=cma_free
            )
    except Exception as exc:  # noqa: BLE001 - a bug here must not stop a stream from starting
        return PreflightResult(ok=True, message=f"pre-flight check skipped: {exc!r}", cma_free_bytes=cma_free)
    return PreflightResult(ok=True, cma_free_bytes=cma_free)
