"""Heartbeat on progress of a streamed model call, never on a timer.

Providers stream every call and call :meth:`StreamHeartbeat.beat` as each event
arrives. So the activity heartbeats only while bytes are really flowing: if the
server stops sending (a hung connection, a stalled stream), the heartbeats stop,
Temporal's ``heartbeat_timeout`` fires, and the attempt is retried elsewhere. A
background loop that beats on a timer would keep a hung call alive forever, which
is exactly what this avoids.

Implications for whoever sets the activity's ``heartbeat_timeout``: it must be
longer than the longest silence of a healthy call, which is the time to the first
event (Anthropic sends its first event at once and ``ping`` events after; OpenAI
reasoning models may think silently for a while before the first chunk). The
per-call ``ModelSettings.timeout_s`` bounds the whole call in any case.

Each beat re-sends the details the previous attempt left, so a provider's beat never
clobbers an activity's checkpoint.
"""

from __future__ import annotations

import time

from temporalio import activity

__all__ = ["MIN_INTERVAL_S", "StreamHeartbeat"]

#: At most one heartbeat per this many seconds (the first event always beats).
MIN_INTERVAL_S = 1.0


class StreamHeartbeat:
    """Heartbeats the current activity as stream events arrive.

    Outside an activity (tests, benchmarks, scripts) it only counts events.

    Args:
        min_interval_s: Throttle between heartbeats; None uses :data:`MIN_INTERVAL_S`.
    """

    def __init__(self, *, min_interval_s: float | None = None) -> None:
        self._active = activity.in_activity()
        self._interval = MIN_INTERVAL_S if min_interval_s is None else min_interval_s
        self._last = float("-inf")
        #: Events seen so far.
        self.events = 0
        #: Heartbeats sent so far.
        self.beats = 0

    def beat(self) -> None:
        """Record one stream event; heartbeat if the throttle allows."""
        self.events += 1
        if not self._active:
            return
        now = time.monotonic()
        if now - self._last < self._interval:
            return
        self._last = now
        activity.heartbeat(*activity.info().heartbeat_details)
        self.beats += 1
