"""The agent's vocabulary (``GET /api/v1/vocabulary``, docs/api.md): the words it can emit, with their human
names. Read once at setup and kept in :class:`~.coordinator.AgentState`; the integration holds no copy.

The agent owns every list here. What the integration owns is the handful of words its *behaviour* is keyed
on (:data:`STATE_RUNNING` means "recovered", :data:`CAUSE_STOPPED` means "not a failure"…): they are named
once below, and a test against the real agent fails when the agent stops publishing one of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SUPPORTED_VOCABULARY_VERSION = 1

# Words whose meaning the integration acts on (each must be in the agent's vocabulary; tested).
STATE_RUNNING = "running"  # frames flow: a failed stream has recovered
STATE_STARTING = "starting"  # on its way up; after a failure, still blocked by it
CAUSE_STOPPED = "stopped"  # a stop asked for through the API: not a failure
CAUSE_BUFFER_ALLOCATION = "buffer_allocation"  # camera memory exhausted: the CMA repair issue


class VocabularyError(ValueError):
    """The agent's vocabulary answer is not in the published shape."""


def _words(data: Mapping[str, Any], key: str) -> tuple[dict[str, Any], ...]:
    entries = data.get(key)
    if not isinstance(entries, list) or not all(
        isinstance(entry, Mapping) and isinstance(entry.get("id"), str) for entry in entries
    ):
        raise VocabularyError(f"'{key}' is not a list of words with an id")
    return tuple(dict(entry) for entry in entries)


def _names(words: tuple[dict[str, Any], ...]) -> dict[str, str]:
    return {word["id"]: str(word.get("name") or word["id"]) for word in words}


@dataclass(frozen=True)
class AgentVocabulary:
    """The parts of the agent's vocabulary the entity platforms, repairs and the logbook use, in the
    agent's order. ``raw`` is the whole answer (forms use more of it)."""

    stream_states: tuple[str, ...]
    state_names: Mapping[str, str]
    problem_states: frozenset[str]
    cause_names: Mapping[str, str]
    source_type_names: Mapping[str, str]
    test_pattern_names: Mapping[str, str]
    raw: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AgentVocabulary:
        """Parse the answer; :class:`VocabularyError` when it is not the published shape."""
        if not isinstance(data, Mapping):
            raise VocabularyError("the answer is not an object")
        version = data.get("vocabulary_version")
        if version != SUPPORTED_VOCABULARY_VERSION:
            raise VocabularyError(
                f"vocabulary version {version!r}, this integration reads {SUPPORTED_VOCABULARY_VERSION}"
            )
        states = _words(data, "stream_states")
        return cls(
            stream_states=tuple(state["id"] for state in states),
            state_names=_names(states),
            problem_states=frozenset(state["id"] for state in states if state.get("problem") is True),
            cause_names=_names(_words(data, "exit_causes")),
            source_type_names=_names(_words(data, "source_types")),
            test_pattern_names=_names(_words(data, "test_patterns")),
            raw=dict(data),
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
