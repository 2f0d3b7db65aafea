"""Publisher command lines: a :class:`~.model.StreamConfig` + :class:`~.model.PublishEnvironment` →
:class:`~.model.PipelineSpec` (argument lists only, never a shell), plus the RTSP URL helpers and
credential redaction for logs and the API.

Pipelines (stdout of each process feeds stdin of the next; the last one is always an ffmpeg that writes
``-progress`` blocks to its stdout, once a second):

``csi`` + hardware (Pi 0-4)
    ``rpicam-vid --codec h264 --inline --flush … --output -`` →
    ``ffmpeg -f h264 -i pipe:0 -c:v copy -f rtsp``.
    The VideoCore encoder does the work; ffmpeg only repackages into RTP.
``csi`` + software (Pi 5, which has no H.264 encoder, or when asked for)
    ``rpicam-vid --codec yuv420 --flush … --output -`` → ``ffmpeg -f rawvideo … -c:v libx264`` (ultrafast,
    zerolatency, no B-frames). Why this rather than rpicam-vid's own libav/libx264 path
    (``--codec libav --libav-format h264 --low-latency``):

    * ``--codec yuv420`` exists in every rpicam-vid build. The libav options do not exist in
      ``rpicam-apps-lite`` — the package Raspberry Pi OS *Lite* (the usual headless install) ships — where
      they fail with ``ERROR: *** unrecognised option '--libav-format' ***`` (raspberrypi/rpicam-apps#735),
      and there even ``--codec h264`` fails on a Pi 5 ("Unable to find an appropriate H.264 codec",
      encoder/encoder.cpp). ``--low-latency`` only arrived in December 2024 (rpicam-apps#751); without it
      rpicam's libx264 uses frame threads and a B-frame (600-850 ms reported, rpicam-apps#740).
    * ffmpeg then encodes exactly as the V4L2 and test pipelines do (same x264 options, GOP, bitrate cap),
      the setup reported at ~200 ms on a Pi 5 (fixtures ``streaming/pi5_mediamtx_libx264_zerolatency_*``).

    Costs: raw frames cross a pipe (1080p30 ≈ 93 MB/s, a memcpy on a Pi 5), and rpicam writes frames with
    their row padding, so ffmpeg is told the padded width and crops (see :func:`yuv420_stride`).
``csi`` substream
    The same ffmpeg takes a second output: decode, ``scale``/``fps``, encode, publish. The camera is opened
    once.
``v4l2``
    ``ffmpeg -f v4l2 -input_format … -i <device>`` → copy (MJPEG/H.264 pass-through) or encode
    (h264_v4l2m2m on Pi 0-4, libx264 elsewhere); substream as above.
``test``
    ``ffmpeg -re -f lavfi -i testsrc2=size=WxH:rate=F`` → encode; substream as above. ``testsrc2`` moves on
    its own, so no fonts (drawtext) are needed to see that frames flow.

A substream is always a second ``-map`` of the one input: ffmpeg decodes the input once and feeds each
output's filter chain (the same work as an explicit ``split`` filter, with simpler argument lists).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, urlsplit

from .model import (
    Encoding,
    PipelineSpec,
    ProcessSpec,
    PublishEnvironment,
    RtspSettings,
    StreamConfig,
    SubstreamConfig,
)


class PipelineError(ValueError):
    """The stream cannot be published as configured on this machine (the message names stream and field)."""


# ------------------------------------------------------------------------------------ rpicam-vid options


@dataclass(frozen=True)
class RpicamOption:
    """One rpicam-vid command-line option as its boost::program_options table declares it."""

    name: str  # long name, without the leading "--"
    short: str | None = None  # one-letter alias, without the "-"
    # False for boost ``implicit_value`` options (flags): given bare, or as ``--name=value``; they never
    # take the next argument as their value.
    needs_value: bool = True
    # Declared under ``#if LIBAV_PRESENT``: absent from rpicam-apps-lite (Raspberry Pi OS Lite's package).
    libav_only: bool = False


# Every option of rpicam-vid, verified against rpicam-apps' own option tables:
#   core/options.cpp @ 01fc37ec8b1fd713b79b72a6811058aadd9d2a80 (Options::Options(), common to all apps)
#   core/video_options.hpp @ 0043890f2f72c71e402aa171564f9f4a7e87bbf3 (VideoOptions, rpicam-vid only)
# and against real ``rpicam-vid --help`` output quoted in raspberrypi/rpicam-apps#775 (Zero 2 W, 2025:
# "-h [ --help ]", "--camera arg (=0)", "-v [ --verbose ]", "--mode", "--buffer-count", "--no-raw",
# "--autofocus-*") and real command lines (fixtures streaming/*: "-t 0 -n --inline -o -", "--codec yuv420",
# "--camera 0 --nopreview", "--level 4.2", "-b", "--low-latency", "--codec libav --libav-format mpegts").
# Options added to rpicam-apps after those revisions are missing here (the stand-in rejects them).
RPICAM_VID_OPTIONS: Final[tuple[RpicamOption, ...]] = (
    # core/options.cpp
    RpicamOption("help", "h", needs_value=False),
    RpicamOption("version", needs_value=False),
    RpicamOption("list-cameras", needs_value=False),
    RpicamOption("camera"),  # value<unsigned int>: an index, not a libcamera id
    RpicamOption("verbose", "v", needs_value=False),
    RpicamOption("config", "c", needs_value=False),
    RpicamOption("info-text"),
    RpicamOption("width"),
    RpicamOption("height"),
    RpicamOption("timeout", "t"),
    RpicamOption("output", "o"),
    RpicamOption("post-process-file"),
    RpicamOption("nopreview", "n", needs_value=False),
    RpicamOption("preview", "p"),
    RpicamOption("fullscreen", "f", needs_value=False),
    RpicamOption("qt-preview", needs_value=False),
    RpicamOption("hflip", needs_value=False),
    RpicamOption("vflip", needs_value=False),
    RpicamOption("rotation"),
    RpicamOption("roi"),
    RpicamOption("shutter"),
    RpicamOption("analoggain"),
    RpicamOption("gain"),
    RpicamOption("metering"),
    RpicamOption("exposure"),
    RpicamOption("ev"),
    RpicamOption("awb"),
    RpicamOption("awbgains"),
    RpicamOption("flush", needs_value=False),
    RpicamOption("wrap"),
    RpicamOption("brightness"),
    RpicamOption("contrast"),
    RpicamOption("saturation"),
    RpicamOption("sharpness"),
    RpicamOption("framerate"),
    RpicamOption("denoise"),
    RpicamOption("viewfinder-width"),
    RpicamOption("viewfinder-height"),
    RpicamOption("tuning-file"),
    RpicamOption("lores-width"),
    RpicamOption("lores-height"),
    RpicamOption("mode"),
    RpicamOption("viewfinder-mode"),
    RpicamOption("buffer-count"),
    RpicamOption("viewfinder-buffer-count"),
    RpicamOption("no-raw", needs_value=False),
    RpicamOption("autofocus-mode"),
    RpicamOption("autofocus-range"),
    RpicamOption("autofocus-speed"),
    RpicamOption("autofocus-window"),
    RpicamOption("lens-position"),
    RpicamOption("hdr", needs_value=False),
    RpicamOption("metadata"),
    RpicamOption("metadata-format"),
    RpicamOption("flicker-period"),
    # core/video_options.hpp
    RpicamOption("bitrate", "b"),
    RpicamOption("profile"),
    RpicamOption("level"),
    RpicamOption("intra", "g"),
    RpicamOption("inline", needs_value=False),
    RpicamOption("codec"),
    RpicamOption("save-pts"),
    RpicamOption("quality", "q"),
    RpicamOption("listen", "l", needs_value=False),
    RpicamOption("keypress", "k", needs_value=False),
    RpicamOption("signal", "s", needs_value=False),
    RpicamOption("initial", "i"),
    RpicamOption("split", needs_value=False),
    RpicamOption("segment"),
    RpicamOption("circular", needs_value=False),
    RpicamOption("frames"),
    RpicamOption("libav-video-codec", libav_only=True),
    RpicamOption("libav-video-codec-opts", libav_only=True),
    RpicamOption("libav-format", libav_only=True),
    RpicamOption("libav-audio", needs_value=False, libav_only=True),
    RpicamOption("audio-codec", libav_only=True),
    RpicamOption("audio-source", libav_only=True),
    RpicamOption("audio-device", libav_only=True),
    RpicamOption("audio-channels", libav_only=True),
    RpicamOption("audio-bitrate", libav_only=True),
    RpicamOption("audio-samplerate", libav_only=True),
    RpicamOption("alsa-period-size", libav_only=True),
    RpicamOption("av-sync", libav_only=True),
    RpicamOption("low-latency", needs_value=False, libav_only=True),
    RpicamOption("sync"),
)

# The options build_pipeline writes. None is libav-only, so rpicam-apps-lite runs every pipeline.
RPICAM_OPTIONS_USED: Final[frozenset[str]] = frozenset(
    {
        "camera",
        "timeout",
        "nopreview",
        "codec",
        "inline",
        "flush",
        "width",
        "height",
        "framerate",
        "bitrate",
        "intra",
        "level",
        "output",
    }
)

# lavfi sources that take ``size`` and ``rate``; a closed list so a config value cannot smuggle other
# filters (``movie=``, ``amovie=`` read files) into the filter graph.
TEST_PATTERNS: Final[frozenset[str]] = frozenset(
    {
        "testsrc",
        "testsrc2",
        "smptebars",
        "smptehdbars",
        "rgbtestsrc",
        "yuvtestsrc",
        "pal75bars",
        "pal100bars",
        "mandelbrot",
        "life",
        "cellauto",
    }
)
DEFAULT_TEST_PATTERN: Final = "testsrc2"

# H.264 level limits (ITU-T H.264 table A-1): level 4/4.1 allow 245 760 macroblocks/s, 4.2 allows
# 522 240; all three allow 8 192 macroblocks per frame (1920x1080 is 8 160). The VideoCore encoder
# takes "4", "4.1" or "4.2" (encoder/h264_encoder.cpp), so we only ever ask for 4.2 when 4.1 is too small.
_MBPS_LEVEL_41: Final = 245_760
_MBPS_LEVEL_42: Final = 522_240
_MAX_FRAME_MBS: Final = 8_192

_V4L2_COPYABLE: Final = frozenset({"mjpeg", "h264"})


# ------------------------------------------------------------------------------------------ small helpers


def _num(value: float) -> str:
    """A number as command lines want it: ``15`` not ``15.0``, ``29.97`` not ``29.970000000000002``."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3f}".rstrip("0").rstrip(".")


def keyframe_interval_frames(fps: float, interval_s: float) -> int:
    """The GOP length in frames for a keyframe every ``interval_s`` seconds (at least 1)."""
    return max(1, round(fps * interval_s))


def yuv420_stride(width: int, soc: str | None, hardware_h264_encoder: bool) -> int:
    """The row length (bytes of Y) in which rpicam-vid ``--codec yuv420`` writes frames of ``width``.

    rpicam-vid writes libcamera's buffers as they are, padding included, one contiguous Y/U/V frame with
    chroma rows half the luma stride. VC4 (Pi 0-4) aligns the YUV420 stride to 64 bytes
    (raspberrypi/linux#4419; 780 px come out 832 wide, rpicam-apps#188). The Pi 5's PiSP aligns the chroma
    stride to 64 and doubles it for luma (libcamera pipeline/rpi/pisp computeOptimalStride): 128-byte rows.
    """
    pi5 = soc == "BCM2712" or (soc is None and not hardware_h264_encoder)
    align = 128 if pi5 else 64
    return (width + align - 1) // align * align


def _macroblocks(width: int, height: int) -> int:
    return math.ceil(width / 16) * math.ceil(height / 16)


# ------------------------------------------------------------------------------------------------- URLs


def _join(base: str, path: str) -> str:
    _split_authority(base)  # rejects anything but rtsp:// and rtsps://
    return base.rstrip("/") + "/" + path.lstrip("/")


def _split_authority(url: str) -> tuple[str, str, str, str]:
    """``scheme://userinfo@hostport/rest`` → (scheme, userinfo, hostport, rest); userinfo may be empty."""
    scheme, sep, remainder = url.partition("://")
    if not sep or scheme.lower() not in ("rtsp", "rtsps"):
        raise PipelineError(f"{url!r} is not an rtsp:// or rtsps:// URL")
    authority, slash, rest = remainder.partition("/")
    userinfo, at, hostport = authority.rpartition("@")
    return scheme, userinfo if at else "", hostport, slash + rest


def _with_credentials(url: str, username: str | None, password: str | None) -> str:
    """``url`` with ``user:password@`` (percent-encoded) replacing any userinfo; unchanged without both."""
    if username is None and password is None:
        return url
    scheme, _, hostport, rest = _split_authority(url)
    userinfo = quote(username or "", safe="")
    if password is not None:
        userinfo += ":" + quote(password, safe="")
    return f"{scheme}://{userinfo}@{hostport}{rest}"


def _replace_host(url: str, host: str) -> str:
    """``url`` without userinfo, its host replaced by ``host`` (port and path kept)."""
    scheme, _, _, rest = _split_authority(url)
    try:
        port = urlsplit(url).port
    except ValueError as err:
        raise PipelineError(f"{url!r} has an invalid port") from err
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    return f"{scheme}://{host}{f':{port}' if port is not None else ''}{rest}"


def _stream_path(stream: StreamConfig, substream: bool) -> str:
    if not substream:
        return stream.rtsp_path
    if stream.substream is None:
        raise PipelineError(f"stream {stream.id!r} has no substream")
    return stream.substream.rtsp_path


def publish_url(stream: StreamConfig, rtsp: RtspSettings, *, substream: bool = False) -> str:
    """Where the publisher pushes: publish base + path, with the publish credentials if configured.

    Holds credentials: pass through :func:`redact` before logging or showing it.
    """
    url = _join(rtsp.publish_url, _stream_path(stream, substream))
    return _with_credentials(url, rtsp.publish_username, rtsp.publish_password)


def read_url(stream: StreamConfig, rtsp: RtspSettings, host: str, *, substream: bool = False) -> str:
    """Where readers (Home Assistant, NVRs) pull from.

    The read base is ``rtsp.read_url``, or else the publish base with its host replaced by ``host`` (this Pi's
    address as others reach it; the publish base is usually 127.0.0.1) and its publish credentials dropped.
    Read credentials, when configured, are put in percent-encoded.
    """
    base = rtsp.read_url if rtsp.read_url else _replace_host(rtsp.publish_url, host)
    url = _join(base, _stream_path(stream, substream))
    return _with_credentials(url, rtsp.read_username, rtsp.read_password)


# Greedy up to the last "@" before the first "/" so a password with a raw "@" is hidden whole.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s]*@")


def redact(text: str) -> str:
    """``text`` with the userinfo of every URL in it replaced by ``***`` (for argv, log lines, errors)."""
    if "@" not in text:  # the common case for log lines: no regex work
        return text
    return _USERINFO.sub(r"\1***@", text)


def redacted_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` safe for logs and the API: credentials in URLs replaced by ``***``."""
    return [redact(arg) for arg in argv]


# -------------------------------------------------------------------------------------------- ffmpeg bits


def _ffmpeg_head(env: PublishEnvironment) -> list[str]:
    # -nostdin: never read keyboard commands from a pipe; -nostats: no status line on stderr (the log ring
    # keeps real messages); -progress pipe:1 every second is what the supervisor reads instead.
    # -vstats: one line per encoded frame with its size, to stderr, where the agent takes it apart from the
    # log: the bitrate is measured from it, since -progress has no size for an RTSP output (N/A).
    return [
        env.tools.ffmpeg,
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-loglevel",
        "warning",
        "-progress",
        "pipe:1",
        "-stats_period",
        "1",
        "-vstats_file",
        "/dev/stderr",
        "-vstats_version",
        "2",
    ]


def _low_delay_input() -> list[str]:
    # Do not buffer input while probing (the probed packets are dropped instead: the first frame; with
    # --inline the next keyframe brings SPS/PPS again), and let decoders (substream) output frames at once.
    return ["-fflags", "nobuffer", "-flags", "low_delay"]


def _encode_args(encoding: Encoding, bitrate: int, gop: int) -> list[str]:
    """Encoder options for an H.264 output (``hardware`` or ``software``)."""
    rate = str(bitrate)
    if encoding == "hardware":
        # bcm2835-codec through V4L2 M2M: it wants yuv420p in and makes no B-frames.
        args = ["-c:v", "h264_v4l2m2m", "-pix_fmt", "yuv420p", "-b:v", rate, "-g", str(gop)]
    else:
        # ultrafast + zerolatency: no lookahead, no frame threads; -bf 0 said again for readers of the
        # command line. maxrate/bufsize keep the bitrate near the configured one (Wi-Fi headroom).
        args = [
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
            "-pix_fmt",
            "yuv420p",
            "-bf",
            "0",
            "-g",
            str(gop),
            "-b:v",
            rate,
            "-maxrate",
            rate,
            "-bufsize",
            rate,
        ]
    # SPS/PPS in-band before every keyframe (encoders put them only in extradata for RTSP), so readers
    # that join mid-stream or ignore the SDP can decode; frames are sent as they come (no dup/drop to CFR).
    return [*args, "-bsf:v", "dump_extra=freq=keyframe", "-fps_mode", "passthrough"]


def _rtsp_output(url: str, transport: str) -> list[str]:
    return ["-f", "rtsp", "-rtsp_transport", transport, url]


def _substream_output(
    stream: StreamConfig,
    sub: SubstreamConfig,
    url: str,
    *,
    encoding: Encoding,
    transport: str,
    pre_filters: Sequence[str] = (),
    extra: Sequence[str] = (),
) -> list[str]:
    """The substream as a second output of the publisher's ffmpeg: the one decoded input, scaled."""
    main_fps = stream.fps
    filters = [*pre_filters, f"scale={sub.width}:{sub.height}:flags=fast_bilinear"]
    if sub.fps < main_fps:
        filters.append(f"fps={_num(sub.fps)}")
    gop = keyframe_interval_frames(min(sub.fps, main_fps), stream.keyframe_interval_s)
    return [
        "-map",
        "0:v:0",
        "-vf",
        ",".join(filters),
        *_encode_args(encoding, sub.bitrate, gop),
        *extra,
        *_rtsp_output(url, transport),
    ]


def _sub_encoding(env: PublishEnvironment) -> Encoding:
    return "hardware" if env.hardware_h264_encoder else "software"


def _encoded_choice(stream: StreamConfig, env: PublishEnvironment) -> Encoding:
    """auto/hardware/software → the encoder for a stream that must be encoded (copy is handled by callers)."""
    if stream.encoder == "hardware" and not env.hardware_h264_encoder:
        board = f" ({env.soc})" if env.soc else ""
        raise PipelineError(
            f"stream {stream.id!r}: encoder 'hardware' needs the VideoCore H.264 encoder, which this board"
            f"{board} does not have (the Pi 5 has none); use 'auto' or 'software'"
        )
    if stream.encoder == "software":
        return "software"
    if stream.encoder == "hardware":
        return "hardware"
    return "hardware" if env.hardware_h264_encoder else "software"


# ----------------------------------------------------------------------------------------------- sources


def _camera_index(stream: StreamConfig) -> int:
    camera = stream.source.camera
    if camera is None:
        return 0
    if isinstance(camera, int):
        if camera < 0:
            raise PipelineError(f"stream {stream.id!r}: source.camera must be >= 0, not {camera}")
        return camera
    if camera.isdigit():
        return int(camera)
    # rpicam-vid's --camera is value<unsigned int> (core/options.cpp): an index, never a libcamera id.
    raise PipelineError(
        f"stream {stream.id!r}: source.camera {camera!r} is a libcamera id; rpicam-vid --camera takes an "
        "index (resolve it with the camera listing first)"
    )


def _csi(stream: StreamConfig, env: PublishEnvironment, main_url: str, sub_url: str | None) -> PipelineSpec:
    if stream.encoder == "copy":
        raise PipelineError(
            f"stream {stream.id!r}: encoder 'copy' needs a compressed source (a V4L2 card), not a CSI camera"
        )
    encoding = _encoded_choice(stream, env)
    transport = env.rtsp.publish_transport
    fps = _num(stream.fps)
    gop = keyframe_interval_frames(stream.fps, stream.keyframe_interval_s)
    rpicam = [
        env.tools.rpicam_vid,
        "--camera",
        str(_camera_index(stream)),
        "--timeout",
        "0",
        "--nopreview",
    ]
    ffmpeg = [*_ffmpeg_head(env), *_low_delay_input()]
    pre_filters: list[str] = []
    extra: list[str] = []
    if encoding == "hardware":
        mbs = _macroblocks(stream.width, stream.height)
        if mbs > _MAX_FRAME_MBS or mbs * stream.fps > _MBPS_LEVEL_42:
            raise PipelineError(
                f"stream {stream.id!r}: {stream.width}x{stream.height} at {fps} fps is beyond H.264 level "
                "4.2, the most the hardware encoder takes"
            )
        # --inline: SPS/PPS with every I-frame so a reader can join at any keyframe; --flush: write each
        # frame to the pipe at once instead of when stdio's buffer fills.
        rpicam += [
            "--codec",
            "h264",
            "--inline",
            "--flush",
            "--width",
            str(stream.width),
            "--height",
            str(stream.height),
            "--framerate",
            fps,
            "--bitrate",
            str(stream.bitrate),
            "--intra",
            str(gop),
        ]
        if mbs * stream.fps > _MBPS_LEVEL_41:
            rpicam += ["--level", "4.2"]
        rpicam += ["--output", "-"]
        ffmpeg += [
            "-f",
            "h264",
            "-framerate",
            fps,
            "-use_wallclock_as_timestamps",
            "1",
            "-i",
            "pipe:0",
            "-map",
            "0:v:0",
            "-c:v",
            "copy",
            *_rtsp_output(main_url, transport),
        ]
    else:
        # Raw frames in rpicam's padded layout (see yuv420_stride); rpicam uses the full-range JPEG colour
        # space for yuv420 (apps/rpicam_vid.cpp get_colourspace_flags), so the output is flagged full range.
        stride = yuv420_stride(stream.width, env.soc, env.hardware_h264_encoder)
        rpicam += [
            "--codec",
            "yuv420",
            "--flush",
            "--width",
            str(stream.width),
            "--height",
            str(stream.height),
            "--framerate",
            fps,
            "--output",
            "-",
        ]
        if stride != stream.width:
            pre_filters.append(f"crop={stream.width}:{stream.height}:0:0")
        extra = ["-color_range", "pc"]
        ffmpeg += [
            "-f",
            "rawvideo",
            "-pix_fmt",
            "yuv420p",
            "-video_size",
            f"{stride}x{stream.height}",
            "-framerate",
            fps,
            "-use_wallclock_as_timestamps",
            "1",
            "-i",
            "pipe:0",
            "-map",
            "0:v:0",
        ]
        if pre_filters:
            ffmpeg += ["-vf", ",".join(pre_filters)]
        ffmpeg += [*_encode_args("software", stream.bitrate, gop), *extra, *_rtsp_output(main_url, transport)]
    if stream.substream is not None and sub_url is not None:
        ffmpeg += _substream_output(
            stream,
            stream.substream,
            sub_url,
            encoding=_sub_encoding(env),
            transport=transport,
            pre_filters=pre_filters,
            extra=extra,
        )
    return PipelineSpec(
        stream_id=stream.id,
        processes=(ProcessSpec("rpicam-vid", tuple(rpicam)), ProcessSpec("ffmpeg", tuple(ffmpeg))),
        encoding=encoding,
        main_url=main_url,
        sub_url=sub_url,
        main_stream_on_stdin=encoding == "hardware",  # rpicam-vid's H.264, copied by ffmpeg
    )


def _v4l2(stream: StreamConfig, env: PublishEnvironment, main_url: str, sub_url: str | None) -> PipelineSpec:
    device = env.device_path or stream.source.device
    if not device:
        raise PipelineError(f"stream {stream.id!r}: source.device is not set and no device node was resolved")
    input_format = stream.source.input_format
    encoding: Encoding
    if stream.encoder == "copy":
        if input_format not in _V4L2_COPYABLE:
            raise PipelineError(
                f"stream {stream.id!r}: encoder 'copy' needs source.input_format 'mjpeg' or 'h264', "
                f"not {input_format!r}"
            )
        encoding = "copy"
    elif stream.encoder == "auto" and input_format == "h264":
        encoding = "copy"  # the card already sends H.264: re-encoding would only add latency and CPU
    else:
        encoding = _encoded_choice(stream, env)
    transport = env.rtsp.publish_transport
    fps = _num(stream.fps)
    ffmpeg = [*_ffmpeg_head(env), *_low_delay_input(), "-f", "v4l2"]
    if input_format:
        ffmpeg += ["-input_format", input_format]
    ffmpeg += [
        "-video_size",
        f"{stream.width}x{stream.height}",
        "-framerate",
        fps,
        "-i",
        device,
        "-map",
        "0:v:0",
    ]
    if encoding == "copy":
        ffmpeg += ["-c:v", "copy"]
    else:
        gop = keyframe_interval_frames(stream.fps, stream.keyframe_interval_s)
        ffmpeg += _encode_args(encoding, stream.bitrate, gop)
    ffmpeg += _rtsp_output(main_url, transport)
    if stream.substream is not None and sub_url is not None:
        ffmpeg += _substream_output(
            stream, stream.substream, sub_url, encoding=_sub_encoding(env), transport=transport
        )
    return PipelineSpec(
        stream_id=stream.id,
        processes=(ProcessSpec("ffmpeg", tuple(ffmpeg)),),
        encoding=encoding,
        main_url=main_url,
        sub_url=sub_url,
        device_path=device,
    )


def _test(stream: StreamConfig, env: PublishEnvironment, main_url: str, sub_url: str | None) -> PipelineSpec:
    if stream.encoder == "copy":
        raise PipelineError(
            f"stream {stream.id!r}: encoder 'copy' needs a compressed source, not a test pattern"
        )
    pattern = stream.source.pattern or DEFAULT_TEST_PATTERN
    if pattern not in TEST_PATTERNS:
        raise PipelineError(
            f"stream {stream.id!r}: source.pattern {pattern!r} is not one of "
            f"{', '.join(sorted(TEST_PATTERNS))}"
        )
    encoding = _encoded_choice(stream, env)
    transport = env.rtsp.publish_transport
    gop = keyframe_interval_frames(stream.fps, stream.keyframe_interval_s)
    ffmpeg = [
        *_ffmpeg_head(env),
        # -re: read the generated source at its frame rate, as a camera would deliver it.
        "-re",
        "-f",
        "lavfi",
        "-i",
        f"{pattern}=size={stream.width}x{stream.height}:rate={_num(stream.fps)}",
        "-map",
        "0:v:0",
        *_encode_args(encoding, stream.bitrate, gop),
        *_rtsp_output(main_url, transport),
    ]
    if stream.substream is not None and sub_url is not None:
        ffmpeg += _substream_output(
            stream, stream.substream, sub_url, encoding=_sub_encoding(env), transport=transport
        )
    return PipelineSpec(
        stream_id=stream.id,
        processes=(ProcessSpec("ffmpeg", tuple(ffmpeg)),),
        encoding=encoding,
        main_url=main_url,
        sub_url=sub_url,
    )


def _check_numbers(stream: StreamConfig) -> None:
    """Sizes and rates every encoder needs (config validation should have caught these already)."""
    sizes = [("width", stream.width), ("height", stream.height)]
    if stream.substream is not None:
        sizes += [("substream.width", stream.substream.width), ("substream.height", stream.substream.height)]
    for field, value in sizes:
        if value <= 0 or value % 2:
            raise PipelineError(f"stream {stream.id!r}: {field} must be a positive even number, not {value}")
    rates = [
        ("fps", stream.fps),
        ("bitrate", stream.bitrate),
        ("keyframe_interval_s", stream.keyframe_interval_s),
    ]
    if stream.substream is not None:
        rates += [("substream.fps", stream.substream.fps), ("substream.bitrate", stream.substream.bitrate)]
    for field, number in rates:
        if not number > 0 or not math.isfinite(number):
            raise PipelineError(f"stream {stream.id!r}: {field} must be positive, not {number}")


def build_pipeline(stream: StreamConfig, env: PublishEnvironment) -> PipelineSpec:
    """The processes that publish ``stream`` (and its substream) to the RTSP server described by ``env``.

    Raises :class:`PipelineError` (a ValueError) for combinations this machine cannot run: copy from a CSI
    camera, the hardware encoder on a Pi 5, a V4L2 source without a device, an unknown test pattern, a
    libcamera id instead of a camera index, odd sizes.
    """
    _check_numbers(stream)
    main_url = publish_url(stream, env.rtsp)
    sub_url = publish_url(stream, env.rtsp, substream=True) if stream.substream is not None else None
    kind = stream.source.kind
    if kind == "csi":
        return _csi(stream, env, main_url, sub_url)
    if kind == "v4l2":
        return _v4l2(stream, env, main_url, sub_url)
    if kind == "test":
        return _test(stream, env, main_url, sub_url)
    raise PipelineError(f"stream {stream.id!r}: unknown source.kind {kind!r}")
