"""The agent owns the stream vocabulary; the integration reads it at setup and keeps no copy.

Where Home Assistant needs a static declaration (the translated names and icons of the stream state enum,
the translated causes of the stream events), these tests ask the real agent for its vocabulary and fail
when it can emit a word Home Assistant cannot show or translate, or when a translation names a word the
agent no longer has.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from custom_components.pi_stream import vocabulary as integration_words
from custom_components.pi_stream.event import EVENT_FAILED, EVENT_RECOVERED
from custom_components.pi_stream.vocabulary import AgentVocabulary, VocabularyError
from tests.integration.agent_process import AgentProcess

COMPONENT = Path(__file__).resolve().parents[2] / "custom_components" / "pi_stream"
PLATFORMS = ("binary_sensor", "button", "event", "repairs", "sensor", "logbook", "device_info")


@pytest.fixture
def published(tmp_path: Path, socket_enabled: Any) -> Iterator[dict[str, Any]]:
    """``GET /api/v1/vocabulary`` of the real agent (no streams: only its words are needed)."""
    agent = AgentProcess(state_dir=tmp_path / "agent-state", streams=[])
    agent.start()
    try:
        yield agent.request("GET", "/vocabulary")
    finally:
        agent.stop()


def _ids(published: dict[str, Any], key: str) -> set[str]:
    return {word["id"] for word in published[key]}


def _translations() -> dict[str, Any]:
    return json.loads((COMPONENT / "translations" / "en.json").read_text())  # type: ignore[no-any-return]


def _icons() -> dict[str, Any]:
    return json.loads((COMPONENT / "icons.json").read_text())  # type: ignore[no-any-return]


def _names(published: dict[str, Any], key: str) -> dict[str, str]:
    return {word["id"]: word["name"] for word in published[key]}


def test_every_stream_state_has_a_translation_and_an_icon(published: dict[str, Any]) -> None:
    """Home Assistant shows the state enum through en.json: it must name every state the agent can
    emit, in the agent's words (the agent owns the names; en.json is their static mirror)."""
    assert _translations()["entity"]["sensor"]["stream_state"]["state"] == _names(published, "stream_states")
    assert set(_icons()["entity"]["sensor"]["stream_state"]["state"]) == _ids(published, "stream_states")


def _attribute_tables(attribute: str) -> dict[str, dict[str, str]]:
    """Every translated value table of a state attribute, by entity (``platform.key``)."""
    entities = _translations()["entity"]
    return {
        f"{platform}.{key}": entry["state_attributes"][attribute]["state"]
        for platform, keys in entities.items()
        for key, entry in keys.items()
        if "state" in entry.get("state_attributes", {}).get(attribute, {})
    }


def test_every_exit_cause_has_a_translation(published: dict[str, Any]) -> None:
    """The ``cause`` attribute of the stream events, the state sensor and the problem flag."""
    tables = _attribute_tables("cause")
    assert set(tables) == {"event.stream_events", "sensor.stream_state", "binary_sensor.stream_problem"}
    for table in tables.values():
        assert table == _names(published, "exit_causes")


def test_the_problem_flags_state_attribute_has_every_state(published: dict[str, Any]) -> None:
    assert _attribute_tables("state") == {"binary_sensor.stream_problem": _names(published, "stream_states")}


def test_the_words_the_integration_acts_on_are_the_agents(published: dict[str, Any]) -> None:
    states, causes = _ids(published, "stream_states"), _ids(published, "exit_causes")
    assert {integration_words.STATE_RUNNING, integration_words.STATE_STARTING} <= states
    assert {integration_words.CAUSE_STOPPED, integration_words.CAUSE_BUFFER_ALLOCATION} <= causes
    parsed = AgentVocabulary.from_json(published)
    # Neither "running" nor "starting" is a problem: the repairs and the problem flag rely on it.
    assert not parsed.is_problem(integration_words.STATE_RUNNING)
    assert not parsed.is_problem(integration_words.STATE_STARTING)
    assert parsed.problem_states  # the agent marks some


def test_the_parsed_vocabulary_keeps_the_agents_order_and_names(published: dict[str, Any]) -> None:
    parsed = AgentVocabulary.from_json(published)
    assert list(parsed.stream_states) == [word["id"] for word in published["stream_states"]]
    assert parsed.problem_states == {word["id"] for word in published["stream_states"] if word["problem"]}
    for word in published["exit_causes"]:
        assert parsed.cause_name(word["id"]) == word["name"]
    assert parsed.cause_name("a_new_cause") == "a_new_cause"  # a word it does not name shows as is
    assert parsed.cause_name(None) is None


@pytest.mark.parametrize(
    "answer",
    [
        [],
        {"vocabulary_version": 2, "stream_states": [], "exit_causes": []},
        {"vocabulary_version": 1, "stream_states": "running"},
        {"vocabulary_version": 1, "stream_states": [{"name": "no id"}]},
    ],
)
def test_an_answer_in_another_shape_is_refused(answer: Any) -> None:
    with pytest.raises(VocabularyError):
        AgentVocabulary.from_json(answer)


def test_the_entity_platforms_hold_no_copy_of_the_agents_words(published: dict[str, Any]) -> None:
    """Only vocabulary.py may spell a stream state or an exit cause as a string literal (the few the
    integration acts on); every other module asks the vocabulary."""
    words = _ids(published, "stream_states") | _ids(published, "exit_causes")
    # The event entity's event types are the integration's own words ("failed" is also a stream state).
    words -= {EVENT_FAILED, EVENT_RECOVERED}
    for module in PLATFORMS:
        source = (COMPONENT / f"{module}.py").read_text()
        literals = set(re.findall(r"""["']([a-z_]+)["']""", source))
        assert not literals & words, f"{module}.py spells {sorted(literals & words)}"
