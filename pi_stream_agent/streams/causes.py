"""Why a publisher pipeline ended: exit codes, signals and the last stderr lines → :class:`ExitCause`.

Pure: no I/O, never raises. Called once per exit, so clarity wins over speed here.

Order of the decision (first that applies wins):

1. ``stalled``: the supervisor killed a frozen pipeline. Checked before ``requested`` because a stall
   kill *is* a requested stop (``ExitInfo.requested`` is True for stop/restart/stall), and the user must
   read "stalled", not "stopped". Log patterns still fill in the detail (a stalled rpicam-vid often
   logged "Camera frontend has timed out!" while retrying on its own).
2. ``requested``: stopped on request → STOPPED, whatever the log says (a SIGTERMed ffmpeg prints
   error-looking lines such as "Conversion failed!").
3. Exit status 127/126 of any process → EXECUTABLE_MISSING. The process layer reports a spawn failure
   (``FileNotFoundError``/``PermissionError`` from exec) as returncode 127/126 with a log line naming the
   program, the same numbers a shell uses. Neither rpicam-vid (exits 255 on errors) nor ffmpeg (1, or
   255 after a signal) ever exits 127, so the number alone is certain; it is checked before the log
   because the partner process may have logged unrelated errors when its pipe peer never started.
4. Log patterns, most specific first, over the last :data:`WINDOW` meaningful lines (see
   :data:`_RULES` for each string and where it comes from).
5. A signal the agent did not send, on the process that died first → KILLED ("crashed (SIGSEGV)"),
   including one ffmpeg caught and exited on ("Exiting normally, received signal 15.", exit 255).
6. Otherwise UNKNOWN, with the last error-looking line as evidence.

Decided against: v4l2 ``select() timeout``. That text comes from v4l2-ctl/fswebcam/mjpg-streamer;
ffmpeg's v4l2 input blocks in ``VIDIOC_DQBUF`` (libavdevice/v4l2.c ``mmap_read_frame``) and rpicam-vid
uses libcamera, so no process we run prints it. A USB card that stops delivering frames shows up as a
stall instead; one that is unplugged prints ``ioctl(VIDIOC_DQBUF): No such device`` (DEVICE_GONE).
Not matched either: the bare words ``EBUSY``/``ENODEV``/``ENOMEM``; our programs print strerror() text
("Device or resource busy", "No such device", "Cannot allocate memory"), which is what is matched.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass

from pi_stream_agent.streams.model import ExitCause, ExitInfo, ProcessExit

# How many meaningful lines (noise removed, see _is_noise) are searched for a cause. Large enough for
# the longest real failure sequence seen (libcamera's 4-line frontend-timeout block followed by
# rpicam-vid's own message and ffmpeg's 3-line exit), small enough that a warning printed hours
# earlier in a long run rarely outranks the error that ended it.
WINDOW = 12

_DETAIL_MAX = 140

# The process layer reports a program that could not be exec'd like a shell does.
EXIT_NOT_FOUND = 127
EXIT_NOT_EXECUTABLE = 126

# Where each program comes from, for the "install it" hint.
_PACKAGES = {"rpicam-vid": "rpicam-apps", "libcamera-vid": "libcamera-apps", "ffmpeg": "ffmpeg"}

# Signals that mean the program itself crashed rather than being told to stop.
_CRASH_SIGNALS = frozenset(
    {signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT, signal.SIGSYS}
)


@dataclass(frozen=True)
class Classification:
    cause: ExitCause
    summary: str  # one line a person understands
    evidence: str | None = None  # the log line that decided it


@dataclass(frozen=True)
class _Rule:
    cause: ExitCause
    text: str  # what a person reads; the cleaned log line follows in parentheses
    needles: tuple[str, ...]  # lower-case substrings, any of which matches
    also: tuple[str, ...] = ()  # lower-case substrings that must all be present as well
    pattern: re.Pattern[str] | None = None  # used instead of needles when set

    def matches(self, lower: str) -> bool:
        if self.also and not all(part in lower for part in self.also):
            return False
        if self.pattern is not None:
            return self.pattern.search(lower) is not None
        return any(needle in lower for needle in self.needles)


_BUSY = "the camera is in use by another program"
_GONE = "the capture device is not there any more (unplugged?)"
_CMA = "not enough contiguous memory (CMA) for the camera buffers"
_RTSP_REFUSED = "the RTSP server refused the connection (is MediaMTX running?)"
_RTSP_REJECTED = "the RTSP server rejected the stream"
_RTSP_BROKEN = "the connection to the RTSP server broke (server stopped or restarted?)"

# Most specific first. The source of each string (and of the real log lines in the tests):
_RULES: tuple[_Rule, ...] = (
    # --- device busy -------------------------------------------------------------------------------
    # libcamera camera.cpp, seen with rpicam "failed to acquire camera" (Gordon999/Pi_LIbCamera_GUI#4).
    _Rule(ExitCause.DEVICE_BUSY, _BUSY, ("pipeline handler in use by another process",)),
    # rpicam-apps core/rpicam_app.cpp OpenCamera(): "failed to acquire camera " + id.
    _Rule(ExitCause.DEVICE_BUSY, _BUSY, ("failed to acquire camera",)),
    # strerror(EBUSY): libcamera V4L2 (rpicam-apps#496), ffmpeg v4l2 (homebridge-camera-ffmpeg#1401).
    _Rule(ExitCause.DEVICE_BUSY, _BUSY, ("device or resource busy",)),
    # --- device gone -------------------------------------------------------------------------------
    # libcamera pipeline_base.cpp (rpicam-apps#660, picamera2#883): the CSI camera stopped sending
    # frames; Raspberry Pi engineers name loose/long ribbon cables, interference and power as causes.
    _Rule(
        ExitCause.DEVICE_GONE,
        "the camera stopped sending frames (check the ribbon cable and the power supply)",
        ("camera frontend has timed out",),
    ),
    # strerror(ENODEV) from VIDIOC_DQBUF after a USB unplug (libavdevice/v4l2.c mmap_read_frame).
    _Rule(ExitCause.DEVICE_GONE, _GONE, ("no such device",)),
    # ffmpeg opening a /dev node that is not there (libavdevice/v4l2.c device_open).
    _Rule(ExitCause.DEVICE_GONE, _GONE, ("no such file or directory",), also=("/dev/",)),
    # --- camera not found --------------------------------------------------------------------------
    # rpicam-apps core/rpicam_app.cpp OpenCamera() (rpicam-apps#828, mediamtx#3715).
    _Rule(ExitCause.CAMERA_NOT_FOUND, "libcamera found no camera", ("no cameras available",)),
    _Rule(
        ExitCause.CAMERA_NOT_FOUND,
        "the configured camera is not connected",
        ("selected camera is not available", "failed to find camera"),
    ),
    # --- buffer allocation -------------------------------------------------------------------------
    # rpicam-apps core/dma_heaps.cpp (rpicam-apps#707).
    _Rule(ExitCause.BUFFER_ALLOCATION, _CMA, ("dmaheap allocation failure",)),
    # strerror(ENOMEM): libcamera REQBUFS (rpicam-apps#555, #718; picamera2#46, #422, #972).
    _Rule(ExitCause.BUFFER_ALLOCATION, _CMA, ("cannot allocate memory",)),
    # "failed to allocate capture buffers for stream" (rpicam_app.cpp), "Failed to allocate buffers".
    _Rule(ExitCause.BUFFER_ALLOCATION, _CMA, ("failed to allocate",)),
    # --- RTSP server -------------------------------------------------------------------------------
    # libavformat/tcp.c, the publish URL's host name (ffmpeg 5.1 output, see tests).
    _Rule(
        ExitCause.RTSP_UNREACHABLE,
        "the RTSP server's host name does not resolve",
        ("failed to resolve hostname",),
    ),
    # libavformat/network.c "Connection to %s failed: %s" (mediamtx#605, #3348; ffmpeg 5.1 here).
    _Rule(ExitCause.RTSP_UNREACHABLE, _RTSP_REFUSED, ("connection refused",)),
    _Rule(ExitCause.RTSP_UNREACHABLE, "the RTSP server's host is unreachable", ("no route to host",)),
    _Rule(ExitCause.RTSP_UNREACHABLE, "the RTSP server did not answer", ("connection timed out",)),
    # libavformat/rtsp.c: the server answered ANNOUNCE/SETUP/RECORD with an error status
    # (mediamtx#524, #963, #2717).
    _Rule(
        ExitCause.RTSP_UNREACHABLE,
        _RTSP_REJECTED,
        (),
        pattern=re.compile(r"server returned [45]|method [a-z_]+ failed: [45]\d\d"),
    ),
    # The server went away while publishing (mediamtx#2994, #1616). ffmpeg 5.1 (Debian 12) says
    # "av_interleaved_write_frame(): Broken pipe"; 7.1 (Debian 13) "[vost#0:0/libx264 @ 0x…] Error
    # submitting a packet to the muxer: Broken pipe" (tests/fixtures/ffmpeg/<version>/publisher_server_gone*).
    _Rule(
        ExitCause.RTSP_UNREACHABLE,
        _RTSP_BROKEN,
        (),
        pattern=re.compile(
            r"(av_interleaved_write_frame\(\)|error writing trailer of rtsp|"
            r"error submitting a packet to the muxer).*(broken pipe|connection reset by peer)"
        ),
    ),
    # ffmpeg 7.1 first says what it read on the RTSP connection when the server closed it (same captures).
    _Rule(ExitCause.RTSP_UNREACHABLE, _RTSP_BROKEN, ("failed reading rtsp data",)),
    # --- encoder -----------------------------------------------------------------------------------
    # h264_v4l2m2m finds no encoder node, e.g. on a Pi 5 (ffmpeg 5.1 here; simplest_ffmpeg_video_encoder#3).
    _Rule(
        ExitCause.ENCODER_ERROR,
        "no hardware H.264 encoder is available",
        ("could not find a valid device",),
    ),
    # rpicam-apps encoder/h264_encoder.cpp opening /dev/video11 (iizukanao/picam#208 on a Pi 5).
    _Rule(
        ExitCause.ENCODER_ERROR,
        "the hardware H.264 encoder cannot be opened",
        ("failed to open v4l2 h264 encoder",),
    ),
    # rpicam-apps on a Pi 5 without --codec libav (rpicam-apps#672).
    _Rule(
        ExitCause.ENCODER_ERROR,
        "no H.264 encoder is available",
        ("unable to find an appropriate h.264 codec",),
    ),
    # libx264 refusing odd sizes or unknown presets (ffmpeg 5.1 here; drawbot#250).
    _Rule(
        ExitCause.ENCODER_ERROR,
        "the encoder rejected the settings",
        ("not divisible by 2", "error setting preset/tune", "can't configure encoder"),
    ),
    # libavformat/mux.c: the output format cannot carry the codec (ffmpeg 5.1 here).
    _Rule(
        ExitCause.ENCODER_ERROR,
        "the output format cannot carry this codec",
        ("could not find tag for codec",),
    ),
    # fftools/ffmpeg.c generic message after any encoder open failure; rpicam-apps libav encoder
    # "libav: unable to open video codec" (rpicam-apps#643).
    _Rule(
        ExitCause.ENCODER_ERROR,
        "the video encoder failed to start",
        ("error while opening encoder", "unable to open video codec"),
    ),
)

# libcamera: "[0:00:52.243006594] [982] ERROR V4L2 v4l2_videodevice.cpp:1047 <message>"
_LIBCAMERA_PREFIX = re.compile(
    r"^(?:\[\d+:\d\d:\d\d\.\d+\]\s+\[\d+\]\s+)?(?:DEBUG|INFO|WARN|ERROR|FATAL)\s+\S+\s+\S+\.\w+:\d+\s+"
)
# ffmpeg: "[tcp @ 0x558c67cbb780] <message>"
_FFMPEG_PREFIX = re.compile(r"^\[[^\]@]+ @ (?:0x)?[0-9a-fA-F]+\]\s*")
# rpicam-apps: "ERROR: *** <message> ***"
_RPICAM_WRAPPED = re.compile(r"^ERROR: \*\*\*\s*(.*?)\s*\*\*\*$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# ffmpeg after catching SIGINT/SIGTERM/SIGQUIT: "Exiting normally, received signal 15."
_RECEIVED_SIGNAL = re.compile(r"received signal (\d+)")

_ERROR_WORDS = (
    "error",
    "fail",
    "cannot",
    "can't",
    "could not",
    "unable",
    "invalid",
    "not found",
    "no such",
    "denied",
    "refused",
    "timed out",
    "***",
)
# libx264 prints a dozen statistics lines when it closes; only its error lines carry information.
_X264_ERROR_WORDS = ("error", "not divisible", "fail", "invalid")


def classify_exit(exit: ExitInfo, *, stalled: bool = False) -> Classification:
    """Why ``exit`` happened, as a cause, a one-line summary and the log line that decided it."""
    lines = _meaningful_lines(exit)
    if stalled:
        found = _match(lines)
        if found is not None:
            rule, line = found
            return Classification(ExitCause.STALLED, f"frames stopped: {_summary(rule, line)}", line.raw)
        return Classification(
            ExitCause.STALLED,
            "frames stopped arriving although the publisher was running; it was restarted",
            _last_error_line(lines),
        )
    if exit.requested:
        return Classification(ExitCause.STOPPED, "stopped on request")

    missing = _missing_executable(exit, lines)
    if missing is not None:
        return missing

    found = _match(lines)
    if found is not None:
        rule, line = found
        return Classification(rule.cause, _summary(rule, line), line.raw)

    killed = _killed(exit, lines)
    if killed is not None:
        return killed
    return _unknown(exit, lines)


# ----------------------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class _Line:
    raw: str  # as logged (with the "<process>: " tag), returned as evidence
    body: str  # without the tag
    lower: str  # body in lower case, for matching
    process: str | None  # the tag's process name, if tagged


def _meaningful_lines(exit: ExitInfo) -> list[_Line]:
    """The log tail without noise, oldest first, stripped of colour codes and surrounding blanks."""
    names = [process.name for process in exit.processes]
    result: list[_Line] = []
    for raw in exit.log_tail:
        line = (_ANSI.sub("", raw) if "\x1b" in raw else raw).strip()
        body, owner = line, None
        for name in names:
            # The tag LogRing.text_tail puts in front; only the pipeline's own names count, so a
            # message such as "/dev/video0: Device or resource busy" keeps its device name.
            if line.startswith(name + ": "):
                body, owner = line[len(name) + 2 :].lstrip(), name
                break
        if body and not _is_noise(body):
            result.append(_Line(line, body, body.lower(), owner))
    return result


def _is_noise(body: str) -> bool:
    if body.startswith(("Last message repeated", "frame=", "size=", "Conversion failed!")):
        return True
    if body.startswith("video:") and "kB" in body:  # ffmpeg's final size summary
        return True
    if body.startswith("[libx264 @"):
        lower = body.lower()
        return not any(word in lower for word in _X264_ERROR_WORDS)
    return False


def _match(lines: list[_Line]) -> tuple[_Rule, _Line] | None:
    """The most specific rule matching any of the last :data:`WINDOW` lines, with the newest such line."""
    window = lines[-WINDOW:]
    for rule in _RULES:
        for line in reversed(window):
            if rule.matches(line.lower):
                return rule, line
    return None


def _clean(body: str) -> str:
    """The message part of a log line: no libcamera/ffmpeg prefix, no rpicam *** wrapper."""
    text = _LIBCAMERA_PREFIX.sub("", body)
    text = _FFMPEG_PREFIX.sub("", text)
    wrapped = _RPICAM_WRAPPED.match(text)
    if wrapped:
        text = wrapped.group(1)
    text = text.strip()
    if len(text) > _DETAIL_MAX:
        text = text[: _DETAIL_MAX - 1] + "…"
    return text


def _summary(rule: _Rule, line: _Line) -> str:
    detail = _clean(line.body)
    return f"{rule.text} ({detail})" if detail else rule.text


def _last_error_line(lines: list[_Line]) -> str | None:
    for line in reversed(lines):
        if any(word in line.lower for word in _ERROR_WORDS):
            return line.raw
    return None


def _signal_of(process: ProcessExit) -> int | None:
    if process.signal is not None:
        return process.signal
    if process.returncode is not None and process.returncode < 0:
        return -process.returncode
    return None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _missing_executable(exit: ExitInfo, lines: list[_Line]) -> Classification | None:
    for process in exit.processes:
        if process.returncode not in (EXIT_NOT_FOUND, EXIT_NOT_EXECUTABLE):
            continue
        evidence = next((line.raw for line in reversed(lines) if process.name in line.raw), None)
        if process.returncode == EXIT_NOT_EXECUTABLE:
            summary = f"{process.name} cannot be executed (permission denied)"
        else:
            package = _PACKAGES.get(process.name)
            hint = f" (install the {package} package)" if package else ""
            summary = f"{process.name} is not installed or not on PATH{hint}"
        return Classification(ExitCause.EXECUTABLE_MISSING, summary, evidence)
    return None


def _culprit(exit: ExitInfo) -> ProcessExit | None:
    """The process whose end started it all.

    Only the first process's signal can be trusted: once it is gone the process layer sends SIGTERM
    (then SIGKILL) to the rest. A first process killed by SIGPIPE was a victim, not a culprit: its
    reader had already gone, so the next process in the pipeline is blamed instead.
    """
    processes = list(exit.processes)
    if exit.first is not None:
        for index, process in enumerate(processes):
            if process.name != exit.first:
                continue
            if _signal_of(process) == signal.SIGPIPE and index + 1 < len(processes):
                return processes[index + 1]
            return process
    # Unknown order: a signal the agent never sends on its own is still telling.
    for process in processes:
        number = _signal_of(process)
        if number is not None and number not in (signal.SIGTERM, signal.SIGPIPE):
            return process
    return processes[0] if processes else None


def _caught_signal(process: ProcessExit, lines: list[_Line]) -> tuple[int, str] | None:
    """A signal ffmpeg caught and exited on: it prints "Exiting normally, received signal 15." and
    exits 255 (fftools/ffmpeg.c), so neither the exit status nor ``signal`` shows it."""
    for line in reversed(lines):
        if line.process not in (process.name, None):
            continue
        found = _RECEIVED_SIGNAL.search(line.lower)
        if found:
            return int(found.group(1)), line.raw
    return None


def _killed(exit: ExitInfo, lines: list[_Line]) -> Classification | None:
    culprit = _culprit(exit)
    if culprit is None:
        return None
    number = _signal_of(culprit)
    evidence = _last_error_line(lines)
    if number is None:
        caught = _caught_signal(culprit, lines)
        if caught is None:
            return None
        number, evidence = caught
    name = _signal_name(number)
    if number in _CRASH_SIGNALS:
        summary = f"{culprit.name} crashed ({name})"
    elif number == signal.SIGKILL:
        summary = (
            f"{culprit.name} was killed by SIGKILL, not sent by the agent "
            "(the kernel's out-of-memory killer, or a person)"
        )
    else:
        summary = f"{culprit.name} was stopped by {name}, not sent by the agent (a person or another program)"
    return Classification(ExitCause.KILLED, summary, evidence)


def _unknown(exit: ExitInfo, lines: list[_Line]) -> Classification:
    culprit = _culprit(exit)
    if culprit is None:
        summary = "the publisher exited for an unknown reason"
    elif culprit.returncode == 0:
        summary = f"{culprit.name} exited unexpectedly (exit code 0)"
    elif culprit.returncode is None:
        summary = f"{culprit.name} exited for an unknown reason"
    else:
        summary = f"{culprit.name} exited with code {culprit.returncode}"
    return Classification(ExitCause.UNKNOWN, summary, _last_error_line(lines))
