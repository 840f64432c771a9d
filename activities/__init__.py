"""All I/O of Backforge: phases, models, workspace, sandbox."""

from activities.phases.analyze import run_phase_analyze
from activities.phases.constitution import run_phase_constitution
from activities.phases.deliver import run_phase_deliver
from activities.phases.fix import run_phase_fix
from activities.phases.implement import run_phase_implement
from activities.phases.merge import merge_task_commits
from activities.phases.plan import run_phase_plan
from activities.phases.specify import run_phase_specify
from activities.phases.tasks import run_phase_tasks
from activities.phases.testing import run_phase_test
from activities.phases.workspace_ops import prepare_workspace, reset_workspace

ALL_ACTIVITIES = [
    prepare_workspace,
    reset_workspace,
    run_phase_constitution,
    run_phase_specify,
    run_phase_plan,
    run_phase_tasks,
    run_phase_implement,
    run_phase_test,
    run_phase_fix,
    run_phase_analyze,
    run_phase_deliver,
    merge_task_commits,
]

__all__ = ["ALL_ACTIVITIES", *(a.__name__ for a in ALL_ACTIVITIES)]
