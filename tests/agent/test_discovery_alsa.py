"""ALSA capture discovery (discovery/alsa.py): the parsers on real captures, and a fixture tree read as /."""

from __future__ import annotations

import os
from pathlib import Path

from pi_stream_agent.discovery.alsa import (
    SoundCard,
    build_audio_devices,
    bus_from_long_name,
    parse_arecord_list,
    parse_cards,
    parse_pcm,
    parse_stream_capture,
    scan_alsa,
)
from pi_stream_agent.discovery.v4l2 import CaptureDevice
from pi_stream_agent.rootfs import Root
from tests.agent.helpers import fixture_text

# The kernel's formats (sound/core/init.c card_info_read, sound/core/pcm.c snd_pcm_proc_read) for an MS2109
# card in port 1.3 of a Pi 4 beside the Pi's headphone card: the simulated card's layout.
MS2109_CARDS = (
    " 0 [Headphones     ]: bcm2835_headpho - bcm2835 Headphones\n"
    "                      bcm2835 Headphones\n"
    " 1 [MS2109         ]: USB-Audio - MS2109\n"
    "                      MacroSilicon MS2109 at usb-0000:01:00.0-1.3, high speed\n"
)
MS2109_PCM = (
    "00-00: bcm2835 Headphones : bcm2835 Headphones : playback 8\n01-00: USB Audio : USB Audio : capture 1\n"
)
MS2109_STREAM = (
    "MacroSilicon MS2109 at usb-0000:01:00.0-1.3, high speed : USB Audio\n\n"
    "Capture:\n  Status: Stop\n  Interface 3\n    Altset 1\n    Format: S16_LE\n    Channels: 2\n"
    "    Endpoint: 0x82 (2 IN) (ASYNC)\n    Rates: 48000\n    Bits: 16\n"
)


def test_cards_from_a_real_listing_with_a_cut_long_name() -> None:
    cards = parse_cards(fixture_text("alsa/cards_usb_pnp_sound_device_hacksaw.txt"))
    assert [(c.index, c.id, c.driver, c.name) for c in cards] == [
        (0, "Device", "USB-Audio", "USB PnP Sound Device"),
        (1, "ALSA", "bcm2835", "bcm2835 ALSA"),
    ]
    # "… at usb-bcm2708_usb-1.5, full spee": cut, but the bus path before the comma is whole.
    assert bus_from_long_name(cards[0].long_name) == "usb-bcm2708_usb-1.5"
    assert bus_from_long_name(cards[1].long_name) is None


def test_arecord_lists_capture_and_aplay_lists_none() -> None:
    capture = parse_arecord_list(fixture_text("alsa/arecord_l_usb_sound_card_rpi_forum18174.txt"))
    assert [(d.card, d.device, d.name, d.capture) for d in capture] == [(1, 0, "USB Audio", True)]
    for name in (
        "aplay_l_pi4_playback_only_raspi_config197.txt",
        "aplay_l_pi3_vc4hdmi_bcm2835_sonaremin3.txt",
    ):
        devices = parse_arecord_list(fixture_text(f"alsa/{name}"))
        assert devices and not any(d.capture for d in devices)


def test_an_ms2109_hdmi_cards_sound_as_arecord_lists_it() -> None:
    """A real MS2109 capture card's sound (restreamer#500): arecord -l gives its capture device, and the ALSA
    name the agent gives ffmpeg for it is one arecord -L lists for that card."""
    listed = parse_arecord_list(fixture_text("alsa/arecord_l_ms2109_hdmi_card_restreamer500.txt"))
    assert [(d.card, d.device, d.id, d.name, d.capture) for d in listed] == [
        (1, 0, "USB Audio", "USB Audio", True)
    ]
    card = SoundCard(index=1, id="MS2109", driver="USB-Audio", name="MS2109", long_name="")
    (device,) = build_audio_devices([card], listed, {})
    names = fixture_text("alsa/arecord_L_ms2109_hdmi_card_restreamer500.txt").splitlines()
    assert device.alsa == "hw:CARD=MS2109,DEV=0" and device.alsa in names
    assert device.id == "alsa-MS2109"  # no bus path known here: the card id, stable in hw:CARD=…


def test_pcm_and_stream_formats() -> None:
    pcms = parse_pcm(MS2109_PCM)
    assert [(p.card, p.device, p.playback, p.capture) for p in pcms] == [
        (0, 0, True, False),
        (1, 0, False, True),
    ]
    formats = parse_stream_capture(MS2109_STREAM)
    assert (formats.channels, formats.rates) == ([2], [48000])
    continuous = parse_stream_capture(
        "X\n\nCapture:\n    Channels: 1\n    Rates: 8000 - 48000 (continuous)\n"
    )
    assert continuous.rates == [8000, 16000, 22050, 32000, 44100, 48000]
    assert parse_stream_capture("X\n\nPlayback:\n    Channels: 2\n").channels == []


def _tree(base: Path) -> None:
    asound = base / "proc/asound"
    (asound / "card1").mkdir(parents=True)
    (asound / "cards").write_text(MS2109_CARDS)
    (asound / "pcm").write_text(MS2109_PCM)
    (asound / "card1/usbid").write_text("534d:2109\n")
    (asound / "card1/stream0").write_text(MS2109_STREAM)
    interface = (
        base
        / "sys/devices/platform/scb/fd500000.pcie/pci0000:00/0000:00:00.0/0000:01:00.0/usb1/1-1.3/1-1.3:1.2"
    )
    interface.mkdir(parents=True)
    (interface.parent / "devpath").write_text("1.3\n")
    (base / "sys/class/sound/card1").mkdir(parents=True)
    os.symlink(interface, base / "sys/class/sound/card1/device")


def test_scan_matches_the_cards_video_device(tmp_path: Path) -> None:
    _tree(tmp_path)
    video = CaptureDevice(
        id="usb-0000:01:00.0-1.3",
        name="USB Video",
        bus="usb-0000:01:00.0-1.3",
        path="/dev/video0",
        stable_path=None,
        driver="uvcvideo",
    )
    scan = scan_alsa(Root(tmp_path), [video])
    assert scan.reason is None
    assert [d.to_json() for d in scan.devices] == [
        {
            "id": "alsa-usb-0000:01:00.0-1.3",
            "card": 1,
            "device": 0,
            "name": "MS2109",
            "alsa": "hw:CARD=MS2109,DEV=0",
            "usb_id": "534d:2109",
            "bus_path": "usb-0000:01:00.0-1.3",
            "video_device_id": "usb-0000:01:00.0-1.3",
            "channels": [2],
            "rates": [48000],
        }
    ]
    # A stand-alone microphone: no video device on that bus.
    assert scan_alsa(Root(tmp_path)).devices[0].video_device_id is None


def test_no_sound_support_is_not_a_fault(tmp_path: Path) -> None:
    scan = scan_alsa(Root(tmp_path))
    assert (scan.devices, scan.reason) == ([], None)
