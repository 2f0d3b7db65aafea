"""Repair issues: problems on a Pi that the user can fix, raised while they last and removed when they clear.

Two halves. :func:`advance` and :func:`evaluate` are pure: from an :class:`AgentState`, the little history
they need (under-voltage episodes seen, since when the software encoders have been busy) and the time, they
decide which issues are open. :class:`PiStreamRepairs` feeds them every coordinator update and mirrors the
result into Home Assistant's issue registry, creating an issue when it opens and deleting it when it clears.

The conditions (documented for users in docs/home-assistant.md, "Repairs"):

- ``cma_exhausted``: a stream is not running because its publisher could not allocate camera buffers
  (``cause`` or ``last_exit.cause`` is ``buffer_allocation``) and it is in a state the agent marks as a
  problem, or starting again after one. One issue per stream; it clears when the stream runs, or is
  stopped, disabled or removed.
- ``under_voltage``: at least :data:`UNDER_VOLTAGE_EPISODES` under-voltage episodes began within the last
  :data:`UNDER_VOLTAGE_WINDOW_S` seconds (counted from the agent's episode counter while Home Assistant
  watches it). It clears once fewer than that many remain in the window.
- ``software_encoding``: a Pi without a hardware H.264 encoder (the agent's
  ``capabilities.hardware_h264_encoder`` is false, as on a Pi 5) whose software-encoding
  publishers together use at least :data:`SOFTWARE_ENCODING_RAISE` of all its CPU cores, continuously for
  :data:`SOFTWARE_ENCODING_SUSTAIN_S` seconds. It clears when their share drops below
  :data:`SOFTWARE_ENCODING_CLEAR` (hysteresis, so a share hovering at the threshold does not flap).
- ``root_read_only``: the Pi's root filesystem is mounted read-only (``storage.root.read_only``: the kernel
  remounts it so after errors, the classic dying SD card). It clears when the agent reports it writable.
- ``storage_errors``: the kernel has logged SD/eMMC or filesystem errors since the Pi booted
  (``storage.errors_total`` > 0; the newest line is quoted). It clears when the count is 0 again — after a
  reboot, with the card replaced or checked.
- ``agent_outdated``: the agent reports an older version than this integration release's (agent_version.py);
  the issue names the install command. It clears when the agent reports that version or a newer one (read
  again whenever the WebSocket reconnects, as it does after the agent restarts).
- ``incompatible_agent``: raised from setup (``__init__.py``) when the agent speaks an API version the
  integration does not know; it clears when a later setup of the entry succeeds, or the entry is removed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from homeassistant.components.repairs import ConfirmRepairFlow, RepairsFlow
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryError
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util

from . import api
from .agent_version import install_command, is_outdated, release_notes_url
from .const import DOMAIN
from .coordinator import AgentState, PiStreamConfigEntry
from .vocabulary import CAUSE_BUFFER_ALLOCATION, STATE_RUNNING, STATE_STARTING, AgentVocabulary

UNDER_VOLTAGE_EPISODES = 3
UNDER_VOLTAGE_WINDOW_S = 3600.0
SOFTWARE_ENCODING_RAISE = 0.5
SOFTWARE_ENCODING_CLEAR = 0.4
SOFTWARE_ENCODING_SUSTAIN_S = 300.0

ISSUE_CMA_EXHAUSTED = "cma_exhausted"
ISSUE_UNDER_VOLTAGE = "under_voltage"
ISSUE_SOFTWARE_ENCODING = "software_encoding"
ISSUE_INCOMPATIBLE_AGENT = "incompatible_agent"
ISSUE_ROOT_READ_ONLY = "root_read_only"
ISSUE_STORAGE_ERRORS = "storage_errors"
ISSUE_AGENT_OUTDATED = "agent_outdated"

_MIB = 1024 * 1024


@dataclass(frozen=True)
class RepairIssue:
    """One open issue. ``key`` is unique within an entry (the registry id adds the entry id)."""

    key: str
    translation_key: str
    severity: ir.IssueSeverity
    placeholders: dict[str, str]


@dataclass(frozen=True)
class RepairHistory:
    """What the conditions need to remember between updates."""

    episodes_seen: int | None = None  # the agent's episode counter at the last update
    episode_times: tuple[float, ...] = ()  # when each episode seen since then was first noticed
    software_encoding_busy_since: float | None = None


@dataclass(frozen=True)
class Thresholds:
    under_voltage_episodes: int = UNDER_VOLTAGE_EPISODES
    under_voltage_window_s: float = UNDER_VOLTAGE_WINDOW_S
    software_encoding_raise: float = SOFTWARE_ENCODING_RAISE
    software_encoding_clear: float = SOFTWARE_ENCODING_CLEAR
    software_encoding_sustain_s: float = SOFTWARE_ENCODING_SUSTAIN_S


DEFAULT_THRESHOLDS = Thresholds()


# -- pure evaluation --------------------------------------------------------------------------------------


def _mib(value: Any) -> str:
    return f"{value / _MIB:.0f}" if isinstance(value, int | float) else "?"


def blocked_by_cma(stream: dict[str, Any], vocabulary: AgentVocabulary) -> bool:
    """Not running because its camera buffers could not be allocated (CMA or dma-heap exhausted): in a
    problem state, or starting again after such a failure (so the issue does not flap between retries).
    Running, stopped or disabled streams are not blocked by anything."""
    state = stream.get("state")
    if not (vocabulary.is_problem(state) or state == STATE_STARTING):
        return False
    cause = stream.get("cause")
    last_exit = stream.get("last_exit") or {}
    return cause == CAUSE_BUFFER_ALLOCATION or (
        cause is None and last_exit.get("cause") == CAUSE_BUFFER_ALLOCATION
    )


def lacks_hardware_encoder(state: AgentState) -> bool:
    """The agent decides whether its board has a hardware H.264 encoder (one rule, on the Pi); a Pi 5
    has none. Unknown (null) is not "lacks"."""
    return state.info.capabilities.get("hardware_h264_encoder") is False


def software_encoding_share(state: AgentState) -> tuple[float | None, list[str]]:
    """The CPU share (0–1 of all cores) the publishers of software-encoded streams use, and those streams'
    names. Per-process CPU comes from the pushed telemetry (``processes["<stream>/<program>"]``), else from
    the stream listing; 100 % there is one core. None when the agent reports no CPU figures."""
    streams = [
        (stream_id, stream)
        for stream_id, stream in state.streams.items()
        if stream.get("software_encoded") and stream.get("state") == STATE_RUNNING
    ]
    cores = (state.telemetry.get("cpu") or {}).get("count")
    if not streams or not isinstance(cores, int) or cores <= 0:
        return None, []
    processes: dict[str, Any] = state.telemetry.get("processes") or {}
    total: float | None = None
    for stream_id, stream in streams:
        figures = {
            key.partition("/")[2]: value
            for key, value in processes.items()
            if key.startswith(f"{stream_id}/") and isinstance(value, dict)
        } or dict(stream.get("publishers") or {})
        for figure in figures.values():
            cpu = figure.get("cpu_percent") if isinstance(figure, dict) else None
            if isinstance(cpu, int | float):
                total = (total or 0.0) + float(cpu)
    if total is None:
        return None, []
    return total / (cores * 100.0), [str(stream.get("name") or stream_id) for stream_id, stream in streams]


def advance(
    history: RepairHistory, state: AgentState, now: float, thresholds: Thresholds = DEFAULT_THRESHOLDS
) -> RepairHistory:
    """The history after seeing ``state`` at ``now`` (Unix seconds)."""
    power = state.telemetry.get("power") or {}
    episodes = power.get("under_voltage_episodes")
    times = tuple(t for t in history.episode_times if now - t < thresholds.under_voltage_window_s)
    seen = history.episodes_seen
    if isinstance(episodes, int):
        if seen is not None and episodes > seen:
            times += (now,) * (episodes - seen)
        # The first sight is a baseline (the agent may count since boot: when those were is unknown);
        # a counter that went down means the Pi rebooted or the agent restarted without the kernel log.
        seen = episodes

    busy_since = history.software_encoding_busy_since
    share, _ = software_encoding_share(state) if lacks_hardware_encoder(state) else (None, [])
    if share is None or share < thresholds.software_encoding_clear:
        busy_since = None
    elif share >= thresholds.software_encoding_raise and busy_since is None:
        busy_since = now
    return replace(history, episodes_seen=seen, episode_times=times, software_encoding_busy_since=busy_since)


def evaluate(
    state: AgentState,
    history: RepairHistory,
    now: float,
    *,
    name: str,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    expected_version: str | None = None,
) -> list[RepairIssue]:
    """The issues open for this Pi, given ``history`` already advanced to ``now``. ``name`` is the Pi's
    name as the user knows it; ``expected_version`` the agent version this integration release expects."""
    issues: list[RepairIssue] = []
    issues += storage_issues(state, name)
    if expected_version is not None and is_outdated(state.info.version, expected_version):
        issues.append(
            RepairIssue(
                key=ISSUE_AGENT_OUTDATED,
                translation_key=ISSUE_AGENT_OUTDATED,
                severity=ir.IssueSeverity.WARNING,
                placeholders={
                    "name": name,
                    "agent_version": state.info.version,
                    "expected_version": expected_version,
                    "command": install_command(expected_version),
                    "release_url": release_notes_url(expected_version),
                },
            )
        )
    cma = state.telemetry.get("cma") or {}
    for stream_id, stream in sorted(state.streams.items()):
        if blocked_by_cma(stream, state.vocabulary):
            free = (stream.get("last_exit") or {}).get("cma_free_bytes")
            issues.append(
                RepairIssue(
                    key=f"{ISSUE_CMA_EXHAUSTED}_{stream_id}",
                    translation_key=ISSUE_CMA_EXHAUSTED,
                    severity=ir.IssueSeverity.ERROR,
                    placeholders={
                        "name": name,
                        "stream": str(stream.get("name") or stream_id),
                        "cma_free_mib": _mib(free if free is not None else cma.get("free_bytes")),
                        "cma_total_mib": _mib(cma.get("total_bytes")),
                    },
                )
            )

    recent = [t for t in history.episode_times if now - t < thresholds.under_voltage_window_s]
    if len(recent) >= thresholds.under_voltage_episodes:
        issues.append(
            RepairIssue(
                key=ISSUE_UNDER_VOLTAGE,
                translation_key=ISSUE_UNDER_VOLTAGE,
                severity=ir.IssueSeverity.WARNING,
                placeholders={
                    "name": name,
                    "count": str(len(recent)),
                    "window_minutes": f"{thresholds.under_voltage_window_s / 60:.0f}",
                    "threshold": str(thresholds.under_voltage_episodes),
                },
            )
        )

    busy_since = history.software_encoding_busy_since
    if (
        lacks_hardware_encoder(state)
        and busy_since is not None
        and now - busy_since >= thresholds.software_encoding_sustain_s
    ):
        share, names = software_encoding_share(state)
        if share is not None and share >= thresholds.software_encoding_clear:
            issues.append(
                RepairIssue(
                    key=ISSUE_SOFTWARE_ENCODING,
                    translation_key=ISSUE_SOFTWARE_ENCODING,
                    severity=ir.IssueSeverity.WARNING,
                    placeholders={
                        "name": name,
                        "percent": f"{share * 100:.0f}",
                        "streams": ", ".join(names),
                        "minutes": f"{thresholds.software_encoding_sustain_s / 60:.0f}",
                        "clear_percent": f"{thresholds.software_encoding_clear * 100:.0f}",
                    },
                )
            )
    return issues


def storage_issues(state: AgentState, name: str) -> list[RepairIssue]:
    """A read-only root filesystem, and storage errors the kernel logged since boot."""
    storage = state.telemetry.get("storage")
    if not isinstance(storage, dict):
        return []
    issues: list[RepairIssue] = []
    root = storage.get("root")
    if not isinstance(root, dict):
        root = {}
    if root.get("read_only") is True:
        issues.append(
            RepairIssue(
                key=ISSUE_ROOT_READ_ONLY,
                translation_key=ISSUE_ROOT_READ_ONLY,
                severity=ir.IssueSeverity.ERROR,
                placeholders={"name": name, "device": str(root.get("device") or "?")},
            )
        )
    errors = storage.get("errors_total")
    if isinstance(errors, int) and errors > 0:
        last = storage.get("last_error")
        if not isinstance(last, dict):
            last = {}
        issues.append(
            RepairIssue(
                key=ISSUE_STORAGE_ERRORS,
                translation_key=ISSUE_STORAGE_ERRORS,
                severity=ir.IssueSeverity.WARNING,
                placeholders={
                    "name": name,
                    "count": str(errors),
                    "last_error": str(last.get("message") or "(not recorded)"),
                },
            )
        )
    return issues


# -- the issue registry -----------------------------------------------------------------------------------


def issue_id(entry_id: str, key: str) -> str:
    return f"{key}_{entry_id}"


class PiStreamRepairs:
    """Keeps one entry's issues in the registry in step with :func:`evaluate`."""

    def __init__(
        self, hass: HomeAssistant, entry: PiStreamConfigEntry, thresholds: Thresholds = DEFAULT_THRESHOLDS
    ) -> None:
        self.hass = hass
        self.entry = entry
        self.thresholds = thresholds
        self.history = RepairHistory()
        self.open: dict[str, RepairIssue] = {}  # issue id → issue, as last written to the registry

    @callback
    def async_update(self) -> None:
        state = self.entry.runtime_data.data  # set: this runs only after the first refresh succeeded
        now = dt_util.utcnow().timestamp()
        self.history = advance(self.history, state, now, self.thresholds)
        issues = evaluate(
            state,
            self.history,
            now,
            name=self.entry.title,
            thresholds=self.thresholds,
            expected_version=self.entry.runtime_data.integration_version,
        )
        self._apply({issue_id(self.entry.entry_id, issue.key): issue for issue in issues})

    @callback
    def _apply(self, wanted: dict[str, RepairIssue]) -> None:
        for gone in set(self.open) - set(wanted):
            ir.async_delete_issue(self.hass, DOMAIN, gone)
        for ident, issue in wanted.items():
            if self.open.get(ident) != issue:
                ir.async_create_issue(
                    self.hass,
                    DOMAIN,
                    ident,
                    is_fixable=False,
                    severity=issue.severity,
                    translation_key=issue.translation_key,
                    translation_placeholders=issue.placeholders,
                )
        self.open = wanted

    @callback
    def async_clear(self) -> None:
        self._apply({})


@callback
def async_setup_repairs(
    hass: HomeAssistant, entry: PiStreamConfigEntry, thresholds: Thresholds = DEFAULT_THRESHOLDS
) -> CALLBACK_TYPE:
    """After a successful setup: the agent is compatible again, and the runtime conditions are watched on
    every coordinator update. Returns the function that stops watching and withdraws the open issues."""
    ir.async_delete_issue(hass, DOMAIN, issue_id(entry.entry_id, ISSUE_INCOMPATIBLE_AGENT))
    repairs = PiStreamRepairs(hass, entry, thresholds)
    repairs.async_update()
    remove_listener = entry.runtime_data.async_add_listener(repairs.async_update)

    @callback
    def stop() -> None:
        remove_listener()
        repairs.async_clear()

    return stop


@callback
def async_setup_failed(hass: HomeAssistant, entry: PiStreamConfigEntry, err: ConfigEntryError) -> None:
    """Setup stopped with ``err``: open the incompatible-agent issue when that is why."""
    if err.translation_key != ISSUE_INCOMPATIBLE_AGENT:
        return
    placeholders = dict(err.translation_placeholders or {})
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id(entry.entry_id, ISSUE_INCOMPATIBLE_AGENT),
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=ISSUE_INCOMPATIBLE_AGENT,
        translation_placeholders={
            "name": entry.title,
            "agent_api": placeholders.get("agent_api", "?"),
            "supported_api": str(api.SUPPORTED_API_VERSION),
        },
    )


@callback
def async_remove_issues(hass: HomeAssistant, entry_id: str) -> None:
    """The entry is gone: so are its issues."""
    registry = ir.async_get(hass)
    for domain, ident in list(registry.issues):
        if domain == DOMAIN and ident.endswith(f"_{entry_id}"):
            ir.async_delete_issue(hass, DOMAIN, ident)


def entry_issue_ids(hass: HomeAssistant, entry_id: str) -> Iterable[str]:
    """The ids of the issues currently registered for an entry (for diagnostics)."""
    registry = ir.async_get(hass)
    return sorted(
        ident
        for (domain, ident), issue in registry.issues.items()
        if domain == DOMAIN and ident.endswith(f"_{entry_id}") and issue.active
    )


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow:
    """Home Assistant's repairs integration requires this of every ``repairs.py`` platform. None of our
    issues is fixable from Home Assistant (each needs a change on the Pi), so this is never asked for; an
    acknowledgement is the honest answer if it were."""
    return ConfirmRepairFlow()
