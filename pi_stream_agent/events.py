"""In-process event bus: collectors publish edges (under-voltage, throttle bits, hot-plug); the API
pushes them.

Publishing is synchronous and cheap: subscribers only enqueue, so a slow WebSocket client never delays a
collector.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    """One thing that happened. ``type`` names it (``under_voltage``, ``throttle_changed``,
    ``device_added``…); ``data`` is JSON-ready; ``timestamp`` is Unix time in seconds."""

    type: str
    data: dict[str, Any]
    timestamp: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "timestamp": self.timestamp, "data": self.data}


Subscriber = Callable[[Event], None]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Register ``subscriber``; returns the function that unregisters it."""
        self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe

    def publish(self, event_type: str, data: dict[str, Any]) -> Event:
        event = Event(event_type, data)
        for subscriber in list(self._subscribers):
            subscriber(event)
        return event
