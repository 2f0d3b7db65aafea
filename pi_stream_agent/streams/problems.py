"""What is wrong with a stream configuration, in two forms: for the config file and for a person at a form.

A :class:`Problem` keeps ``detail``, the text that follows the key path in the config-file form::

    streams[1] (id "garage"): substream.width: must be smaller than the main width (1280), got 1280

(``str(problem)``, the API's ``text``: for logs, the CLI and people editing YAML), and gives ``message``, one
plain sentence that reads on its own beside the field it concerns, with no key path, list index or stream id::

    Substream width must be smaller than the main stream's width (1280).

``label`` is the field's human name (from :data:`~.fields.FIELD_LABELS`, the one list of them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pi_stream_agent.streams.fields import FIELD_LABELS, is_stream_id

Severity = Literal["error", "warning"]

# Details that read as the rest of a sentence whose subject is the field ("must be …", "is required …").
_PREDICATES = ("must ", "is ", "has ", "cannot ", "takes ", "does ", "needs ")


def _sentence(label: str | None, detail: str) -> str:
    text = detail
    if text.startswith("expected "):
        text = "must be " + text.removeprefix("expected ")
    elif text.startswith("required: "):
        text = "is required: " + text.removeprefix("required: ")
    if label and text.startswith(_PREDICATES):
        text = f"{label} {text}"
    elif label:
        text = f"{label}: {text}"
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


@dataclass(frozen=True)
class Problem:
    """One thing wrong (``error``: the configuration is refused) or worth knowing (``warning``).

    ``where`` names the stream (``streams[1] (id "garage")``) or the file; ``field`` is the dotted key path
    inside it (``substream.width``; empty for the whole stream); ``detail`` what is wrong there, in the
    config file's words; ``sentence``, when given, the plain message where the automatic one (label +
    detail) would name another stream or a key path."""

    where: str
    field: str
    detail: str
    severity: Severity = "error"
    stream_id: str | None = None
    index: int | None = None
    sentence: str | None = None
    name: str | None = None  # the human name of a field outside FIELD_LABELS (a camera control)

    def __str__(self) -> str:
        return f"{self.where}: {self.field}: {self.detail}" if self.field else f"{self.where}: {self.detail}"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    @property
    def label(self) -> str | None:
        """The field's human name ("Substream width"); None for a problem of no single known field."""
        return self.name or FIELD_LABELS.get(self.field)

    @property
    def message(self) -> str:
        """One plain sentence for a person looking at the field (no key path, index or stream id)."""
        return self.sentence or _sentence(self.label, self.detail)

    def to_json(self) -> dict[str, Any]:
        """The API's form (422 ``invalid_config`` and ``POST /streams/validate``, docs/api.md)."""
        return {
            "stream_id": self.stream_id,
            "field": self.field or None,
            "label": self.label,
            "message": self.message,
            "severity": self.severity,
            "text": str(self),
        }


class StreamConfigError(Exception):
    """The stream configuration cannot be used. ``str()`` lists every error, one per line, for a person;
    ``problems`` holds them (errors only); ``warnings`` what was found besides."""

    def __init__(
        self,
        problems: Sequence[Problem],
        heading: str = "invalid stream configuration",
        warnings: Sequence[Problem] = (),
    ) -> None:
        self.problems = [problem for problem in problems if problem.is_error]
        self.warnings = [problem for problem in (*problems, *warnings) if not problem.is_error]
        self.heading = heading
        super().__init__(heading + ":\n  " + "\n  ".join(str(problem) for problem in self.problems))


def raise_for_errors(
    problems: Sequence[Problem], heading: str = "invalid stream configuration"
) -> list[Problem]:
    """Raise :class:`StreamConfigError` when any problem is an error; otherwise return the warnings."""
    if any(problem.is_error for problem in problems):
        raise StreamConfigError(problems, heading)
    return list(problems)


def stream_label(index: int | None, stream_id: Any) -> str:
    """``streams[1] (id "garage")``; ``streams[1]`` when the id is missing or bad; ``stream "garage"`` for a
    stream outside a list (a single API request)."""
    good_id = is_stream_id(stream_id)
    if index is None:
        return f'stream "{stream_id}"' if good_id else "stream"
    return f'streams[{index}] (id "{stream_id}")' if good_id else f"streams[{index}]"


def stream_problem(
    index: int | None,
    stream_id: Any,
    field: str,
    detail: str,
    severity: Severity = "error",
    *,
    sentence: str | None = None,
) -> Problem:
    """A problem of one stream (at ``index`` in its list, when in one)."""
    given_id = stream_id if isinstance(stream_id, str) else None
    return Problem(stream_label(index, stream_id), field, detail, severity, given_id, index, sentence)
