"""The real agent's vocabulary for pure tests: built by the agent's own code (the same document
``GET /api/v1/vocabulary`` serves), so no test keeps a hand copy of the agent's words either."""

from __future__ import annotations

from custom_components.pi_stream.vocabulary import AgentVocabulary


def agent_vocabulary() -> AgentVocabulary:
    from pi_stream_agent.api.vocabulary import vocabulary

    return AgentVocabulary.from_json(vocabulary())
