"""Retry policies, heartbeat timeouts and loop bounds: pure data, read by the workflow.

Each activity's start-to-close timeout is declared with it in ``workflows/phases.py``.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

__all__ = [
    "PHASE_RETRY",
    "WORKSPACE_RETRY",
    "PHASE_HEARTBEAT",
    "MAX_CLARIFICATION_ROUNDS",
    "MAX_ESCALATIONS_PER_TASK",
    "MAX_ANALYZE_FIX_ROUNDS",
]

#: A phase is retried from its base commit; recorded model calls are replayed.
PHASE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    maximum_attempts=4,
    # Errors a retry cannot cure (bad config, a broken script, a limit hit, a
    # 401/404 from a provider) are raised with non_retryable=True where they
    # happen, so the policy needs no list of types.
)
WORKSPACE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
)

#: Phases heartbeat every agent turn, every streamed chunk and every few seconds while
#: tests run or refs are pushed; a phase silent this long has lost its worker and is
#: retried elsewhere. A feature can set its own (``FeatureRequest.heartbeat_timeout_s``).
PHASE_HEARTBEAT = timedelta(minutes=1)

MAX_CLARIFICATION_ROUNDS = 3
MAX_ESCALATIONS_PER_TASK = 3
MAX_ANALYZE_FIX_ROUNDS = 1
