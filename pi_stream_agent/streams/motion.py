"""Motion detection on small grey frames: pure, no I/O, no numpy (a Pi's Debian has none for the agent).

The publisher's ffmpeg hands the agent a small, slow grey picture (:data:`ANALYSIS_WIDTH` wide, about
:data:`ANALYSIS_FPS` frames a second, area-averaged, which already removes most sensor noise; see
:mod:`.motion_tap`). Each frame is compared with a running background:

* **Background**: an exponential average of the frames (weight :data:`BACKGROUND_WEIGHT` for the new one,
  about one second of memory at 4 fps), so slow light changes and single noisy frames fade in, and a
  moving thing stands out against what the scene looked like a moment ago.
* **Changed pixels**: those whose grey level differs from the background by more than the pixel threshold
  (from the sensitivity, :func:`thresholds`).
* **Score** 0..100: the share of the region's pixels that changed, in percent.
* **Noise floor**: the score of a still scene is rarely 0 (noise, compression, flicker). An average of
  the score is kept — learnt in the first :data:`WARMUP_FRAMES` frames, then slowly while nothing moves,
  and very slowly during a motion — and added to the trigger level, so a noisy camera does not fire all
  the time (an adaptive threshold); so is a few times how far the score usually wanders from it.
* **Start**: the score stays above trigger + noise floor for the minimum duration. **End** (hysteresis):
  the score stays below half the trigger (+ noise floor) for :data:`END_HOLD_S`.

How it stays cheap in pure Python: the frame is never walked pixel by pixel. Each pixel gets a 16-bit
lane in one big integer (``int.from_bytes`` of the bytes spread with a slice assignment), and the whole
frame is updated and compared with a handful of big-integer operations, all in C: the background update is
``(3·B + 16·F) >> 2`` masked per lane (4 fractional bits), and "differs by more than T" is one addition
per sign with a bias that sets bit 13 of a lane exactly when the difference exceeds T, counted with
``int.bit_count()``. The region is a lane mask. Measured in bench/motion_cost.py (docs/benchmarks.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

# The analysis picture (the pipeline asks ffmpeg for it; the height follows the stream's aspect ratio).
ANALYSIS_WIDTH: Final = 160
ANALYSIS_FPS: Final = 4
# The new frame's weight in the background, as a shift: 1/4 (about 1 s of memory at 4 fps).
_BACKGROUND_SHIFT: Final = 2
BACKGROUND_WEIGHT: Final = 1 / (1 << _BACKGROUND_SHIFT)
# The score must stay below the end level this long before a motion ends.
END_HOLD_S: Final = 2.0
# Frames seen before anything may start: the background and the noise floor first learn the scene.
WARMUP_FRAMES: Final = 8
# How fast the noise floor follows the score (weight of each new frame): quickly while warming up, then
# slowly while nothing moves; and very slowly (minutes) during a motion, so a scene that is busy for good
# (harsh noise at night, leaves in the wind) ends its motion and becomes the new normal.
_NOISE_FLOOR_WEIGHT_WARMUP: Final = 0.5
_NOISE_FLOOR_WEIGHT: Final = 0.05
_NOISE_FLOOR_WEIGHT_ACTIVE: Final = 0.002
# How many times the score's usual wander above the floor a motion must reach (half that to end).
_NOISE_MARGIN: Final = 4.0

_FRACTION_BITS: Final = 4  # the background's fixed point: grey level x 16
_LANE_BITS: Final = 16
# Lane values after the background update stay below 4096 (255 x 16 = 4080): 12 bits.
_BACKGROUND_MASK_BITS: Final = 12
# The comparison's bias: a lane holds 8192 + d - (T + 1) with |d| <= 4080, so bit 13 is set exactly when
# d > T, and no lane borrows from or carries into its neighbour.
_COMPARE_BIAS: Final = 1 << 13
_COMPARE_BIT: Final = 13

Region = tuple[float, float, float, float]  # x, y, width, height, normalised 0..1

SENSITIVITY_MIN: Final = 1
SENSITIVITY_MAX: Final = 100
DEFAULT_SENSITIVITY: Final = 50
DEFAULT_MIN_DURATION_S: Final = 0.5


def thresholds(sensitivity: float) -> tuple[int, float]:
    """Sensitivity 1..100 → (pixel threshold in grey levels, trigger score in percent of the region).

    50 (the default) asks for a change of more than 16 grey levels over 1 % of the region; 100 reacts to
    8 levels over 0.2 %, 1 only to 40 levels over 10 %. Between, both move on a log scale."""
    s = min(max(float(sensitivity), SENSITIVITY_MIN), SENSITIVITY_MAX)
    t = (s - SENSITIVITY_MIN) / (SENSITIVITY_MAX - SENSITIVITY_MIN)  # 0 (least) .. 1 (most sensitive)
    # Through the three points above: 40 → 16 → 8 grey levels and 10 % → 1 % → 0.2 %.
    pixel = 40 * (16 / 40) ** (2 * t) if t <= 0.5 else 16 * (8 / 16) ** (2 * t - 1)
    area = 10 * (1 / 10) ** (2 * t) if t <= 0.5 else 1 * (0.2 / 1) ** (2 * t - 1)
    return round(pixel), area


def region_problem(region: object) -> str | None:
    """What is wrong with a motion region as config or the API gives it, as a plain predicate (None: fine).
    A region is ``{x, y, width, height}``, each 0..1, a part of the picture (width and height above 0)."""
    if not isinstance(region, dict):
        return "must be a rectangle given as x, y, width and height, each between 0 and 1"
    keys = ("x", "y", "width", "height")
    unknown = sorted(str(key) for key in region if key not in keys)
    if unknown:
        return f"has {', '.join(unknown)}, which it does not know; give only x, y, width and height"
    missing = [key for key in keys if key not in region]
    if missing:
        return f"needs {', '.join(missing)} too (x, y, width and height, each between 0 and 1)"
    for key in keys:
        value = region[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"{key} must be a number between 0 and 1"
        if not 0 <= value <= 1:
            return f"{key} must be between 0 and 1 (a share of the picture), not {value:g}"
    if region["width"] <= 0 or region["height"] <= 0:
        return "is empty: its width and height must be more than 0"
    if region["x"] + region["width"] > 1 + 1e-9 or region["y"] + region["height"] > 1 + 1e-9:
        return "reaches outside the picture: x + width and y + height must be at most 1"
    return None


def as_region(region: dict[str, float] | None) -> Region | None:
    if region is None:
        return None
    return (float(region["x"]), float(region["y"]), float(region["width"]), float(region["height"]))


def analysis_size(width: int, height: int) -> tuple[int, int]:
    """The analysis picture's size for a stream of ``width`` x ``height``: :data:`ANALYSIS_WIDTH` wide (or
    the stream's own width if smaller), the height keeping the aspect ratio, both even."""
    out_w = min(ANALYSIS_WIDTH, width) // 2 * 2
    out_h = max(2, round(out_w * height / width / 2) * 2)
    return out_w, out_h


# ------------------------------------------------------------------------------------------ lane helpers


def _lanes(count: int, value: int) -> int:
    """``count`` 16-bit lanes each holding ``value``."""
    return int.from_bytes(value.to_bytes(2, "big") * count, "big")


def _spread(frame: bytes) -> int:
    """The frame's pixels as 16-bit lanes of one integer (first pixel in the most significant lane)."""
    buffer = bytearray(2 * len(frame))
    buffer[1::2] = frame
    return int.from_bytes(buffer, "big")


def _region_mask(width: int, height: int, region: Region | None) -> tuple[int, int]:
    """(a lane mask with 1 in bit 0 of each lane inside the region, the number of pixels in it)."""
    if region is None:
        x0, y0, x1, y1 = 0, 0, width, height
    else:
        rx, ry, rw, rh = region
        x0, y0 = min(width - 1, int(rx * width)), min(height - 1, int(ry * height))
        x1 = max(x0 + 1, min(width, round((rx + rw) * width)))
        y1 = max(y0 + 1, min(height, round((ry + rh) * height)))
    row = bytearray(2 * width)
    row[2 * x0 + 1 : 2 * x1 : 2] = b"\x01" * (x1 - x0)
    blank = bytes(2 * width)
    data = b"".join(bytes(row) if y0 <= y < y1 else blank for y in range(height))
    return int.from_bytes(data, "big"), (x1 - x0) * (y1 - y0)


# ---------------------------------------------------------------------------------------------- detector

MotionEdge = Literal["start", "end"]


@dataclass(frozen=True)
class MotionSettings:
    sensitivity: float = DEFAULT_SENSITIVITY
    min_duration_s: float = DEFAULT_MIN_DURATION_S
    region: Region | None = None


@dataclass(frozen=True)
class MotionChange:
    """A motion started or ended (what the ``motion`` event says)."""

    state: MotionEdge
    score: float
    started_at: float
    ended_at: float | None


class MotionDetector:
    """Feed it grey frames of one size (``feed``); it keeps the state and says when a motion starts or
    ends. ``settings`` may change at any time (a live change of sensitivity, duration or region)."""

    def __init__(self, width: int, height: int, settings: MotionSettings | None = None) -> None:
        self.width = width
        self.height = height
        self.pixels = width * height
        self.active = False
        self.score = 0.0
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.peak_score = 0.0
        self.noise_floor = 0.0
        self.noise_spread = 0.0  # the mean distance of a still scene's score from the floor
        self.frames = 0
        self._background: int | None = None
        self._ones = _lanes(self.pixels, 1)
        self._background_mask = _lanes(self.pixels, (1 << _BACKGROUND_MASK_BITS) - 1)
        self._above_since: float | None = None
        self._below_since: float | None = None
        self._settings = MotionSettings()
        self._compare_bias = 0
        self._mask = 0
        self._region_pixels = 0
        self.configure(settings or MotionSettings())

    @property
    def settings(self) -> MotionSettings:
        return self._settings

    def configure(self, settings: MotionSettings) -> None:
        if settings.region != self._settings.region or not self._mask:
            self._mask, self._region_pixels = _region_mask(self.width, self.height, settings.region)
        pixel, _ = thresholds(settings.sensitivity)
        threshold = pixel << _FRACTION_BITS
        self._compare_bias = _lanes(self.pixels, _COMPARE_BIAS - (threshold + 1))
        self._settings = settings

    def changed_share(self, frame: bytes) -> float:
        """Update the background with ``frame`` and return the score: the percentage of the region's
        pixels that differ from the background (as it was before this frame) by more than the threshold."""
        if len(frame) != self.pixels:
            raise ValueError(
                f"a frame of {self.width}x{self.height} grey has {self.pixels} bytes, not {len(frame)}"
            )
        current = _spread(frame) << _FRACTION_BITS
        background = self._background
        if background is None:
            self._background = current
            return 0.0
        bias = self._compare_bias
        brighter = ((current + bias - background) >> _COMPARE_BIT) & self._mask
        darker = ((background + bias - current) >> _COMPARE_BIT) & self._mask
        changed = brighter.bit_count() + darker.bit_count()
        weight = (1 << _BACKGROUND_SHIFT) - 1
        self._background = ((weight * background + current) >> _BACKGROUND_SHIFT) & self._background_mask
        return 100.0 * changed / self._region_pixels

    def feed(self, frame: bytes, at: float) -> MotionChange | None:
        """One frame taken at ``at`` (wall clock): a start or an end, or None."""
        score = self.changed_share(frame)
        self.frames += 1
        self.score = score
        _, trigger = thresholds(self._settings.sensitivity)
        if self.frames <= WARMUP_FRAMES:
            # The first frame only sets the background, and the next scores are high while the first
            # frame's own noise fades from it: learn from the second half of the warm-up, quickly.
            if self.frames > WARMUP_FRAMES // 2:
                self._learn_noise(score, _NOISE_FLOOR_WEIGHT_WARMUP)
            return None
        # Above the floor by the trigger, and by a few times how much a still scene's score wanders.
        start_level = trigger + self.noise_floor + _NOISE_MARGIN * self.noise_spread
        end_level = trigger / 2 + self.noise_floor + _NOISE_MARGIN / 2 * self.noise_spread
        if not self.active:
            if score > start_level:
                if self._above_since is None:
                    self._above_since = at
                if at - self._above_since >= self._settings.min_duration_s:
                    self.active = True
                    self.started_at = self._above_since
                    self.ended_at = None
                    self.peak_score = score
                    self._below_since = None
                    return MotionChange("start", round(score, 2), self._above_since, None)
            else:
                self._above_since = None
                # Learn the still scene's score (below the start level: a motion is not noise).
                self._learn_noise(score, _NOISE_FLOOR_WEIGHT)
            return None
        self.peak_score = max(self.peak_score, score)
        self._learn_noise(score, _NOISE_FLOOR_WEIGHT_ACTIVE)
        if score < end_level:
            if self._below_since is None:
                self._below_since = at
            if at - self._below_since >= END_HOLD_S:
                self.active = False
                self.ended_at = self._below_since
                self._above_since = None
                assert self.started_at is not None
                return MotionChange("end", round(self.peak_score, 2), self.started_at, self._below_since)
        else:
            self._below_since = None
        return None

    def _learn_noise(self, score: float, weight: float) -> None:
        self.noise_spread += weight * (abs(score - self.noise_floor) - self.noise_spread)
        self.noise_floor += weight * (score - self.noise_floor)

    def status(self) -> dict[str, object]:
        """The stream status's ``motion`` object (docs/api.md)."""
        return {
            "active": self.active,
            "score": round(self.score, 2),
            "started_at": round(self.started_at, 3) if self.started_at is not None else None,
            "ended_at": round(self.ended_at, 3) if self.ended_at is not None else None,
        }
