"""``python -m activities.validation``: validate a running service and write a JSON report.

Exit status: 0 when the report was written and nothing blocks, 1 when it was
written with blocking findings, 2 for bad arguments. The JSON report is the
result; ``--markdown`` also writes validation.md and ``--summary`` the compact
summary for workflow history.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import ValidationError

from activities.validation.models import LoadSettings, ValidationSettings, ValidationTarget
from activities.validation.render import render_markdown
from activities.validation.runner import validate_service

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m activities.validation",
        description="Validate a running service from outside: contract, security, limits, load, code.",
    )
    parser.add_argument(
        "--base-url", required=True, help="where the service listens, e.g. http://127.0.0.1:8000"
    )
    parser.add_argument(
        "--contract", required=True, type=Path, help="contracts/openapi.yaml of the feature"
    )
    parser.add_argument("--spec", type=Path, help="spec.md (requirements, strengths, SLAs)")
    parser.add_argument("--quickstart", type=Path, help="quickstart.md (example calls)")
    parser.add_argument(
        "--source",
        type=Path,
        help="root of the generated project, for static review and traceability",
    )
    parser.add_argument("--output", required=True, type=Path, help="where to write the JSON report")
    parser.add_argument("--markdown", type=Path, help="also write validation.md here")
    parser.add_argument("--summary", type=Path, help="also write the compact summary JSON here")
    parser.add_argument(
        "--max-examples", type=int, default=25, help="schemathesis examples per operation and mode"
    )
    parser.add_argument(
        "--load-requests", type=int, default=200, help="requests in the bounded load"
    )
    parser.add_argument(
        "--load-concurrency", type=int, default=4, help="concurrent requests in the load"
    )
    parser.add_argument(
        "--load-rate",
        type=float,
        help="requests/s to pace at (default: the spec's, else closed loop)",
    )
    parser.add_argument(
        "--load-max-seconds", type=float, default=30.0, help="hard cap on the load's duration"
    )
    parser.add_argument("--request-timeout", type=float, default=10.0, help="seconds per request")
    parser.add_argument(
        "--wait", type=float, default=10.0, help="seconds to wait for the service to answer"
    )
    parser.add_argument(
        "--skip", action="append", default=[], help="a check category to skip (repeatable)"
    )
    parser.add_argument("--run-label", help="suffix for the users and records the checker creates")
    parser.add_argument("--semgrep", help="a semgrep executable to use (default: PATH, if any)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        target = ValidationTarget(
            base_url=args.base_url,
            contract_path=args.contract,
            spec_path=args.spec,
            quickstart_path=args.quickstart,
            source_dir=args.source,
            settings=ValidationSettings(
                max_examples=args.max_examples,
                request_timeout_s=args.request_timeout,
                wait_for_service_s=args.wait,
                skip=args.skip,
                run_label=args.run_label,
                semgrep=args.semgrep,
                load=LoadSettings(
                    requests=args.load_requests,
                    concurrency=args.load_concurrency,
                    rate_per_s=args.load_rate,
                    max_seconds=args.load_max_seconds,
                ),
            ),
        )
    except ValidationError as exc:
        print(f"invalid arguments: {exc}", file=sys.stderr)
        return 2
    report = validate_service(target)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report.model_dump_json(indent=2), encoding="utf-8")
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(render_markdown(report), encoding="utf-8")
    summary = report.summary(report_path=str(args.output))
    if args.summary is not None:
        args.summary.write_text(summary.model_dump_json(), encoding="utf-8")
    verdict = "passed" if summary.passed else "BLOCKED"
    print(
        f"validation {verdict}: {summary.blocking} blocking of {summary.findings} findings; "
        f"{summary.operations_checked}/{summary.operations_total} operations; report {args.output}"
    )
    return 0 if summary.passed else 1


if __name__ == "__main__":
    sys.exit(main())
