"""What each Raspberry Pi SoC brings for cameras and video, and the agent's one rule for "is there a hardware
H.264 encoder?".

The SoC table is the one place that knows which chip is which:

* VideoCore IV/VI chips (BCM2835, BCM2836, BCM2837, BCM2711: Pi 0-4) have the VideoCore H.264 encoder
  (bcm2835-codec, ``/dev/video11``); libcamera's ``rpi/vc4`` pipeline allocates camera buffers from CMA and
  the VC4 ISP writes YUV420 rows aligned to 64 bytes.
* The BCM2712 (Pi 5) has no H.264 encoder (software libx264 only); libcamera's ``rpi/pisp`` pipeline
  allocates camera buffers from the ``system`` heap through the IOMMU (udev's 60-dma-heap.rules points
  vidbuf_cached at it there), and the PiSP back end writes rows aligned to 128 bytes.

:func:`hardware_h264_encoder` combines what the node scan saw with the SoC; the agent publishes its answer
(``GET /api/v1/info`` → ``capabilities.hardware_h264_encoder``) and hands the same answer to the streams.
"""

from __future__ import annotations

from typing import Final

VIDEOCORE_SOCS: Final = frozenset({"BCM2835", "BCM2836", "BCM2837", "BCM2711"})
PISP_SOCS: Final = frozenset({"BCM2712"})


def _videocore(soc: str | None) -> bool | None:
    """True for a VideoCore IV/VI chip (Pi 0-4), False for a Pi 5 chip, None for an unknown SoC."""
    if soc in VIDEOCORE_SOCS:
        return True
    if soc in PISP_SOCS:
        return False
    return None


def soc_has_h264_encoder(soc: str | None) -> bool | None:
    """What the SoC alone says: True on Pi 0-4, False on Pi 5, None when the SoC is unknown."""
    return _videocore(soc)


def camera_buffers_from_cma(soc: str | None) -> bool | None:
    """True on Pi 0-4 (libcamera allocates from ``linux,cma``), False on Pi 5 (``system`` heap), else None."""
    return _videocore(soc)


def camera_isp_is_pisp(soc: str | None, hardware_h264_encoder: bool | None) -> bool:
    """Whether the camera's frames come from the Pi 5's PiSP (else the VC4 ISP). An unknown SoC is told
    apart by the encoder: only VideoCore chips have one, and a newer chip than this table is PiSP-like."""
    videocore = _videocore(soc)
    if videocore is None:
        return not hardware_h264_encoder
    return not videocore


def hardware_h264_encoder(encoder_node: bool | None, soc: str | None) -> bool | None:
    """The agent's one answer to "can this Pi encode H.264 in hardware?".

    ``encoder_node`` is what the V4L2 node scan found: True when the bcm2835-codec encode node exists, False
    when the nodes were listed and it is not among them, None when no node list could be read at all.

    The node is the truth when the nodes could be listed: it is the driver the publishers would open, and a
    Pi 4 whose codec overlay is off (or whose kernel lacks the driver) has no encoder whatever its SoC. Only
    when the nodes could not be listed does the SoC answer (Pi 0-4 yes, Pi 5 no, unknown: None).
    """
    if encoder_node is not None:
        return encoder_node
    return soc_has_h264_encoder(soc)
