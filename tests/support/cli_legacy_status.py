"""TEMPORARY: read the old workflow's ``status`` as a ``contract.FeatureStatus``.

On this branch the worker still runs the workflow that reports
``workflows.types.FeatureStatus``: ``phase="implement T003"`` (task in the
phase string), ``"implement merge T001,T002"``, and ``last_good_commit``. The
CLI reads ``contract.FeatureStatus`` (``phase`` and ``task_id`` apart,
``head_commit`` is the last good commit), so during implement it cannot decode
the old status. Tests that follow the real workflow through the CLI install
this converter. Delete this module once the workflow reports the contract's
status.
"""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from cli.connect import QUERY_TIMEOUT
from contract import FeatureStatus

__all__ = ["from_legacy", "install"]

#: Every CLI module that imported ``query_status`` by name.
_USERS = ("cli.connect", "cli.follow", "cli.commands")


def from_legacy(raw: dict[str, Any]) -> FeatureStatus:
    """The contract's status from an old-style (or already new-style) status dict."""
    data = dict(raw)
    phase, _, rest = str(data.get("phase", "")).partition(" ")
    if rest.startswith("merge "):
        phase, rest = "merge", ""
    data["phase"] = phase
    if rest and not data.get("task_id"):
        data["task_id"] = rest
    last_good = data.pop("last_good_commit", None)
    if last_good:
        data["head_commit"] = last_good
    return FeatureStatus.model_validate(data)


async def _query_status(handle: WorkflowHandle[Any, Any]) -> FeatureStatus | None:
    try:
        raw = await handle.query("status", result_type=dict, rpc_timeout=QUERY_TIMEOUT)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise
        return None
    except Exception:
        return None
    return from_legacy(raw)


def install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the CLI read old-style statuses for the rest of the test."""
    for module in _USERS:
        monkeypatch.setattr(f"{module}.query_status", _query_status)
