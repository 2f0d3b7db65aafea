"""The fan, where the board has one driven by the kernel: the Pi 5's fan header (``cooling_fan`` device,
pwm-fan driver, hwmon name ``pwmfan``) or a pwm-fan overlay on earlier boards. ``fan1_input`` is the tach
reading in RPM, ``pwm1`` the duty from 0 to 255. The hwmon directory is looked up once (fans do not come and
go while the kernel runs); each sample then reads two small files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pi_stream_agent.rootfs import Gaps, Root, describe_os_error

HWMON_CLASS = "sys/class/hwmon"
FAN_HWMON_NAMES = ("pwmfan", "cooling_fan")
PWM_MAX = 255


def parse_int(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None


def pwm_percent(raw: int) -> float:
    """``pwm1`` (0-255) → percent of full duty, one decimal."""
    return round(100.0 * max(0, min(raw, PWM_MAX)) / PWM_MAX, 1)


class FanReader:
    """``{"fan": {"rpm", "pwm_percent"}}``, or ``{"fan": null}`` with the reason where there is no fan."""

    def __init__(self, root: Root) -> None:
        self._root = root
        self._directory: Path | None = None
        self._looked = False

    def _find(self) -> Path | None:
        if not self._looked:
            self._looked = True
            try:
                entries = sorted(self._root.path(HWMON_CLASS).iterdir())
            except OSError:
                entries = []
            for entry in entries:
                try:
                    name = (entry / "name").read_text(encoding="utf-8", errors="replace").strip()
                except OSError:
                    continue
                if name in FAN_HWMON_NAMES:
                    self._directory = entry
                    break
        return self._directory

    def sample(self, gaps: Gaps, now: float) -> dict[str, Any]:
        directory = self._find()
        if directory is None:
            gaps.note("fan", "no fan: no hwmon device named pwmfan (Pi 5 fan header, or a pwm-fan overlay)")
            return {"fan": None}
        fan: dict[str, Any] = {"rpm": None, "pwm_percent": None}
        for key, file in (("rpm", "fan1_input"), ("pwm_percent", "pwm1")):
            where = f"/{HWMON_CLASS}/{directory.name}/{file}"
            try:
                value = parse_int((directory / file).read_text(encoding="ascii", errors="replace"))
            except OSError as exc:
                gaps.note(f"fan.{key}", describe_os_error(exc, where))
                continue
            if value is None:
                gaps.note(f"fan.{key}", f"{where}: unexpected format")
                continue
            fan[key] = value if key == "rpm" else pwm_percent(value)
        return {"fan": fan}
