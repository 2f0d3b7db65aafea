"""The agent's vocabulary (``GET /api/v1/vocabulary``, docs/api.md): the words it can emit, with their human
names. Read once at setup and kept in :class:`~.coordinator.AgentState`; the integration holds no copy.
That includes the stream picture settings (``stream_settings``: rotation, flips, focus, exposure…), which
the options flow offers (orientation) and whose ids name the setting entities (``controls.py``).

The agent owns every list here. What the integration owns is the handful of words its *behaviour* is keyed
on (:data:`STATE_RUNNING` means "recovered", :data:`CAUSE_STOPPED` means "not a failure"…): they are named
once below, and a test against the real agent fails when the agent stops publishing one of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .api import PiStreamError

SUPPORTED_VOCABULARY_VERSION = 1

# Words whose meaning the integration acts on (each must be in the agent's vocabulary; tested).
STATE_RUNNING = "running"  # frames flow: a failed stream has recovered
STATE_STARTING = "starting"  # on its way up; after a failure, still blocked by it
CAUSE_STOPPED = "stopped"  # a stop asked for through the API: not a failure
CAUSE_BUFFER_ALLOCATION = "buffer_allocation"  # camera memory exhausted: the CMA repair issue
SETTING_AUTOFOCUS = "autofocus"  # the one button setting: POST /streams/{id}/autofocus, not a stored value
# The picture settings every source has, which the options flow's stream editor offers beside size and rate.
ORIENTATION_SETTINGS = ("rotation", "hflip", "vflip")
# The detection switches (``stream_settings``, issue 11): a stream whose controls document lists one can
# detect motion / sound, and its value says whether it does (the motion and sound entities, detection.py).
SETTING_MOTION_DETECTION = "motion_detection"
SETTING_SOUND_DETECTION = "sound_detection"
# A stream's ``audio.state`` (docs/api.md, "Streams"): "on" publishes sound; "off" has none configured.
AUDIO_ON = "on"
AUDIO_OFF = "off"


class VocabularyError(PiStreamError, ValueError):
    """The agent's vocabulary answer is not in the published shape."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"unexpected vocabulary from the agent: {problem}")


@dataclass(frozen=True)
class VocabularyWord:
    """One word the agent uses (``id``, as in its API and configuration) with its human ``name``;
    ``properties`` holds the rest of its entry (a state's ``problem``, an input format's ``compressed`` and
    ``fourccs``)."""

    id: str
    name: str
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ValueRange:
    """A numeric limit of the agent's (``min``/``max``, and ``step`` where values come in steps)."""

    min: float
    max: float
    step: float | None = None


def _words(data: Mapping[str, Any], key: str) -> tuple[VocabularyWord, ...]:
    entries = data.get(key)
    if not isinstance(entries, list) or not all(
        isinstance(entry, Mapping) and isinstance(entry.get("id"), str) for entry in entries
    ):
        raise VocabularyError(f"'{key}' is not a list of words with an id")
    return tuple(
        VocabularyWord(
            entry["id"],
            str(entry.get("name") or entry["id"]),
            {k: v for k, v in entry.items() if k not in ("id", "name")},
        )
        for entry in entries
    )


def _limits(data: Mapping[str, Any]) -> dict[str, ValueRange]:
    """The ranges (``min``/``max``/``step``); scalar limits (hardware_encoder_max_width) stay in ``raw``."""
    limits = data.get("limits")
    if not isinstance(limits, Mapping):
        raise VocabularyError("'limits' is not an object")
    try:
        return {
            name: ValueRange(
                float(limit["min"]),
                float(limit["max"]),
                None if limit.get("step") is None else float(limit["step"]),
            )
            for name, limit in limits.items()
            if isinstance(limit, Mapping)
        }
    except (KeyError, TypeError, ValueError) as err:
        raise VocabularyError(f"a limit is not a number range: {err!r}") from err


def _optional_words(data: Mapping[str, Any], key: str) -> tuple[VocabularyWord, ...]:
    """A list that an older agent does not publish yet: empty when absent, checked like any other."""
    return _words(data, key) if key in data else ()


@dataclass(frozen=True)
class StreamSetting:
    """A picture setting a stream can have (``stream_settings``): what it is called, the kind of entity
    that sets it, the sources that can have it and, for a number, its widest range (the per-stream
    controls document narrows it to the stream's camera)."""

    id: str
    name: str
    kind: str  # select | number | switch | button
    sources: tuple[str, ...]
    options: tuple[VocabularyWord, ...] = ()
    limits: ValueRange | None = None
    unit: str | None = None
    enabled_by_default: bool = False


def _stream_settings(data: Mapping[str, Any]) -> tuple[StreamSetting, ...]:
    """An agent from before picture settings has none: no setting entities, no orientation fields."""
    if "stream_settings" not in data:
        return ()
    settings: list[StreamSetting] = []
    for word in _words(data, "stream_settings"):
        entry = word.properties
        options = entry.get("options") or []
        if not isinstance(options, list) or not all(isinstance(option, Mapping) for option in options):
            raise VocabularyError(f"the options of setting '{word.id}' are not a list of words")
        limits = None
        if entry.get("min") is not None and entry.get("max") is not None:
            try:
                step = entry.get("step")
                limits = ValueRange(
                    float(entry["min"]), float(entry["max"]), None if step is None else float(step)
                )
            except (TypeError, ValueError) as err:
                raise VocabularyError(f"the range of setting '{word.id}' is not numeric: {err!r}") from err
        settings.append(
            StreamSetting(
                id=word.id,
                name=word.name,
                kind=str(entry.get("kind") or ""),
                sources=tuple(str(source) for source in entry.get("sources") or ()),
                options=tuple(
                    VocabularyWord(str(option.get("id")), str(option.get("name") or option.get("id")))
                    for option in options
                ),
                limits=limits,
                unit=None if entry.get("unit") is None else str(entry["unit"]),
                enabled_by_default=bool(entry.get("enabled_by_default", False)),
            )
        )
    return tuple(settings)


def _names(words: tuple[VocabularyWord, ...]) -> dict[str, str]:
    return {word.id: word.name for word in words}


@dataclass(frozen=True)
class AgentVocabulary:
    """``GET /api/v1/vocabulary``, parsed once: every word and limit the agent's streams are written in, in
    the agent's order, each with its human name. Entity platforms, repairs and the logbook use the states,
    causes and contributing conditions; the options flow's forms (``stream_form.py``) use the sources,
    patterns, formats, encoders and limits. ``raw`` is the whole answer."""

    version: int
    state_words: tuple[VocabularyWord, ...]
    exit_causes: tuple[VocabularyWord, ...]
    source_types: tuple[VocabularyWord, ...]
    test_patterns: tuple[VocabularyWord, ...]
    input_formats: tuple[VocabularyWord, ...]
    encoders: tuple[VocabularyWord, ...]
    limits: Mapping[str, ValueRange]
    stream_id_pattern: str
    rtsp_path_pattern: str
    # What the Pi was going through when a stream exited (under-voltage, overheating…): the agent's
    # ``contributing_conditions``, absent from agents older than issue 10.
    contributing_conditions: tuple[VocabularyWord, ...] = ()
    stream_settings: tuple[StreamSetting, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> AgentVocabulary:
        """Parse the answer; :class:`VocabularyError` when it is not the published shape."""
        if not isinstance(data, Mapping):
            raise VocabularyError("the answer is not an object")
        version = data.get("vocabulary_version")
        if version != SUPPORTED_VOCABULARY_VERSION:
            raise VocabularyError(
                f"vocabulary version {version!r}, this integration reads {SUPPORTED_VOCABULARY_VERSION}"
            )
        if not isinstance(data.get("stream_id_pattern"), str):
            raise VocabularyError("'stream_id_pattern' is not a string")
        return cls(
            version=version,
            state_words=_words(data, "stream_states"),
            exit_causes=_words(data, "exit_causes"),
            source_types=_words(data, "source_types"),
            test_patterns=_words(data, "test_patterns"),
            input_formats=_words(data, "input_formats"),
            encoders=_words(data, "encoders"),
            limits=_limits(data),
            stream_id_pattern=data["stream_id_pattern"],
            rtsp_path_pattern=str(data.get("rtsp_path_pattern") or ""),
            contributing_conditions=_optional_words(data, "contributing_conditions"),
            stream_settings=_stream_settings(data),
            raw=dict(data),
        )

    @property
    def stream_states(self) -> tuple[str, ...]:
        return tuple(word.id for word in self.state_words)

    @property
    def state_names(self) -> dict[str, str]:
        return _names(self.state_words)

    @property
    def problem_states(self) -> frozenset[str]:
        return frozenset(word.id for word in self.state_words if word.properties.get("problem") is True)

    @property
    def cause_names(self) -> dict[str, str]:
        return _names(self.exit_causes)

    @property
    def source_type_names(self) -> dict[str, str]:
        return _names(self.source_types)

    @property
    def test_pattern_names(self) -> dict[str, str]:
        return _names(self.test_patterns)

    @property
    def contributing_condition_names(self) -> dict[str, str]:
        return _names(self.contributing_conditions)

    def settings_for(self, source_type: str, ids: tuple[str, ...] | None = None) -> tuple[StreamSetting, ...]:
        """The picture settings a source of this type can have (of ``ids`` only, when given), in the
        agent's order. Which of them a stream really has depends on its camera (the controls document)."""
        return tuple(
            setting
            for setting in self.stream_settings
            if source_type in setting.sources and (ids is None or setting.id in ids)
        )

    def is_problem(self, state: object) -> bool:
        """The agent marks the states in which a stream needs attention (stalled, retrying, waiting for
        its device, given up on)."""
        return state in self.problem_states

    def cause_name(self, cause: object) -> str | None:
        """The agent's human name for an exit cause; the raw word for one it does not name."""
        if not isinstance(cause, str):
            return None
        return self.cause_names.get(cause, cause)

    def contributing_condition_name(self, condition: object) -> str | None:
        """The agent's human name for a contributing condition of a stream exit; the raw word for one it
        does not name; None when there was none."""
        if not isinstance(condition, str):
            return None
        return self.contributing_condition_names.get(condition, condition)
