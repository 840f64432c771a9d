"""The checks, one module per concern; each takes the shared ``RunContext``."""

from activities.validation.checks.authentication import run_authentication
from activities.validation.checks.authorization import run_authorization
from activities.validation.checks.conformance import run_conformance
from activities.validation.checks.injection import run_injection
from activities.validation.checks.performance import run_performance
from activities.validation.checks.robustness import run_robustness
from activities.validation.checks.stateful import run_lifecycle, run_reachability
from activities.validation.checks.static_review import run_static_review
from activities.validation.checks.traceability import run_traceability

__all__ = [
    "run_authentication",
    "run_authorization",
    "run_conformance",
    "run_injection",
    "run_lifecycle",
    "run_performance",
    "run_reachability",
    "run_robustness",
    "run_static_review",
    "run_traceability",
]
