"""Contract conformance with schemathesis's Python API.

Each operation of the contract becomes two Hypothesis strategies
(``APIOperation.as_strategy``): schema-valid requests and schema-invalid ones.
A bounded number of examples of each is sent as a checker user and every
response goes through schemathesis's checks: no server error, a documented
status code, a documented content type, a body that matches the response
schema; valid requests must not be rejected. When the contract declares
OpenAPI links, schemathesis's state machine (``schema.as_state_machine()``)
also runs a bounded number of linked sequences.

Runs are deterministic: Hypothesis is derandomized (its seed is derived from
the test, and there is no example database), shrinking is off, and the example
budget is fixed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from activities.validation.context import RunContext
from activities.validation.http import Call, Principal
from activities.validation.models import Severity
from activities.validation.openapi import Operation

if TYPE_CHECKING:
    from schemathesis import Case
    from schemathesis.schemas import BaseSchema

__all__ = ["run_conformance", "load_schema", "POSITIVE_CHECKS", "NEGATIVE_CHECKS"]

POSITIVE_CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "positive_data_acceptance",
)
NEGATIVE_CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)


def load_schema(path: str) -> BaseSchema:
    """The contract as a schemathesis schema, with an explicit empty configuration.

    An explicit config keeps schemathesis from picking up a ``schemathesis.toml``
    from the working directory, which the generated project could control.
    Output sanitization is off so curl lines in the evidence replay as sent (the
    credentials are the checker's own throwaway accounts).
    """
    import schemathesis

    config = schemathesis.Config.from_dict({"output": {"sanitization": {"enabled": False}}})
    return schemathesis.openapi.from_path(path, config=config)


def _hypothesis_settings(max_examples: int) -> Any:
    from hypothesis import HealthCheck, Phase, settings

    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
        report_multiple_bugs=False,
    )


def _authorize(case: Case, user: Principal) -> None:
    # Credentials always belong to the checker's fuzz user; a random identity
    # header would turn every request into a different, empty account.
    for name, value in user.headers.items():
        case.headers[name] = value
    if user.query:
        case.query = {**(case.query or {}), **user.query}
    if user.cookies:
        case.cookies = {**(case.cookies or {}), **user.cookies}


def _run_operation(
    ctx: RunContext, operation: Operation, user: Principal, *, positive: bool
) -> int:
    from hypothesis import given
    from hypothesis.errors import HypothesisException
    from schemathesis import GenerationMode

    prober = ctx.prober_required
    api_operation = prober.api_operation(operation)
    mode = GenerationMode.POSITIVE if positive else GenerationMode.NEGATIVE
    strategy = api_operation.as_strategy(generation_mode=mode)
    checks = POSITIVE_CHECKS if positive else NEGATIVE_CHECKS
    sent = 0

    @_hypothesis_settings(ctx.settings.max_examples)
    @given(case=strategy)
    def exercise(case: Case) -> None:
        nonlocal sent
        _authorize(case, user)
        call = prober.send(operation, case)
        sent += 1
        if call.response is None:
            ctx.report_http(
                "contract.no_response",
                "contract",
                Severity.HIGH,
                "The service did not answer a request",
                call,
                note=call.error,
            )
            return
        ctx.validate(call, positive=positive, checks=checks)

    try:
        exercise()
    except HypothesisException:
        # Unsatisfiable (nothing to make invalid) or a health-check edge: nothing more to send.
        pass
    except Exception as exc:  # noqa: BLE001 - one untestable operation must not stop the others
        note = f"{operation.label} ({'valid' if positive else 'invalid'} requests): {type(exc).__name__}: {exc}"
        ctx.run_record("contract").note += f" [not generated: {note[:200]}]"
    return sent


def _run_state_machine(ctx: RunContext, schema: BaseSchema, user: Principal) -> int:
    from hypothesis import HealthCheck
    from hypothesis import settings as hsettings
    from hypothesis.errors import HypothesisException

    prober = ctx.prober_required
    by_label = {o.label: o for o in ctx.contract.operations}
    sent = 0
    base = schema.as_state_machine()

    class Machine(base):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {
                "base_url": prober.base_url,
                "session": prober.session,
                "timeout": prober.timeout,
            }

        def before_call(self, case: Case) -> None:
            operation = by_label.get(f"{case.method.upper()} {case.path}")
            if operation is not None:
                _authorize(case, user)

        def validate_response(
            self, response: Any, case: Case, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            nonlocal sent
            sent += 1
            operation = by_label.get(f"{case.method.upper()} {case.path}")
            if operation is None:
                return
            prober.count(operation.label)
            call = Call(operation, case, response, base_url=prober.base_url)
            ctx.validate(
                call,
                positive=True,
                note="linked sequence (OpenAPI links)",
                checks=(*POSITIVE_CHECKS[:-1], "use_after_free", "ensure_resource_availability"),
            )

    try:
        Machine.run(
            settings=hsettings(
                max_examples=ctx.settings.stateful_scenarios,
                stateful_step_count=6,
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                print_blob=False,
            )
        )
    except (HypothesisException, AssertionError):
        pass
    except Exception as exc:  # noqa: BLE001 - broken links must not stop the other checks
        ctx.run_record(
            "contract"
        ).note += f" [state machine stopped: {type(exc).__name__}: {str(exc)[:200]}]"
    return sent


def _has_links(ctx: RunContext) -> bool:
    for operation in ctx.contract.operations:
        for response in operation.responses.values():
            if isinstance(response, dict) and response.get("links"):
                return True
    return False


def run_conformance(ctx: RunContext, schema: BaseSchema) -> None:
    """Fuzz every operation with valid and invalid requests and check each response."""
    run = ctx.run_record("contract")
    user = ctx.principals.get("fuzz") or ctx.principals["A"]
    flow = ctx.contract.auth_flow
    sent = 0
    for operation in ctx.contract.operations:
        if operation is flow.login:
            continue
        sent += _run_operation(ctx, operation, user, positive=True)
        sent += _run_operation(ctx, operation, user, positive=False)
        run.operations.append(operation.label)
    run.probes.append(
        f"schemathesis: up to {ctx.settings.max_examples} schema-valid and "
        f"{ctx.settings.max_examples} schema-invalid requests per operation (derandomized)"
    )
    if _has_links(ctx):
        steps = _run_state_machine(ctx, schema, user)
        sent += steps
        run.probes.append(f"schemathesis state machine over OpenAPI links ({steps} steps)")
    else:
        run.note = "no OpenAPI links in the contract: linked sequences come from the data model (stateful checks)"
