"""The visibility query behind ``list``."""

from __future__ import annotations

from cli.listing import list_query


def test_list_query_filters_by_type_and_state() -> None:
    assert list_query() == "WorkflowType = 'BackendFeatureWorkflow'"
    assert list_query(running=True) == (
        "WorkflowType = 'BackendFeatureWorkflow' AND ExecutionStatus = 'Running'"
    )
    assert list_query(awaiting=True, running=True) == (
        "WorkflowType = 'BackendFeatureWorkflow' AND BackforgeAwaitingHuman = true "
        "AND ExecutionStatus = 'Running'"
    )
