"""Publisher pipelines: a :class:`~.model.StreamConfig` + :class:`~.model.PublishEnvironment` →
:class:`~.model.PipelineSpec`, the processes that publish a stream (argument lists only, never a shell).
Where they publish to comes from :mod:`.urls`.

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
    ``ffmpeg -re -f lavfi -i <pattern>=size=WxH:rate=F,<moving overlay>`` → encode; substream as above.
    Every pattern carries moving content (:func:`moving_overlay`: the local time and frame number, or a
    jumping box where no font is found), so even a still pattern like ``smptebars`` shows live from frozen.

A substream is always a second ``-map`` of the one input: ffmpeg decodes the input once and feeds each
output's filter chain (the same work as an explicit ``split`` filter, with simpler argument lists).

Motion output: when a stream has motion detection on and the environment names a ``motion_dir``, the
publishing ffmpeg gets one more output, a small grey picture for the agent (:func:`motion_output`; where
it comes from on each path is explained there, the reading side in :mod:`.motion_tap`).

Key-frame tap (snapshots): when the environment names a ``keyframe_dir``, each RTSP output (main and
substream) becomes ffmpeg's ``tee`` muxer with the RTSP publisher as one slave and the newest key frame,
copied to a file, as the other (:func:`_published_output`; why and how in :mod:`.keyframes`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from pi_stream_agent.soc import camera_isp_is_pisp
from pi_stream_agent.streams.progress import VSTATS_OPTION

from .audio import alsa_input_args, audio_filter_graph, audio_output_args
from .controls import ORIENTATION_REFUSAL, orientation_by
from .fields import COMPRESSED_INPUT_FORMATS, DEFAULT_TEST_PATTERN, PASSERBY, TEST_PATTERN_IDS
from .keyframes import drop_expression, tap_path
from .model import (
    Encoding,
    MotionOutput,
    PipelineSpec,
    ProcessSpec,
    PublishEnvironment,
    StreamConfig,
    SubstreamConfig,
)
from .motion import ANALYSIS_FPS, ANALYSIS_WIDTH, analysis_size
from .motion_tap import motion_fifo_path
from .settings import FLICKER_PERIOD_US, SETTINGS_BY_ID, TUNING_DIRS, effective_orientation
from .urls import publish_url


class PipelineError(ValueError):
    """The stream cannot be published as configured on this machine (the message names stream and field)."""


# H.264 level limits (ITU-T H.264 table A-1): level 4/4.1 allow 245 760 macroblocks/s, 4.2 allows
# 522 240; all three allow 8 192 macroblocks per frame (1920x1080 is 8 160). The VideoCore encoder
# takes "4", "4.1" or "4.2" (encoder/h264_encoder.cpp), so we only ever ask for 4.2 when 4.1 is too small.
_MBPS_LEVEL_41: Final = 245_760
_MBPS_LEVEL_42: Final = 522_240
_MAX_FRAME_MBS: Final = 8_192


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
    align = 128 if camera_isp_is_pisp(soc, hardware_h264_encoder) else 64
    return (width + align - 1) // align * align


def _macroblocks(width: int, height: int) -> int:
    return math.ceil(width / 16) * math.ceil(height / 16)


# -------------------------------------------------------------------------------------------- ffmpeg bits


def _ffmpeg_head(env: PublishEnvironment) -> list[str]:
    # -nostdin: never read keyboard commands from a pipe; -nostats: no status line on stderr (the log ring
    # keeps real messages); -progress pipe:1 every second is what the supervisor reads instead.
    # -vstats: one line per encoded frame with its size: the bitrate is measured from it, since -progress has
    # no size for an RTSP output (N/A). /dev/stderr here so the command runs as it is; the agent points it
    # at a pipe of its own (process.py), since ffmpeg writes these lines in 4 KiB blocks that split lines.
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
        VSTATS_OPTION,
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


# ------------------------------------------------------------------------------------ key-frame tap


def _tee_escape(text: str) -> str:
    """``text`` as one slave of ffmpeg's tee muxer: the slave list is split with av_get_token on ``|``,
    which also takes ``\\`` and ``'`` as escape and quote characters (libavformat/tee.c)."""
    return "".join("\\" + char if char in "\\|'" else char for char in text)


def _published_output(
    url: str,
    transport: str,
    tap: str | None,
    *,
    encoded: bool,
    every_frame_is_key: bool = False,
    frames_per_key: int = 1,
    audio: bool = False,
) -> list[str]:
    """The RTSP output of a main stream or substream, with the key-frame tap beside it when ``tap`` is set
    (see :mod:`.keyframes`): ffmpeg's tee muxer feeds the same encoded packets to the RTSP publisher and,
    through ``noise=drop=…`` (key frames only), to one file rewritten atomically. ``onfail=abort`` on the
    RTSP slave keeps a lost server fatal as without tee (ffmpeg 5.1 otherwise continues with the other
    slave); ``onfail=ignore`` on the tap, so a tap that cannot be written never stops the stream.

    ``-flags:v +global_header`` for an encoded output: ffmpeg asks the encoder for out-of-band SPS/PPS only
    when the muxer wants them, and tee (unlike rtsp) does not say so; without them the SDP loses
    ``sprop-parameter-sets`` (checked with ffmpeg 5.1) and readers that take the parameters from the SDP
    (``-probesize 32``, the RTSP snapshot fallback) cannot start. A copied stream keeps its input's."""
    if tap is None:
        return _rtsp_output(url, transport)
    drop = drop_expression(every_frame_is_key, frames_per_key)
    rtsp = f"[f=rtsp:rtsp_transport={transport}:onfail=abort]{_tee_escape(url)}"
    keyframe_options = f"f=image2:update=1:atomic_writing=1:onfail=ignore:bsfs/v=noise=drop={drop}"
    if audio:
        keyframe_options = "select=v:" + keyframe_options  # the picture file takes the video alone
    keyframe = f"[{keyframe_options}]{_tee_escape(tap)}"
    header = ["-flags:v", "+global_header"] if encoded else []
    return [*header, "-f", "tee", f"{rtsp}|{keyframe}"]


def _tap(env: PublishEnvironment, stream: StreamConfig, *, substream: bool = False) -> str | None:
    if env.keyframe_dir is None:
        return None
    return tap_path(env.keyframe_dir, stream.id, substream=substream)


def _substream_output(
    stream: StreamConfig,
    sub: SubstreamConfig,
    url: str,
    *,
    encoding: Encoding,
    transport: str,
    pre_filters: Sequence[str] = (),
    extra: Sequence[str] = (),
    tap: str | None = None,
    audio: Sequence[str] = (),
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
        *audio,
        *_published_output(url, transport, tap, encoded=True, audio=bool(audio)),
    ]


# ------------------------------------------------------------------------------------------------ sound
# The stream's sound (streams/audio.py has the arguments and why): the ALSA device is the publisher's
# second input, split inside ffmpeg to each output that carries it and to the level meter.


def _has_audio(env: PublishEnvironment) -> bool:
    return env.audio is not None


def _main_audio(env: PublishEnvironment) -> list[str]:
    return audio_output_args(env.audio, 0) if env.audio is not None else []


def _sub_audio(stream: StreamConfig, env: PublishEnvironment) -> list[str]:
    if env.audio is None or stream.substream is None or not stream.substream.audio:
        return []
    return audio_output_args(env.audio, 1)


def with_audio_input(ffmpeg: list[str], stream: StreamConfig, env: PublishEnvironment) -> list[str]:
    """``ffmpeg`` with the ALSA input and the sound's filter graph placed after the video input (before
    the first ``-map``), so the video stays input 0 and the sound is input 1."""
    if env.audio is None:
        return ffmpeg
    outputs = 2 if _sub_audio(stream, env) else 1
    at = ffmpeg.index("-map")
    graph = ["-filter_complex", audio_filter_graph(env.audio, outputs)]
    return [*ffmpeg[:at], *alsa_input_args(env.audio), *graph, *ffmpeg[at:]]


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


# ------------------------------------------------------------------------------------ motion output
# Motion detection (streams/motion.py) reads a small grey picture that the publishing ffmpeg makes as one
# more output of the input it already has: never a second camera open. Where that ffmpeg decodes anyway
# (every encode, and every substream) the output costs a 4 fps downscale. Where it only copies (a card's
# MJPEG or H.264 passed through, the CSI camera's hardware H.264 relayed) a decode is added for it, as
# small as the codec allows: MJPEG decoded at reduced size (``-lowres``: the IDCT at 1/2 to 1/8 size), H.264
# key frames only (``-skip_frame nokey``: one frame per key-frame interval, the others dropped undecoded;
# measured in bench/motion_cost.py and docs/benchmarks.md, with what a Pi does instead).


def motion_wanted(stream: StreamConfig, env: PublishEnvironment) -> bool:
    return bool(stream.settings.get("motion_detection")) and env.motion_dir is not None


def _mjpeg_lowres(width: int) -> int:
    """The largest MJPEG ``-lowres`` (0-3: 1/1 to 1/8 size) that still leaves the analysis width."""
    level = 0
    while level < 3 and width >> (level + 1) >= ANALYSIS_WIDTH:
        level += 1
    return level


def _motion_input_options(stream: StreamConfig, decodes_anyway: bool) -> list[str]:
    """Decoder options for a copying publisher whose only decode would be the motion output. Input
    options reach the one decoder every output shares, so only when nothing else decodes."""
    if decodes_anyway:
        return []
    if stream.source.kind == "v4l2" and stream.source.input_format == "mjpeg":
        level = _mjpeg_lowres(stream.width)
        return ["-lowres", str(level)] if level else []
    return ["-skip_frame", "nokey"]  # H.264: a card's, or the camera's hardware encoder's


def motion_output(
    stream: StreamConfig,
    env: PublishEnvironment,
    *,
    pre_filters: Sequence[str] = (),
    key_frames_only: bool = False,
) -> tuple[list[str], MotionOutput]:
    """The motion output's arguments and what the agent reads from it."""
    assert env.motion_dir is not None
    width, height = analysis_size(stream.width, stream.height)
    filters = list(pre_filters)
    fps = stream.fps
    if key_frames_only:
        fps = min(fps, 1.0 / stream.keyframe_interval_s)
    elif stream.fps > ANALYSIS_FPS:
        filters.append(f"fps={ANALYSIS_FPS}")  # before the scaler: dropped frames are never scaled
        fps = ANALYSIS_FPS
    # area: each output pixel is the mean of the input pixels it covers, which averages sensor noise away
    # before the detector sees it (fast_bilinear samples and keeps the noise).
    filters += [f"scale={width}:{height}:flags=area", "format=gray"]
    output = MotionOutput(
        motion_fifo_path(env.motion_dir, stream.id), width, height, fps, key_frames_only=key_frames_only
    )
    args = [
        "-map",
        "0:v:0",
        "-vf",
        ",".join(filters),
        # Frames as they come: never duplicated to fill a constant rate (the detector times them itself).
        "-fps_mode",
        "passthrough",
        "-f",
        "rawvideo",
        # The FIFO exists (the agent made it): -y, or ffmpeg refuses to "overwrite" it.
        "-y",
        output.path,
    ]
    return args, output


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
        rpicam += [*rpicam_setting_args(stream, env), "--output", "-"]
        ffmpeg += [
            "-f",
            "h264",
            "-framerate",
            fps,
            "-use_wallclock_as_timestamps",
            "1",
            *(_motion_input_options(stream, sub_url is not None) if motion_wanted(stream, env) else []),
            "-i",
            "pipe:0",
            "-map",
            "0:v:0",
            "-c:v",
            "copy",
            *_main_audio(env),
            *_published_output(main_url, transport, _tap(env, stream), encoded=False, audio=_has_audio(env)),
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
            *rpicam_setting_args(stream, env),
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
        ffmpeg += [
            *_encode_args("software", stream.bitrate, gop),
            *extra,
            *_main_audio(env),
            *_published_output(main_url, transport, _tap(env, stream), encoded=True, audio=_has_audio(env)),
        ]
    if stream.substream is not None and sub_url is not None:
        ffmpeg += _substream_output(
            stream,
            stream.substream,
            sub_url,
            encoding=_sub_encoding(env),
            transport=transport,
            pre_filters=pre_filters,
            extra=extra,
            tap=_tap(env, stream, substream=True),
            audio=_sub_audio(stream, env),
        )
    motion = None
    if motion_wanted(stream, env):
        # The hardware H.264 is only relayed: key frames are decoded for motion unless a substream decodes.
        only_keys = encoding == "hardware" and sub_url is None
        args, motion = motion_output(stream, env, pre_filters=pre_filters, key_frames_only=only_keys)
        ffmpeg += args
    ffmpeg = with_audio_input(ffmpeg, stream, env)
    return PipelineSpec(
        stream_id=stream.id,
        processes=(ProcessSpec("rpicam-vid", tuple(rpicam)), ProcessSpec("ffmpeg", tuple(ffmpeg))),
        encoding=encoding,
        main_url=main_url,
        sub_url=sub_url,
        main_stream_on_stdin=encoding == "hardware",  # rpicam-vid's H.264, copied by ffmpeg
        motion=motion,
    )


def _v4l2(stream: StreamConfig, env: PublishEnvironment, main_url: str, sub_url: str | None) -> PipelineSpec:
    device = env.device_path or stream.source.device
    if not device:
        raise PipelineError(f"stream {stream.id!r}: source.device is not set and no device node was resolved")
    input_format = stream.source.input_format
    encoding: Encoding
    if stream.encoder == "copy":
        if input_format not in COMPRESSED_INPUT_FORMATS:
            raise PipelineError(
                f"stream {stream.id!r}: encoder 'copy' needs source.input_format 'mjpeg' or 'h264', "
                f"not {input_format!r}"
            )
        encoding = "copy"
    elif stream.encoder == "auto" and input_format == "h264":
        encoding = "copy"  # the card already sends H.264: re-encoding would only add latency and CPU
    else:
        encoding = _encoded_choice(stream, env)
    fps = _num(stream.fps)
    ffmpeg = [*_ffmpeg_head(env), *_low_delay_input(), "-f", "v4l2"]
    if input_format:
        ffmpeg += ["-input_format", input_format]
    motion_input: list[str] = []
    if encoding == "copy" and motion_wanted(stream, env):
        motion_input = _motion_input_options(stream, sub_url is not None)
    ffmpeg += [
        "-video_size",
        f"{stream.width}x{stream.height}",
        "-framerate",
        fps,
        *motion_input,
        "-i",
        device,
        "-map",
        "0:v:0",
    ]
    filters = orientation_filters(stream, env, encoding)
    if filters:
        ffmpeg += ["-vf", ",".join(filters)]
    if encoding == "copy":
        ffmpeg += ["-c:v", "copy"]
    else:
        gop = keyframe_interval_frames(stream.fps, stream.keyframe_interval_s)
        ffmpeg += _encode_args(encoding, stream.bitrate, gop)
    return _one_ffmpeg(
        stream,
        env,
        ffmpeg,
        encoding=encoding,
        main_url=main_url,
        sub_url=sub_url,
        device_path=device,
        pre_filters=filters,
        motion_key_frames_only="-skip_frame" in motion_input,
    )


def _test(stream: StreamConfig, env: PublishEnvironment, main_url: str, sub_url: str | None) -> PipelineSpec:
    if stream.encoder == "copy":
        raise PipelineError(
            f"stream {stream.id!r}: encoder 'copy' needs a compressed source, not a test pattern"
        )
    pattern = stream.source.pattern or DEFAULT_TEST_PATTERN
    if pattern not in TEST_PATTERN_IDS:
        raise PipelineError(
            f"stream {stream.id!r}: source.pattern {pattern!r} is not one of {', '.join(TEST_PATTERN_IDS)}"
        )
    encoding = _encoded_choice(stream, env)
    gop = keyframe_interval_frames(stream.fps, stream.keyframe_interval_s)
    filters = orientation_filters(stream, env, encoding)
    ffmpeg = [
        *_ffmpeg_head(env),
        # -re: read the generated source at its frame rate, as a camera would deliver it.
        "-re",
        "-f",
        "lavfi",
        "-i",
        pattern_graph(pattern, stream.width, stream.height, stream.fps, env.tools.clock_font),
        "-map",
        "0:v:0",
        *(["-vf", ",".join(filters)] if filters else []),
        *_encode_args(encoding, stream.bitrate, gop),
    ]
    return _one_ffmpeg(
        stream, env, ffmpeg, encoding=encoding, main_url=main_url, sub_url=sub_url, pre_filters=filters
    )


def _one_ffmpeg(
    stream: StreamConfig,
    env: PublishEnvironment,
    ffmpeg: list[str],
    *,
    encoding: Encoding,
    main_url: str,
    sub_url: str | None,
    device_path: str | None = None,
    pre_filters: Sequence[str] = (),
    motion_key_frames_only: bool = False,
) -> PipelineSpec:
    """One ffmpeg (V4L2 and test sources): its main output published, the substream and the motion
    output beside it."""
    transport = env.rtsp.publish_transport
    # MJPEG passed through untouched: every frame is a key frame, so the tap keeps one per interval.
    mjpeg_copy = encoding == "copy" and stream.source.input_format == "mjpeg"
    ffmpeg += _main_audio(env)
    ffmpeg += _published_output(
        main_url,
        transport,
        _tap(env, stream),
        encoded=encoding != "copy",
        every_frame_is_key=mjpeg_copy,
        frames_per_key=keyframe_interval_frames(stream.fps, stream.keyframe_interval_s),
        audio=_has_audio(env),
    )
    if stream.substream is not None and sub_url is not None:
        ffmpeg += _substream_output(
            stream,
            stream.substream,
            sub_url,
            encoding=_sub_encoding(env),
            transport=transport,
            pre_filters=pre_filters,
            tap=_tap(env, stream, substream=True),
            audio=_sub_audio(stream, env),
        )
    motion = None
    if motion_wanted(stream, env):
        args, motion = motion_output(
            stream, env, pre_filters=pre_filters, key_frames_only=motion_key_frames_only
        )
        ffmpeg += args
    ffmpeg = with_audio_input(ffmpeg, stream, env)
    return PipelineSpec(
        stream_id=stream.id,
        processes=(ProcessSpec("ffmpeg", tuple(ffmpeg)),),
        encoding=encoding,
        main_url=main_url,
        sub_url=sub_url,
        device_path=device_path,
        motion=motion,
    )


def moving_overlay(width: int, height: int, font: str | None) -> str:
    """A filter that puts moving content on every frame, so a person tells a live picture from a frozen one
    even on a still pattern (smptebars): the local time and the frame number drawn with ``font``, or
    without a font a box that jumps between two places every second."""
    margin = max(2, height // 40)
    if font is not None:
        size = max(10, height // 18)
        # Escaping (checked with ffmpeg 5.1): the quotes keep the graph and option parsers off the text;
        # inside, ``\:`` separates localtime from its format and ``\\\:`` is a literal colon in the format.
        text = r"%{localtime\:%H\\\:%M\\\:%S}  frame %{n}"
        return (
            f"drawtext=fontfile={font}:text='{text}':fontsize={size}:fontcolor=white"
            f":box=1:boxcolor=black@0.6:boxborderw={margin}:x={2 * margin}:y={2 * margin}"
        )
    side = max(4, height // 12)
    boxes = []
    for slot, when in ((0, "lt(mod(t\\,2)\\,1)"), (1, "gte(mod(t\\,2)\\,1)")):
        x = margin + slot * (side + margin)
        boxes.append(f"drawbox=x={x}:y={margin}:w={side}:h={side}:color=white:t=fill:enable='{when}'")
    return ",".join(boxes)


# The passer-by: a dark figure crossing the bars from left to right in PASSERBY_WALK_S, PASSERBY_AT_S into
# every PASSERBY_EVERY_S (a still scene first, which motion detection learns, then motion, then still again).
PASSERBY_EVERY_S = 30
PASSERBY_AT_S = 10
PASSERBY_WALK_S = 6


def pattern_graph(pattern: str, width: int, height: int, fps: float, font: str | None) -> str:
    """The lavfi graph of a test stream: the pattern at the stream's size and rate, with moving content."""
    size, rate = f"{width}x{height}", _num(fps)
    source = f"{pattern}=size={size}:rate={rate}"
    if pattern == PASSERBY:
        figure = f"{max(2, width // 8)}x{max(2, height // 2)}"
        walked = f"(mod(t,{PASSERBY_EVERY_S})-{PASSERBY_AT_S})"  # seconds since this round's figure set off
        x = f"if(between({walked},0,{PASSERBY_WALK_S}),-w+(W+w)*{walked}/{PASSERBY_WALK_S},-w)"
        source = (
            f"smptebars=size={size}:rate={rate}[bars];color=c=0x202020:size={figure}:rate={rate}[figure];"
            f"[bars][figure]overlay=x='{x}':y=H/3:eval=frame"
        )
    return f"{source},{moving_overlay(width, height, font)}"


# ---------------------------------------------------------------------------------------- picture settings


def _roi(zoom: float) -> str:
    """A centred crop of 1/zoom of the sensor as rpicam-vid's --roi wants it: "x,y,w,h" in 0..1."""
    side = 1.0 / zoom
    offset = (1.0 - side) / 2.0
    return ",".join(f"{value:.4f}".rstrip("0").rstrip(".") or "0" for value in (offset, offset, side, side))


def rpicam_setting_args(stream: StreamConfig, env: PublishEnvironment) -> list[str]:
    """The stream's picture settings as rpicam-vid options (each setting's option is named in
    settings.py, with the line of rpicam-apps core/options.cpp that declares it)."""
    args: list[str] = []
    values = stream.settings
    for setting_id, value in values.items():
        setting = SETTINGS_BY_ID.get(setting_id)
        if setting is None or setting.rpicam_option is None:
            continue
        option = "--" + setting.rpicam_option
        if setting.kind == "switch":
            if value and setting_id == "hdr":
                args.append(f"{option}=auto")  # implicit_value("auto"): sensor HDR on a Camera Module 3
            elif value:
                args.append(option)  # a boost implicit_value(true) flag
        elif setting_id == "shutter_us":
            args += [option, f"{int(value)}us"]
        elif setting_id == "flicker_period":
            args += [option, f"{FLICKER_PERIOD_US[value]}us" if value in FLICKER_PERIOD_US else "0s"]
        elif setting_id == "tuning_file":
            isp = "pisp" if camera_isp_is_pisp(env.soc, env.hardware_h264_encoder) else "vc4"
            args += [option, f"{TUNING_DIRS[isp]}/{value}.json"]
        elif setting_id == "zoom":
            args += [option, _roi(float(value))]
        elif setting_id == "awb_red_gain":
            blue = values.get("awb_blue_gain")
            if blue is not None:
                args += [option, f"{_num(value)},{_num(blue)}"]
        elif setting_id == "awb_blue_gain":
            continue  # written with the red gain: --awbgains r,b
        elif setting.kind == "number":
            args += [option, _num(value)]
        else:
            args += [option, str(value)]
    return args


def orientation_filters(stream: StreamConfig, env: PublishEnvironment, encoding: Encoding) -> list[str]:
    """ffmpeg filters that turn the picture of a V4L2 or test stream (a CSI camera turns in rpicam-vid, a
    card with flip controls in its driver). A 180° turn is both flips."""
    if stream.source.kind == "csi":
        return []
    hflip, vflip = effective_orientation(stream.settings)
    if not (hflip or vflip):
        return []
    by = orientation_by(stream, env.device_controls)
    if by == "driver":
        return []
    if by == "none" or encoding == "copy":
        raise PipelineError(f"stream {stream.id!r}: orientation {ORIENTATION_REFUSAL}")
    return [name for name, wanted in (("hflip", hflip), ("vflip", vflip)) if wanted]


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
