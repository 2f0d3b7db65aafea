"""rpicam-vid's real command-line options, for the rpicam-vid stand-in and the tests of the pipelines.

Only tests use this table: the stand-in (tests/agent/bin/streams/rpicam-vid) parses its arguments with it,
and a test checks that every option the pipeline builder writes is a real one (and none needs libav).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


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

# The options pi_stream_agent.streams.pipelines writes. None is libav-only, so rpicam-apps-lite runs every
# pipeline.
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
        # picture settings (pi_stream_agent/streams/settings.py)
        "rotation",
        "hflip",
        "vflip",
        "autofocus-mode",
        "autofocus-range",
        "autofocus-speed",
        "lens-position",
        "hdr",
        "exposure",
        "shutter",
        "gain",
        "ev",
        "metering",
        "awb",
        "awbgains",
        "brightness",
        "contrast",
        "saturation",
        "sharpness",
        "denoise",
        "flicker-period",
        "tuning-file",
        "roi",
    }
)
