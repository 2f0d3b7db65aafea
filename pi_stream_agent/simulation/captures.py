"""The real Raspberry Pi captures the simulated Pi is built from, embedded so an installed agent has them.

Each constant is a verbatim copy of one file in the shared ``fixtures/pi/`` folder (named by its first
argument), minus the ``# source/board/note`` header lines. :func:`capture_text` prefers the folder when it
is present (a development checkout) and falls back to these copies (an installed agent ships without it);
a test checks the two stay identical.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Capture:
    """One captured file: ``relative`` is its path under ``fixtures/pi/``."""

    relative: str
    source: str
    board: str
    text: str


def strip_header(raw: str) -> str:
    """The capture text without its leading ``# `` header lines (the fixtures' own convention)."""
    lines = raw.splitlines(keepends=True)
    start = 0
    while start < len(lines) and lines[start].startswith("# "):
        start += 1
    return "".join(lines[start:])


def default_fixtures_dir() -> Path | None:
    """``$PI_STREAM_SHARED/fixtures/pi`` or the shared folder beside the repository, when it exists."""
    shared = os.environ.get("PI_STREAM_SHARED")
    # parents: [0] simulation, [1] pi_stream_agent, [2] the repository, [3] its parent (holds ``shared``).
    candidate = (
        (Path(shared) if shared else Path(__file__).resolve().parents[3] / "shared") / "fixtures" / "pi"
    )
    return candidate if candidate.is_dir() else None


def capture_text(capture: Capture, fixtures: Path | None) -> str:
    """The capture's text, read from ``fixtures`` when that folder holds it, else the embedded copy."""
    if fixtures is not None:
        try:
            return strip_header((fixtures / capture.relative).read_text(encoding="utf-8"))
        except OSError:
            pass  # a partial or moved fixtures folder: the embedded copy is the same text
    return capture.text


CPUINFO_PI4 = Capture(
    "cpuinfo/pi4b_rev1.1_a03111_armv7l_4.19.txt",
    source=(
        "https://github.com/ashburndev/raspinfo/blob/0f20bee4a03d6e7d4ce6b423b93901c7238eb"
        "5b4/dphrpi901/dphrpi901-raspinfo.txt"
    ),
    board=("Raspberry Pi 4 Model B Rev 1.1 (Revision a03111, 1GB), kernel 4.19.118-v7l+"),
    text=(
        "processor\t: 0\n"
        "model name\t: ARMv7 Processor rev 3 (v7l)\n"
        "BogoMIPS\t: 180.00\n"
        "Features\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 "
        "lpae evtstrm crc32 \n"
        "CPU implementer\t: 0x41\n"
        "CPU architecture: 7\n"
        "CPU variant\t: 0x0\n"
        "CPU part\t: 0xd08\n"
        "CPU revision\t: 3\n"
        "\n"
        "processor\t: 1\n"
        "model name\t: ARMv7 Processor rev 3 (v7l)\n"
        "BogoMIPS\t: 180.00\n"
        "Features\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 "
        "lpae evtstrm crc32 \n"
        "CPU implementer\t: 0x41\n"
        "CPU architecture: 7\n"
        "CPU variant\t: 0x0\n"
        "CPU part\t: 0xd08\n"
        "CPU revision\t: 3\n"
        "\n"
        "processor\t: 2\n"
        "model name\t: ARMv7 Processor rev 3 (v7l)\n"
        "BogoMIPS\t: 180.00\n"
        "Features\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 "
        "lpae evtstrm crc32 \n"
        "CPU implementer\t: 0x41\n"
        "CPU architecture: 7\n"
        "CPU variant\t: 0x0\n"
        "CPU part\t: 0xd08\n"
        "CPU revision\t: 3\n"
        "\n"
        "processor\t: 3\n"
        "model name\t: ARMv7 Processor rev 3 (v7l)\n"
        "BogoMIPS\t: 180.00\n"
        "Features\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 "
        "lpae evtstrm crc32 \n"
        "CPU implementer\t: 0x41\n"
        "CPU architecture: 7\n"
        "CPU variant\t: 0x0\n"
        "CPU part\t: 0xd08\n"
        "CPU revision\t: 3\n"
        "\n"
        "Hardware\t: BCM2835\n"
        "Revision\t: a03111\n"
        "Serial\t\t: 100000009f0f3244\n"
        "Model\t\t: Raspberry Pi 4 Model B Rev 1.1\n"
    ),
)

MEMINFO_PI4_4GB = Capture(
    "meminfo/pi4_4gb_rpicam598_cmafree303732.txt",
    source=(
        "https://github.com/raspberrypi/rpicam-apps/issues/598 (camera-bug-report, "
        "HasanKhan-1, 'Camera not loading in properly when using openCV')"
    ),
    board=(
        "Raspberry Pi 4 (4GB; bufinfo shows fec00000.v3d = BCM2711), arm64, 6.x kernel "
        "(SecPageTables present)"
    ),
    text=(
        "MemTotal:        3884232 kB\n"
        "MemFree:          750252 kB\n"
        "MemAvailable:    1569004 kB\n"
        "Buffers:           17900 kB\n"
        "Cached:          1269836 kB\n"
        "SwapCached:            0 kB\n"
        "Active:          2324796 kB\n"
        "Inactive:         219088 kB\n"
        "Active(anon):    1586040 kB\n"
        "Inactive(anon):    97568 kB\n"
        "Active(file):     738756 kB\n"
        "Inactive(file):   121520 kB\n"
        "Unevictable:      316100 kB\n"
        "Mlocked:               0 kB\n"
        "SwapTotal:        102396 kB\n"
        "SwapFree:         102396 kB\n"
        "Zswap:                 0 kB\n"
        "Zswapped:              0 kB\n"
        "Dirty:               608 kB\n"
        "Writeback:             0 kB\n"
        "AnonPages:       1572032 kB\n"
        "Mapped:           492808 kB\n"
        "Shmem:            427268 kB\n"
        "KReclaimable:      87352 kB\n"
        "Slab:             138924 kB\n"
        "SReclaimable:      87352 kB\n"
        "SUnreclaim:        51572 kB\n"
        "KernelStack:       11400 kB\n"
        "PageTables:        36728 kB\n"
        "SecPageTables:         0 kB\n"
        "NFS_Unstable:          0 kB\n"
        "Bounce:                0 kB\n"
        "WritebackTmp:          0 kB\n"
        "CommitLimit:     2044512 kB\n"
        "Committed_AS:    8273356 kB\n"
        "VmallocTotal:   259653632 kB\n"
        "VmallocUsed:       19576 kB\n"
        "VmallocChunk:          0 kB\n"
        "Percpu:              752 kB\n"
        "CmaTotal:         524288 kB\n"
        "CmaFree:          303732 kB\n"
    ),
)

BUFINFO_PI4_ROWS = Capture(
    "dmabuf/bufinfo_pi4_6.x_vcsmcma_v3d_partial_rpicam598.txt",
    source=("https://github.com/raspberrypi/rpicam-apps/issues/598 (camera-bug-report, HasanKhan-1)"),
    board=("Raspberry Pi 4 (4GB), 6.x kernel, desktop + OpenCV + camera"),
    text=(
        "00622592\t00000000\t00080005\t00000009\tvideobuf2_dma_contig\t00000080\t<none>\n"
        "\twrite fence:drm_sched v3d_tfu seq 12334 signalled\n"
        "\tAttached Devices:\n"
        "\tgpu\n"
        "\tfec00000.v3d\n"
        "Total 2 devices attached\n"
        "\n"
        "00622592\t00000000\t00080005\t00000009\tvideobuf2_dma_contig\t00000079\t<none>\n"
        "\twrite fence:drm_sched v3d_tfu seq 12841 signalled\n"
        "\tAttached Devices:\n"
        "\tgpu\n"
        "\tfec00000.v3d\n"
        "Total 2 devices attached\n"
        "\n"
        "00622592\t00000000\t00080005\t00000009\tvideobuf2_dma_contig\t00000078\t<none>\n"
        "\twrite fence:drm_sched v3d_tfu seq 13087 signalled\n"
        "\tAttached Devices:\n"
        "\tgpu\n"
        "\tfec00000.v3d\n"
        "Total 2 devices attached\n"
        "\n"
        "00622592\t00000000\t00080005\t00000009\tvideobuf2_dma_contig\t00000077\t<none>\n"
        "\twrite fence:drm_sched v3d_tfu seq 12697 signalled\n"
        "\tAttached Devices:\n"
        "\tgpu\n"
        "\tfec00000.v3d\n"
        "Total 2 devices attached\n"
        "\n"
        "00622592\t00000000\t00080005\t00000009\tvideobuf2_dma_contig\t00000076\t<none>\n"
        "\twrite fence:drm_sched v3d_tfu seq 11935 signalled\n"
        "\tAttached Devices:\n"
        "\tgpu\n"
        "\tfec00000.v3d\n"
        "Total 2 devices attached\n"
        "\n"
        "00622592\t00000000\t00080005\t00000009\tvideobuf2_dma_contig\t00000075\t<none>\n"
        "\twrite fence:drm_sched v3d_tfu seq 12589 signalled\n"
        "\tAttached Devices:\n"
        "\tgpu\n"
        "\tfec00000.v3d\n"
        "Total 2 devices attached\n"
        "\n"
        "01048576\t00000002\t00080007\t00000001\tvc_sm_cma\t00000038\t<none>\n"
        "\tAttached Devices:\n"
        "Total 0 devices attached\n"
    ),
)

BUFINFO_6X_HEADER = Capture(
    "dmabuf/bufinfo_empty_6.1.21_rpicam573.txt",
    source=(
        "https://github.com/raspberrypi/rpicam-apps/issues/573 (camera-bug-report, "
        "TiJof, 'camera not detected')"
    ),
    board=(
        "Raspberry Pi (CmaTotal 512 MiB, arm64, kernel 6.1.21; media device 0 is rpivid "
        "=> Pi 4-class), no camera in use"
    ),
    text=(
        "** sudo cat /sys/kernel/debug/dma_buf/bufinfo **\n"
        "\n"
        "Dma-buf Objects:\n"
        "size    \tflags   \tmode    \tcount   \texp_name\tino     \tname\n"
        "\n"
        "Total 0 objects, 0 bytes\n"
        "\n"
        "** sudo cat /sys/kernel/debug/vcsm-cma/state **\n"
        "\n"
        "VC-ServiceHandle     000000002700e114\n"
        "\n"
        "Resources\n"
        "\n"
        "\n"
        "Total resource count:   0\n"
    ),
)

NET_DEV = Capture(
    "net/proc_net_dev_raspberrypi_eth0_rxdrops_weechat229_partial.txt",
    source=("https://github.com/weechat/scripts/pull/229 (weechatter, 2017-10-14, host nils@raspberrypi)"),
    board=("Raspberry Pi (model not stated; eth0 + wlan0, 2017 Raspbian)"),
    text=(
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    "
        "packets errs drop fifo colls carrier compressed\n"
        "  eth0: 138076103  148526    0 15408    0     0          0         0 13329944   "
        "69603    0    0    0     0       0          0\n"
        "    lo:       0       0    0    0    0     0          0         0        0      "
        " 0    0    0    0     0       0          0\n"
    ),
)

NET_WIRELESS = Capture(
    "net/proc_net_wireless_hankb_testdata.txt",
    source=(
        "https://github.com/HankB/pi_health/blob/c9624fd88d7de13567afe640119126b285f2ae4b/"
        "bash/test_data/proc_net_wireless.txt"
    ),
    board=("Raspberry Pi (brcmfmac wlan0), model not stated"),
    text=(
        "Inter-| sta-|   Quality        |   Discarded packets               | Missed | "
        "WE\n"
        " face | tus | link level noise |  nwid  crypt   frag  retry   misc | beacon | "
        "22\n"
        " wlan0: 0000   52.  -58.  -256        0      0      0   1122      0        0\n"
    ),
)

HWMON_THERMAL_PATHS = Capture(
    "sysfs/hwmon_rpi_volt_and_thermal_fixture_values.txt",
    source=(
        "public GitHub test fixture (code index id 62618327366) writing a fake sysfs "
        "tree; values mirror real Pi files"
    ),
    board=("Raspberry Pi (fixture; cpufreq max 1.8 GHz => Pi 4 rev 1.4+/CM4 at 1.8 GHz)"),
    text=(
        "sys/class/thermal/thermal_zone0/type = cpu-thermal\n"
        "sys/class/thermal/thermal_zone0/temp = 43800\n"
        "sys/class/hwmon/hwmon0/name = rpi_volt\n"
        "sys/class/hwmon/hwmon0/in0_lcrit_alarm = 0\n"
        "sys/devices/system/cpu/cpufreq/policy0/scaling_max_freq = 1800000\n"
        "sys/devices/system/cpu/cpufreq/policy0/cpuinfo_max_freq = 1800000\n"
    ),
)

UNDER_VOLTAGE_LINES = Capture(
    "sysfs/kernel_log_undervoltage_lines.txt",
    source=(
        "https://github.com/mschlenstedt/Loxberry/issues/952 (kern.log line quoted, "
        "2019); format string from raspberrypi/linux drivers/hwmon/raspberrypi-hwmon.c"
    ),
    board=("Raspberry Pi (model not stated, 2019 Raspbian kernel)"),
    text=("Under-voltage detected! (0x00050005)\nVoltage normalised (0x%08x)\n"),
)

V4L2_PI4_DEVICES = Capture(
    "v4l2/pi4_list_devices_unicam_isp_codec_camera_streamer3.txt",
    source=("https://github.com/ayufan/camera-streamer/issues/3 (RobeeeJay, 2022-07-12)"),
    board=("Raspberry Pi 4 (unicam at fe801000.csi = BCM2711), 5.15-era Raspberry Pi OS, v2 camera (imx219)"),
    text=(
        "bcm2835-codec-decode (platform:bcm2835-codec):\n"
        "\t/dev/video10\n"
        "\t/dev/video11\n"
        "\t/dev/video12\n"
        "\t/dev/video18\n"
        "\t/dev/video31\n"
        "\t/dev/media0\n"
        "\n"
        "bcm2835-isp (platform:bcm2835-isp):\n"
        "\t/dev/video13\n"
        "\t/dev/video14\n"
        "\t/dev/video15\n"
        "\t/dev/video16\n"
        "\t/dev/video20\n"
        "\t/dev/video21\n"
        "\t/dev/video22\n"
        "\t/dev/video23\n"
        "\t/dev/media1\n"
        "\t/dev/media2\n"
        "\n"
        "unicam (platform:fe801000.csi):\n"
        "\t/dev/video0\n"
        "\t/dev/video1\n"
        "\t/dev/media3\n"
    ),
)

CSI_IMX708_VERBOSE = Capture(
    "v4l2/list_cameras_v_pi5_imx708_af_indiallsky.txt",
    source=(
        "https://github.com/aaronwmorris/indi-allsky/blob/add4c572399667f49f3d7a56dfa6064fe1308f8d/docs/wiki/Camera-Information.md"
    ),
    board=("Raspberry Pi 5, imx708 (Camera Module 3 class, Arducam-made) with autofocus and HdrMode"),
    text=(
        "0 : imx708 [4608x2592 10-bit RGGB] (/base/axi/pcie@1000120000/rp1/i2c@88000/imx708@1a)\n"
        "    Modes: 'SRGGB10_CSI2P' : 1536x864 [120.13 fps - (768, 432)/3072x1728 crop]\n"
        "                             2304x1296 [56.03 fps - (0, 0)/4608x2592 crop]\n"
        "                             4608x2592 [14.35 fps - (0, 0)/4608x2592 crop]\n"
        "\n"
        "    Available controls for 4608x2592 SRGGB10_CSI2P mode:\n"
        "    ----------------------------------------------------\n"
        "    AeConstraintMode : [0..3]\n"
        "    AeEnable : [false..true]\n"
        "    AeExposureMode : [0..3]\n"
        "    AeFlickerMode : [0..1]\n"
        "    AeFlickerPeriod : [100..1000000]\n"
        "    AeMeteringMode : [0..3]\n"
        "    AfMetering : [0..1]\n"
        "    AfMode : [0..2]\n"
        "    AfPause : [0..2]\n"
        "    AfRange : [0..2]\n"
        "    AfSpeed : [0..1]\n"
        "    AfTrigger : [0..1]\n"
        "    AfWindows : [(0, 0)/0x0..(65535, 65535)/65535x65535]\n"
        "    AnalogueGain : [1.122807..16.000000]\n"
        "    AnalogueGainMode : [0..1]\n"
        "    AwbEnable : [false..true]\n"
        "    AwbMode : [0..7]\n"
        "    Brightness : [-1.000000..1.000000]\n"
        "    CnnEnableInputTensor : [false..true]\n"
        "    ColourGains : [0.000000..32.000000]\n"
        "    ColourTemperature : [100..100000]\n"
        "    Contrast : [0.000000..32.000000]\n"
        "    ExposureTime : [26..220416802]\n"
        "    ExposureTimeMode : [0..1]\n"
        "    ExposureValue : [-8.000000..8.000000]\n"
        "    FrameDurationLimits : [69669..220535845]\n"
        "    HdrMode : [0..4]\n"
        "    LensPosition : [0.000000..15.000000]\n"
        "    NoiseReductionMode : [0..4]\n"
        "    Saturation : [0.000000..32.000000]\n"
        "    ScalerCrop : [(0, 0)/51x39..(0, 0)/4608x2592]\n"
        "    Sharpness : [0.000000..16.000000]\n"
        "    StatsOutputEnable : [false..true]\n"
        "    SyncFrames : [1..1000000]\n"
        "    SyncMode : [0..2]\n"
    ),
)

CARD_CONTROLS = Capture(
    "v4l2/list_ctrls_menus_usb_video_capture_card_virtio_linuxmedia2025.txt",
    source=(
        "linux-media list, Message-ID <DAPQ9L3FCLIF.24FIDLQST2S1O@gmail.com> (2025-06-18), "
        "v4l2-ctl --all controls part"
    ),
    board=("USB capture device 'usb video: usb video' (MJPG 1280x720) seen through virtio-media"),
    text=(
        "\n"
        "User Controls\n"
        "\n"
        "                     brightness 0x00980900 (int)    : min=-128 max=127 step=1 default=-11 "
        "value=-11\n"
        "                       contrast 0x00980901 (int)    : min=0 max=255 step=1 default=148 value=148\n"
        "                     saturation 0x00980902 (int)    : min=0 max=255 step=1 default=180 value=180\n"
        "                            hue 0x00980903 (int)    : min=-128 max=127 step=1 default=0 value=0\n"
    ),
)

ALL_CAPTURES: tuple[Capture, ...] = (
    CPUINFO_PI4,
    MEMINFO_PI4_4GB,
    BUFINFO_PI4_ROWS,
    BUFINFO_6X_HEADER,
    NET_DEV,
    NET_WIRELESS,
    HWMON_THERMAL_PATHS,
    UNDER_VOLTAGE_LINES,
    V4L2_PI4_DEVICES,
    CSI_IMX708_VERBOSE,
    CARD_CONTROLS,
)
