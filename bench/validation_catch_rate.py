"""Catch rate and false positives of Backforge's validation vs plain schemathesis.

For the correct reference notes service, each of its seeded-defect variants
(tests/fixtures/reference_service/variants.yaml) and the demo's bookmarks service
(rebuilt from the transcript), one run serves the app on 127.0.0.1 and validates
it twice with the same example budget:

* Backforge: ``validate_service`` (all checks). A variant is *caught* when a
  blocking finding of one of its expected checks is reported; *blocked* when any
  finding blocks. On the correct services every blocking finding is a false
  positive.
* Plain schemathesis: ``schemathesis run`` with its default phases and checks,
  ``--max-examples`` equal to Backforge's budget, deterministic generation and
  user A's credentials as a header. A variant is *flagged* when schemathesis
  reports any failure; *newly flagged* when it reports a failure (operation and
  title) that the correct service does not also produce. On the correct services
  every failure is a false positive.

Usage: ``python bench/validation_catch_rate.py [--max-examples 25] [--only NAME ...]
[--json out.json]`` from the repo root. Loopback only; every run is bounded.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from activities.validation import (  # noqa: E402
    LoadSettings,
    ValidationSettings,
    ValidationTarget,
    validate_service,
)
from tests.support.validation_demo import build_demo_service  # noqa: E402
from tests.support.validation_services import (  # noqa: E402
    ServiceFiles,
    Variant,
    build_reference,
    load_variants,
    serve,
)


@dataclass
class Row:
    """One service's results for both tools."""

    name: str
    kind: str
    expect: list[str]
    backforge_seconds: float = 0.0
    backforge_blocking: list[str] = field(default_factory=list)
    backforge_findings: int = 0
    backforge_caught: bool = False
    schemathesis_seconds: float = 0.0
    schemathesis_failures: list[str] = field(default_factory=list)
    schemathesis_new: list[str] = field(default_factory=list)


def _credentials(base_url: str, files: ServiceFiles) -> list[str]:
    """Headers for user A, the way Backforge's checker would authenticate."""
    if "bearerAuth" not in files.contract.read_text():
        return ["X-User-Id: bench-user-a"]
    account = {"username": "bench_user_a", "password": "bench-password-1"}
    httpx.post(f"{base_url}/auth/register", json=account, timeout=10)
    token = httpx.post(f"{base_url}/auth/login", json=account, timeout=10).json()["access_token"]
    return [f"Authorization: Bearer {token}"]


def _schemathesis(
    base_url: str, files: ServiceFiles, max_examples: int, workdir: Path
) -> list[str]:
    junit = workdir / "junit.xml"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        str(files.contract),
        "--url",
        base_url,
        "--max-examples",
        str(max_examples),
        "--generation-deterministic",
        "--report",
        "junit",
        "--report-junit-path",
        str(junit),
        "--no-color",
    ]
    for header in _credentials(base_url, files):
        command += ["-H", header]
    subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=600, check=False)
    failures: set[str] = set()
    if junit.is_file():
        for case in ET.parse(junit).getroot().iter("testcase"):
            for failure in list(case.iter("failure")) + list(case.iter("error")):
                title = (failure.get("message") or failure.text or "").strip().splitlines()
                failures.add(f"{case.get('name')}: {title[0][:80] if title else failure.tag}")
    return sorted(failures)


def _backforge(base_url: str, files: ServiceFiles, max_examples: int) -> tuple[list[str], int]:
    report = validate_service(
        ValidationTarget(
            base_url=base_url,
            contract_path=files.contract,
            spec_path=files.spec,
            quickstart_path=files.quickstart,
            source_dir=files.root,
            settings=ValidationSettings(
                max_examples=max_examples, load=LoadSettings(requests=100, concurrency=4)
            ),
        )
    )
    return sorted({f.check for f in report.blocking}), len(report.findings)


def _measure(
    name: str, variant: Variant | None, files: ServiceFiles, max_examples: int, workdir: Path
) -> Row:
    row = Row(
        name=name,
        kind=variant.kind if variant else "correct",
        expect=variant.expect if variant else [],
    )
    with serve(files.root, log=workdir / "uvicorn-backforge.log") as url:
        start = time.perf_counter()
        row.backforge_blocking, row.backforge_findings = _backforge(url, files, max_examples)
        row.backforge_seconds = round(time.perf_counter() - start, 2)
    row.backforge_caught = bool(set(row.backforge_blocking) & set(row.expect))
    # A fresh process for schemathesis, so neither tool sees the other's records.
    with serve(files.root, log=workdir / "uvicorn-schemathesis.log") as url:
        start = time.perf_counter()
        row.schemathesis_failures = _schemathesis(url, files, max_examples, workdir)
        row.schemathesis_seconds = round(time.perf_counter() - start, 2)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--max-examples", type=int, default=25, help="examples per operation for both tools"
    )
    parser.add_argument("--only", nargs="*", help="variant names to run (default: all)")
    parser.add_argument("--json", type=Path, help="write the rows as JSON here")
    args = parser.parse_args()
    variants = [v for v in load_variants() if not args.only or v.name in args.only]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bf-bench-") as tmp:
        base = Path(tmp)
        (base / "correct").mkdir()
        correct = _measure(
            "correct",
            None,
            build_reference(base / "correct" / "service"),
            args.max_examples,
            base / "correct",
        )
        rows.append(correct)
        (base / "demo").mkdir()
        demo = _measure(
            "demo (bookmarks)",
            None,
            build_demo_service(base / "demo" / "service"),
            args.max_examples,
            base / "demo",
        )
        rows.append(demo)
        for variant in variants:
            workdir = base / variant.name
            workdir.mkdir()
            row = _measure(
                variant.name,
                variant,
                build_reference(workdir / "service", variant),
                args.max_examples,
                workdir,
            )
            row.schemathesis_new = sorted(
                set(row.schemathesis_failures) - set(correct.schemathesis_failures)
            )
            rows.append(row)
            print(
                f"  {variant.name}: backforge {row.backforge_blocking} / schemathesis {len(row.schemathesis_failures)} failures",
                file=sys.stderr,
            )

    defects = [r for r in rows if r.expect]
    baseline = rows[:2]
    print(
        f"\n{'service':32} {'backforge':>10} {'blocking checks':52} {'schemathesis':>13} {'new':>4}"
    )
    for r in rows:
        mark = (
            "caught"
            if r.backforge_caught
            else ("blocked" if r.backforge_blocking else ("-" if r.expect else "pass"))
        )
        print(
            f"{r.name:32} {mark:>10} {', '.join(r.backforge_blocking)[:52]:52} {len(r.schemathesis_failures):>13} {len(r.schemathesis_new):>4}"
        )
    n = len(defects)
    print(
        f"\nSeeded-defect variants: {n}; example budget {args.max_examples} per operation for both tools"
    )
    print(
        f"Backforge   caught (blocking finding of the expected check): {sum(r.backforge_caught for r in defects)}/{n}"
    )
    print(
        f"Backforge   blocked (any blocking finding):                   {sum(bool(r.backforge_blocking) for r in defects)}/{n}"
    )
    print(
        f"schemathesis flagged (any failure):                           {sum(bool(r.schemathesis_failures) for r in defects)}/{n}"
    )
    print(
        f"schemathesis newly flagged (a failure the correct one lacks): {sum(bool(r.schemathesis_new) for r in defects)}/{n}"
    )
    for r in baseline:
        print(
            f"False positives on {r.name}: Backforge {len(r.backforge_blocking)} blocking "
            f"({r.backforge_findings} findings in all); schemathesis {len(r.schemathesis_failures)} failures"
        )
        for failure in r.schemathesis_failures:
            print(f"    schemathesis: {failure}")
    seconds = [r.backforge_seconds for r in rows]
    print(
        f"Backforge wall time per validation: median {sorted(seconds)[len(seconds) // 2]:.1f} s, demo {demo.backforge_seconds:.1f} s"
    )
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2))


if __name__ == "__main__":
    main()
