"""A stream's sound: its ``audio:`` config, the ffmpeg arguments that capture and encode it beside the video,
the loudness the publishing ffmpeg measures, and the ``sound`` detector.

Config (streams.yaml / PUT /streams/{id}; absent = ``device: none``, video only)::

    audio:
      device: auto        # none | auto | an audio device id from GET /api/v1/devices (audio_devices)
      codec: aac          # aac | opus
      bitrate: 64k        # 16k-320k
      channels: 1         # 1 or 2 (as the device offers)
      sample_rate: 48000  # 8000-48000 (as the device offers)

Why ``aac`` by default: Home Assistant plays a camera two ways. Its own HLS path (stream component) keeps
only AAC or MP3 sound (``AUDIO_CODECS = {"aac", "mp3"}`` in stream/const.py; worker.py drops any other
audio stream and plays the video alone). WebRTC carries Opus, PCMA or PCMU to a browser, and HA's go2rtc
integration registers every camera with a second source ``ffmpeg:<camera>#audio=opus`` (go2rtc/__init__.py,
HA 2025.4 and 2026.2), so go2rtc turns AAC into Opus itself. AAC therefore plays in both; Opus plays in
WebRTC without that transcode but is silent in HLS — choose it when only WebRTC (or Frigate/go2rtc) reads.

The publisher's ffmpeg opens the card's ALSA device as its second input (``-f alsa -i hw:CARD=…,DEV=…``,
argument lists only) and maps it into the same RTSP output as the video. The same audio is split inside
ffmpeg to a meter: ``asetnsamples`` cuts half-second blocks, ``astats`` measures their RMS level and
``ametadata`` prints it to stderr (``direct=1``: unbuffered, else avio holds 32 KiB — minutes of lines),
where :func:`parse_level_line` takes it out of the log. No second capture, no second process.

A device that is missing or busy never stops the video: the stream runs video-only and
:class:`AudioStatus` says why (see :func:`alsa_failure`). Nor does one unplugged while the stream runs: the
card's hot-plug event or the publisher's "ALSA read error" (:func:`sound_lost`), whichever comes first,
makes the supervisor restart it without sound at once, and the card's return brings the sound back with one
more restart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import voluptuous as vol

from pi_stream_agent.yamlfile import name_unknown_keys

AudioCodec = Literal["opus", "aac"]
AUDIO_CODECS: tuple[AudioCodec, ...] = ("aac", "opus")
AUDIO_CODEC_NAMES: dict[AudioCodec, str] = {
    "aac": "AAC (plays in Home Assistant's HLS and, through go2rtc, WebRTC)",
    "opus": "Opus (WebRTC as is; silent in Home Assistant's HLS player)",
}
DEFAULT_AUDIO_CODEC: AudioCodec = "aac"
FFMPEG_AUDIO_ENCODERS: dict[AudioCodec, str] = {"opus": "libopus", "aac": "aac"}
AUDIO_KEYS = ("device", "codec", "bitrate", "channels", "sample_rate")
MIN_AUDIO_BITRATE = 16_000
MAX_AUDIO_BITRATE = 320_000
SAMPLE_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
# Opus runs at 48 kHz only (libopus takes 8/12/16/24/48 kHz, and WebRTC expects 48 kHz).
OPUS_RATES = (8000, 16000, 24000, 48000)
# How often the level is measured: one value per half second (two lines a second on stderr).
LEVEL_BLOCK_S = 0.5
LEVEL_KEY = "lavfi.astats.Overall.RMS_level"
# Digital silence measures -inf dB; reported as this floor (JSON has no infinity).
SILENCE_DBFS = -120.0


@dataclass(frozen=True)
class AudioConfig:
    device: str = "none"  # none | auto | an audio device id
    codec: AudioCodec = "aac"  # DEFAULT_AUDIO_CODEC
    bitrate: int = 64_000
    channels: int = 1
    sample_rate: int = 48_000

    @property
    def wanted(self) -> bool:
        return self.device != "none"


@dataclass(frozen=True)
class AudioInput:
    """What the publisher opens: a resolved ALSA device and how to encode it (pipelines take this)."""

    device_id: str
    alsa: str  # hw:CARD=MS2109,DEV=0
    config: AudioConfig
    # A simulated Pi's sound card exists only on paper (like its encoder): the host has no such card, so
    # the publisher takes ffmpeg's audio test source instead (:func:`alsa_input_args`).
    simulated: bool = False


# ------------------------------------------------------------------------------------------- config


def _check_device(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise vol.Invalid("expected none, auto or an audio device id from the device list")
    return value.strip()


def _check_codec(value: Any) -> AudioCodec:
    for codec in AUDIO_CODECS:
        if value == codec:
            return codec
    raise vol.Invalid(f"expected aac or opus, got {value!r}")


def _check_channels(value: Any) -> int:
    if isinstance(value, bool) or value not in (1, 2):
        raise vol.Invalid(f"expected 1 (mono) or 2 (stereo), got {value!r}")
    return int(value)


def _check_rate(value: Any) -> int:
    if isinstance(value, bool) or value not in SAMPLE_RATES:
        raise vol.Invalid(f"expected one of {', '.join(map(str, SAMPLE_RATES))} (Hz), got {value!r}")
    return int(value)


def _check_bitrate(value: Any) -> int:
    # The one bitrate parser (k/M suffixes); imported here as fields → model → this module.
    from pi_stream_agent.streams.fields import parse_bitrate  # noqa: PLC0415

    bits = parse_bitrate(value)
    if not MIN_AUDIO_BITRATE <= bits <= MAX_AUDIO_BITRATE:
        raise vol.Invalid(f"expected 16k to 320k for sound, got {value!r}")
    return bits


_AUDIO_SCHEMA = vol.Schema(
    {
        vol.Optional("device", default="auto"): _check_device,
        vol.Optional("codec", default=DEFAULT_AUDIO_CODEC): _check_codec,
        vol.Optional("bitrate", default=64_000): _check_bitrate,
        vol.Optional("channels", default=1): _check_channels,
        vol.Optional("sample_rate", default=48_000): _check_rate,
    }
)


def parse_audio(value: Any) -> AudioConfig | None:
    """The ``audio:`` mapping → AudioConfig; None (video only) when absent or ``device: none``. A bare
    ``audio: auto`` / ``audio: none`` / ``audio: <device id>`` is taken as the device."""
    if value is None:
        return None
    if isinstance(value, str):
        value = {"device": value}
    if not isinstance(value, dict):
        raise vol.Invalid(f"expected a mapping such as {{device: auto, codec: opus}}, got {value!r}")
    try:
        checked = _AUDIO_SCHEMA(value)
    except vol.MultipleInvalid as exc:
        raise name_unknown_keys(exc, AUDIO_KEYS, "the sound settings") from None
    config = AudioConfig(**checked)
    if config.codec == "opus" and config.sample_rate not in OPUS_RATES:
        raise vol.Invalid(
            f"Opus takes {', '.join(map(str, OPUS_RATES))} Hz; choose one of them or codec aac",
            path=["sample_rate"],
        )
    return config if config.wanted else None


def vocabulary_json() -> dict[str, Any]:
    """``audio`` in GET /api/v1/vocabulary: the words and limits of the ``audio:`` config."""
    return {
        "codecs": [{"id": codec, "name": AUDIO_CODEC_NAMES[codec]} for codec in AUDIO_CODECS],
        "default_codec": DEFAULT_AUDIO_CODEC,
        "devices": [
            {"id": "none", "name": "No sound"},
            {"id": "auto", "name": "The camera's own sound"},
        ],
        "bitrate_bps": {"min": MIN_AUDIO_BITRATE, "max": MAX_AUDIO_BITRATE},
        "channels": [1, 2],
        "sample_rates": list(SAMPLE_RATES),
        "opus_sample_rates": list(OPUS_RATES),
    }


def audio_to_json(config: AudioConfig | None) -> dict[str, Any] | None:
    if config is None:
        return None
    return {
        "device": config.device,
        "codec": config.codec,
        "bitrate": config.bitrate,
        "channels": config.channels,
        "sample_rate": config.sample_rate,
    }


# ------------------------------------------------------------------------------------------- resolving


@dataclass(frozen=True)
class AudioStatus:
    """``audio`` in a stream's status: on (published), off (not configured), unavailable (configured but
    the stream runs video-only; ``reason`` says why and what to do)."""

    state: Literal["on", "off", "unavailable"]
    device: str | None = None
    codec: AudioCodec | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "device": self.device, "codec": self.codec, "reason": self.reason}


AUDIO_OFF = AudioStatus("off")

# The one sentence for a sound device that is not there: absent when the stream starts, or unplugged while
# it runs (:func:`sound_lost`). The stream comes back with sound when the card's hot-plug event says so.
NOT_CONNECTED = "The sound device is not connected. The stream runs without sound until it is plugged in."


def resolve_audio(
    config: AudioConfig | None,
    audio_devices: list[dict[str, Any]],
    video_device_id: str | None,
) -> tuple[AudioInput | None, AudioStatus]:
    """Which ALSA device a stream's sound comes from now (``audio_devices`` in the GET /devices form).
    ``auto``: the one on the same USB device as the stream's capture device. Never refuses: an absent
    device gives video only and a reason."""
    if config is None:
        return None, AUDIO_OFF
    if config.device == "auto":
        match = next(
            (d for d in audio_devices if video_device_id and d.get("video_device_id") == video_device_id),
            None,
        )
        if match is None:
            return None, AudioStatus(
                "unavailable",
                None,
                config.codec,
                "This camera has no sound of its own. Choose a microphone as the sound device, or none.",
            )
    else:
        match = next((d for d in audio_devices if d.get("id") == config.device), None)
        if match is None:
            return None, AudioStatus("unavailable", config.device, config.codec, NOT_CONNECTED)
    device_id = str(match["id"])
    return AudioInput(device_id, str(match["alsa"]), config), AudioStatus("on", device_id, config.codec)


# ------------------------------------------------------------------------------------------- ffmpeg


# What a simulated sound card hears: a 440 Hz tone (-21 dBFS) for 10 s every 30 s over a quiet hum
# (-61 dBFS), so the level moves and, with the default threshold (-30 dBFS, 1 s), sound starts and ends. Ten
# seconds: Home Assistant's sound level sensor writes at most every 10 s, so it shows each tone too.
SIMULATED_BEEP_EVERY_S = 30
SIMULATED_BEEP_S = 10


def simulated_source(config: AudioConfig) -> str:
    """The lavfi graph a simulated sound card's sound comes from."""
    layout = "stereo" if config.channels == 2 else "mono"
    volume = f"if(lt(mod(t,{SIMULATED_BEEP_EVERY_S}),{SIMULATED_BEEP_S}),1,0.01)"
    return (
        f"sine=frequency=440:sample_rate={config.sample_rate},volume=volume='{volume}':eval=frame,"
        f"aformat=channel_layouts={layout}"
    )


def alsa_input_args(audio: AudioInput) -> list[str]:
    """The ALSA input, after the video input (so it is input 1). thread_queue_size: ALSA delivers small
    periods; the default queue of 8 packets drops sound while the video encoder is busy."""
    if audio.simulated:
        # -re: generated at the pace a card would deliver it, like the test patterns.
        return ["-re", "-f", "lavfi", "-i", simulated_source(audio.config)]
    return [
        "-f",
        "alsa",
        "-thread_queue_size",
        "1024",
        "-channels",
        str(audio.config.channels),
        "-sample_rate",
        str(audio.config.sample_rate),
        "-i",
        audio.alsa,
    ]


def audio_filter_graph(audio: AudioInput, outputs: int, input_index: int = 1) -> str:
    """``-filter_complex``: the sound split to ``outputs`` encoders ([a0], [a1] …) and to the level meter."""
    labels = "".join(f"[a{n}]" for n in range(outputs))
    block = max(1, round(audio.config.sample_rate * LEVEL_BLOCK_S))
    meter = (
        f"asetnsamples=n={block},astats=metadata=1:reset=1:measure_perchannel=none,"
        f"ametadata=print:key={LEVEL_KEY}:file=/dev/stderr:direct=1,anullsink"
    )
    return f"[{input_index}:a:0]asplit={outputs + 1}{labels}[meter];[meter]{meter}"


def audio_output_args(audio: AudioInput, output: int) -> list[str]:
    """The encoded sound of one output (``output``: 0 main, 1 substream), placed before its muxer."""
    return [
        "-map",
        f"[a{output}]",
        "-c:a",
        FFMPEG_AUDIO_ENCODERS[audio.config.codec],
        "-b:a",
        str(audio.config.bitrate),
        "-ac",
        str(audio.config.channels),
        "-ar",
        str(audio.config.sample_rate),
    ]


# ffmpeg 5.1 libavdevice/alsa.c: "cannot open audio device %s (%s)" with snd_strerror's text.
_OPEN_FAILED = "cannot open audio device"
# ffmpeg 5.1 libavdevice/alsa_dec.c audio_read_packet(): snd_pcm_readi() failed and
# ff_alsa_xrun_recover() could not recover ("ALSA read error: %s", snd_strerror's text). A USB card that
# is unplugged mid-stream fails the read with ENODEV: the kernel swaps the open PCM's file operations for
# snd_shutdown_f_ops (sound/core/init.c, snd_card_disconnect), whose ioctl answers -ENODEV, so the line is
# "ALSA read error: No such device" (quoted as the symptom of a USB capture device lost mid-stream in a
# public troubleshooting page; see tests/agent/test_stream_audio_e2e.py). ffmpeg then treats the
# input as ended and goes on with the video alone, but its muxer holds the video back waiting for sound
# that never comes (max_interleave_delta, 10 s): the agent must restart the publisher without sound.
_READ_FAILED = "alsa read error"


def sound_lost(line: str) -> str | None:
    """A plain reason when a log line of the running publisher says its ALSA input stopped, else None."""
    lower = line.lower()
    if _READ_FAILED not in lower:
        return None
    if "no such device" in lower:
        return NOT_CONNECTED
    return "The sound device stopped working. The stream runs without sound until it is plugged in again."


def alsa_failure(log_lines: list[str]) -> str | None:
    """A plain reason when the publisher's log shows it could not open its ALSA input (or lost it), else
    None. Checked before the exit is classified: "No such device" from a sound card is not the camera's."""
    for line in log_lines:
        lost = sound_lost(line)
        if lost is not None:
            return lost
        if _OPEN_FAILED not in line:
            continue
        if "busy" in line:
            return "The sound device is in use by another program. The stream runs without sound."
        return "The sound device could not be opened (unplugged?). The stream runs without sound."
    return None


# ------------------------------------------------------------------------------------------- level


def is_meter_line(line: str) -> bool:
    """A line of the meter's output (not a log line): ``frame:12 pts:… pts_time:…`` or the level."""
    return line.startswith(LEVEL_KEY + "=") or (line.startswith("frame:") and "pts_time:" in line)


def parse_level_line(line: str) -> float | None:
    """``lavfi.astats.Overall.RMS_level=-23.4`` → -23.4 dBFS (``-inf`` → :data:`SILENCE_DBFS`)."""
    if not line.startswith(LEVEL_KEY + "="):
        return None
    try:
        value = float(line.partition("=")[2].strip())
    except ValueError:
        return None
    if math.isnan(value):
        return None
    return max(SILENCE_DBFS, min(0.0, value)) if math.isfinite(value) else SILENCE_DBFS


# ------------------------------------------------------------------------------------------- detection


@dataclass
class SoundEvent:
    state: Literal["start", "end"]
    level_dbfs: float
    started_at: float
    ended_at: float | None


class SoundDetector:
    """Sound starts when the level stays at or above ``threshold_dbfs`` for ``min_duration_s`` (then the
    start is dated to when it first rose); it ends at the first level below the threshold."""

    def __init__(self, threshold_dbfs: float = -30.0, min_duration_s: float = 1.0) -> None:
        self.threshold_dbfs = threshold_dbfs
        self.min_duration_s = min_duration_s
        self.active = False
        self._rose_at: float | None = None
        self._peak = SILENCE_DBFS

    def feed(self, level_dbfs: float, now: float) -> SoundEvent | None:
        if level_dbfs >= self.threshold_dbfs:
            if self._rose_at is None:
                self._rose_at, self._peak = now, level_dbfs
            self._peak = max(self._peak, level_dbfs)
            if not self.active and now - self._rose_at >= self.min_duration_s:
                self.active = True
                return SoundEvent("start", round(self._peak, 1), self._rose_at, None)
            return None
        rose_at, self._rose_at = self._rose_at, None
        if self.active and rose_at is not None:
            self.active = False
            return SoundEvent("end", round(level_dbfs, 1), rose_at, now)
        return None

    def reset(self, now: float) -> SoundEvent | None:
        """The publisher stopped: an open sound ends now."""
        rose_at, self._rose_at = self._rose_at, None
        if self.active and rose_at is not None:
            self.active = False
            return SoundEvent("end", SILENCE_DBFS, rose_at, now)
        return None
