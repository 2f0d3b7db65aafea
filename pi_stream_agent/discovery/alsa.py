"""ALSA capture devices (microphones, the audio half of HDMI capture cards and webcams) from ``/proc/asound``.

What is read, below the agent's root (so fixture trees and the simulated Pi work the same way):

``proc/asound/cards``
    `` 1 [MS2109         ]: USB-Audio - MS2109`` then an indented long name, for USB cards
    ``MacroSilicon MS2109 at usb-0000:01:00.0-1.3, high speed`` (snd-usb-audio writes ``<name> at
    <usb_make_path>, <speed> speed``: the same bus path the UVC driver reports as the video node's bus
    info, which is how a card's audio is matched to its video). The long name is cut at 80 characters.
``proc/asound/pcm``
    ``01-00: USB Audio : USB Audio : capture 1`` — card-device, id, name, then ``playback N`` and/or
    ``capture N`` (subdevice counts). Only devices with ``capture`` are offered.
``proc/asound/cardN/usbid``, ``usbbus``, ``stream0``
    USB cards only: ``534d:2109``; ``001/004``; the stream's ``Capture:`` section with ``Channels:`` and
    ``Rates:`` (what the device offers).
``sys/class/sound/cardN/device``
    The card's device link; for USB the interface directory, from which the bus path is worked out as
    for video nodes (:func:`~.v4l2.bus_from_device_path`) when the long name was cut before it.

``arecord -l`` (alsa-utils) prints the same facts; :func:`parse_arecord_list` reads it for tests and the
docs (the agent itself never runs it: /proc is enough and costs no fork).

The parsers are pure; :func:`scan_alsa` does the reading.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pi_stream_agent.discovery.v4l2 import CaptureDevice, bus_from_device_path
from pi_stream_agent.rootfs import Root, describe_os_error

# `` 0 [Headphones     ]: bcm2835_headpho - bcm2835 Headphones`` (sound/core/init.c card_info_read)
_CARD_LINE = re.compile(r"^\s*(\d+)\s+\[([^\]]*)\]:\s*(.*?)\s+-\s+(.*)$")
# ``card 1: MS2109 [MS2109], device 0: USB Audio [USB Audio]`` (alsa-utils aplay.c device_list)
_ARECORD_LINE = re.compile(r"^card (\d+): (\S+) \[(.*)\], device (\d+): (.*) \[(.*)\]\s*$")
_BUS_IN_LONGNAME = re.compile(r" at (usb-\S+?),\s")
# Rates a continuous range (``Rates: 8000 - 48000 (continuous)``) is offered at: the usual ones inside it.
COMMON_RATES = (8000, 16000, 22050, 32000, 44100, 48000)


@dataclass(frozen=True)
class SoundCard:
    index: int
    id: str  # ALSA's card id (``MS2109``, ``Headphones``): stable in ``hw:CARD=<id>``
    driver: str
    name: str
    long_name: str


@dataclass(frozen=True)
class PcmDevice:
    card: int
    device: int
    id: str
    name: str
    playback: bool
    capture: bool


@dataclass(frozen=True)
class StreamFormats:
    """The ``Capture:`` section of a USB card's ``stream0``."""

    channels: list[int]
    rates: list[int]


@dataclass
class AudioDevice:
    """An ALSA capture device a stream can take its sound from (``audio_devices`` in GET /devices)."""

    id: str
    card: int
    device: int
    name: str
    alsa: str  # what ffmpeg ``-f alsa -i`` opens: ``hw:CARD=<card id>,DEV=<device>``
    usb_id: str | None = None
    bus_path: str | None = None
    video_device_id: str | None = None
    channels: list[int] | None = None
    rates: list[int] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "card": self.card,
            "device": self.device,
            "name": self.name,
            "alsa": self.alsa,
            "usb_id": self.usb_id,
            "bus_path": self.bus_path,
            "video_device_id": self.video_device_id,
            "channels": self.channels,
            "rates": self.rates,
        }


@dataclass
class AlsaScan:
    devices: list[AudioDevice] = field(default_factory=list)
    reason: str | None = None  # why the list may be empty or incomplete (``unavailable.audio_devices``)


# ------------------------------------------------------------------------------------------------ parsers


def parse_cards(text: str) -> list[SoundCard]:
    """``/proc/asound/cards`` → cards; "--- no soundcards ---" and junk give an empty list."""
    cards: list[SoundCard] = []
    lines = text.splitlines()
    for number, line in enumerate(lines):
        match = _CARD_LINE.match(line)
        if match is None:
            continue
        following = lines[number + 1] if number + 1 < len(lines) else ""
        # The long name is the next line (indented by the kernel; copies often lose the indentation).
        long_name = following.strip() if following.strip() and not _CARD_LINE.match(following) else ""
        cards.append(
            SoundCard(
                index=int(match.group(1)),
                id=match.group(2).strip(),
                driver=match.group(3).strip(),
                name=match.group(4).strip(),
                long_name=long_name,
            )
        )
    return cards


def parse_pcm(text: str) -> list[PcmDevice]:
    """``/proc/asound/pcm`` → PCM devices (``CC-DD: id : name : playback N : capture N``)."""
    devices: list[PcmDevice] = []
    for line in text.splitlines():
        head, sep, rest = line.partition(":")
        card, dash, device = head.strip().partition("-")
        if not sep or not dash or not card.isdigit() or not device.isdigit():
            continue
        parts = [part.strip() for part in rest.split(" : ")]
        directions = {part.split()[0] for part in parts[2:] if part}
        devices.append(
            PcmDevice(
                card=int(card),
                device=int(device),
                id=parts[0] if parts else "",
                name=parts[1] if len(parts) > 1 else "",
                playback="playback" in directions,
                capture="capture" in directions,
            )
        )
    return devices


def parse_stream_capture(text: str) -> StreamFormats:
    """The channel counts and rates of the ``Capture:`` section of a USB card's ``stream0`` file (every
    altsetting); empty lists when there is no capture section."""
    channels: list[int] = []
    rates: list[int] = []
    in_capture = False
    for line in text.splitlines():
        if line and not line[0].isspace():
            in_capture = line.strip() == "Capture:"
            continue
        if not in_capture:
            continue
        key, _, value = line.strip().partition(":")
        if key == "Channels" and value.strip().isdigit():
            channels.append(int(value))
        elif key == "Rates":
            rates.extend(_parse_rates(value))
    return StreamFormats(sorted(set(channels)), sorted(set(rates)))


def _parse_rates(value: str) -> list[int]:
    if "continuous" in value:
        bounds = [int(word) for word in value.replace("-", " ").split() if word.isdigit()]
        if len(bounds) == 2:
            return [rate for rate in COMMON_RATES if bounds[0] <= rate <= bounds[1]]
        return []
    return [int(word) for word in value.replace(",", " ").split() if word.isdigit()]


def parse_arecord_list(text: str) -> list[PcmDevice]:
    """``arecord -l`` → the capture devices it lists (``aplay -l`` output lists playback devices, and is
    read as such: a PLAYBACK heading makes every entry playback-only)."""
    capture = "List of PLAYBACK" not in text
    devices: list[PcmDevice] = []
    for line in text.splitlines():
        match = _ARECORD_LINE.match(line.strip())
        if match is None:
            continue
        devices.append(
            PcmDevice(
                card=int(match.group(1)),
                device=int(match.group(4)),
                id=match.group(5).strip(),
                name=match.group(6).strip(),
                playback=not capture,
                capture=capture,
            )
        )
    return devices


def bus_from_long_name(long_name: str) -> str | None:
    """``MacroSilicon MS2109 at usb-0000:01:00.0-1.3, high speed`` → ``usb-0000:01:00.0-1.3``; None when
    the name has no bus or was cut before its end (the kernel keeps 80 characters)."""
    match = _BUS_IN_LONGNAME.search(long_name + " ")
    return match.group(1) if match else None


def audio_device_id(card: SoundCard, device: int, bus_path: str | None) -> str:
    """Stable across reboots: the USB port for USB cards (card numbers move with plug order), else the
    ALSA card id; ``-devN`` for a second capture device of the same card."""
    base = f"alsa-{bus_path}" if bus_path else f"alsa-{card.id}"
    return base if device == 0 else f"{base}-dev{device}"


def build_audio_devices(
    cards: Sequence[SoundCard],
    pcms: Sequence[PcmDevice],
    usb: dict[int, tuple[str | None, str | None, StreamFormats | None]],
    capture_devices: Sequence[CaptureDevice] = (),
) -> list[AudioDevice]:
    """Capture PCMs joined with their card, the card's USB facts (``usb``: card → usb id, bus path,
    formats) and the video capture device on the same USB device (first video node of that bus)."""
    by_index = {card.index: card for card in cards}
    video_by_bus: dict[str, str] = {}
    for capture in capture_devices:
        if capture.bus and capture.bus not in video_by_bus:
            video_by_bus[capture.bus] = capture.id
    devices: list[AudioDevice] = []
    for pcm in pcms:
        card = by_index.get(pcm.card)
        if card is None or not pcm.capture:
            continue
        usb_id, bus_path, formats = usb.get(card.index, (None, None, None))
        bus_path = bus_path or bus_from_long_name(card.long_name)
        devices.append(
            AudioDevice(
                id=audio_device_id(card, pcm.device, bus_path),
                card=card.index,
                device=pcm.device,
                name=card.name or pcm.name,
                alsa=f"hw:CARD={card.id},DEV={pcm.device}",
                usb_id=usb_id,
                bus_path=bus_path,
                video_device_id=video_by_bus.get(bus_path) if bus_path else None,
                channels=formats.channels or None if formats else None,
                rates=formats.rates or None if formats else None,
            )
        )
    return devices


# ---------------------------------------------------------------------------------------------------- I/O


def _read(root: Root, relative: str) -> str | None:
    try:
        return root.read_text(relative)
    except OSError:
        return None


def _card_usb(root: Root, index: int) -> tuple[str | None, str | None, StreamFormats | None]:
    usb_id = (_read(root, f"proc/asound/card{index}/usbid") or "").strip() or None
    bus_path = None
    link = root.path(f"sys/class/sound/card{index}/device")
    if os.path.islink(link):
        bus_path, _ = bus_from_device_path(Path(os.path.realpath(link)))
        if bus_path is not None and not bus_path.startswith("usb-"):
            bus_path = None
    stream = _read(root, f"proc/asound/card{index}/stream0")
    return usb_id, bus_path, parse_stream_capture(stream) if stream is not None else None


def scan_alsa(root: Root, capture_devices: Sequence[CaptureDevice] = ()) -> AlsaScan:
    """The capture devices ALSA has now (file reads only: no fork, cheap enough for every hot-plug)."""
    try:
        cards_text = root.read_text("proc/asound/cards")
        pcm_text = root.read_text("proc/asound/pcm")
    except OSError as exc:
        if not root.path("proc/asound").exists():
            # No sound support in this kernel, or no card ever registered: nothing to offer, no fault.
            return AlsaScan(reason=None)
        return AlsaScan(reason=describe_os_error(exc, "/proc/asound"))
    cards = parse_cards(cards_text)
    pcms = parse_pcm(pcm_text)
    capture_cards = {pcm.card for pcm in pcms if pcm.capture}
    usb = {card.index: _card_usb(root, card.index) for card in cards if card.index in capture_cards}
    return AlsaScan(build_audio_devices(cards, pcms, usb, capture_devices))
