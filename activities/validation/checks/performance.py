"""Performance: a bounded load on loopback, measured against the spec's stated targets.

A fixed number of requests at a fixed concurrency (paced to the spec's stated
rate, or the configured one, else closed loop), with a hard time cap, goes to
read operations as an authenticated user after a few records are seeded.
p50/p95/p99 latency and the error rate (any non-2xx or transport failure) are
reported; each SLA parsed from spec.md is compared with the matching figure.
With no SLA the figures are reported and nothing blocks.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

import httpx

from activities.validation.context import RunContext
from activities.validation.http import Principal
from activities.validation.models import Evidence, Finding, LoadResult, Severity, SlaTarget
from activities.validation.openapi import Operation

__all__ = ["run_performance", "percentile", "LoadRequest"]


@dataclass
class LoadRequest:
    """One request shape the load repeats."""

    label: str
    url: str
    curl: str


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _targets(ctx: RunContext) -> list[tuple[Operation, dict[str, object]]]:
    user = ctx.principals["A"]
    chosen: list[Operation] = []
    load = ctx.contract.extension.load
    if load and load.operations:
        chosen = [o for o in (ctx.contract.by_id(i) for i in load.operations) if o is not None]
    else:
        chosen = [
            o
            for o in ctx.contract.operations
            if o.method == "get" and not o.params("path") and o.secured
        ]
        chosen += [
            r.read for r in ctx.contract.resources if r.read is not None and r.create.secured
        ]
        if not chosen:
            chosen = [
                o for o in ctx.contract.operations if o.method == "get" and not o.params("path")
            ]
    targets: list[tuple[Operation, dict[str, object]]] = []
    for operation in chosen:
        path = ctx.path_values(operation, user)
        if path is not None:
            targets.append((operation, path))
    return targets


async def _drive(
    requests: list[LoadRequest],
    user: Principal,
    *,
    total: int,
    concurrency: int,
    rate: float | None,
    max_seconds: float,
    timeout: float,
) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    failed: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    started = time.perf_counter()
    deadline = started + max_seconds
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(
        headers=user.headers,
        cookies=user.cookies,
        params=user.query,
        limits=limits,
        timeout=timeout,
    ) as client:

        async def one(index: int) -> None:
            if rate is not None:
                delay = started + index / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            async with semaphore:
                if time.perf_counter() > deadline:
                    return
                request = requests[index % len(requests)]
                begin = time.perf_counter()
                try:
                    response = await client.get(request.url)
                    ok = 200 <= response.status_code < 300
                except httpx.HTTPError:
                    ok = False
                (latencies if ok else failed).append((time.perf_counter() - begin) * 1000.0)

        await asyncio.gather(*(one(i) for i in range(total)))
    return latencies, len(failed), time.perf_counter() - started


def _judge(ctx: RunContext, result: LoadResult, slas: list[SlaTarget], sample: LoadRequest) -> bool:
    met = True
    evidence = Evidence(
        curl=sample.curl,
        method="GET",
        url=sample.url,
        note=f"{result.requests} requests, concurrency {result.concurrency}",
    )
    figures = {50: result.p50_ms, 95: result.p95_ms, 99: result.p99_ms}
    for sla in slas:
        refs = [sla.requirement] if sla.requirement else []
        if sla.latency_ms is not None and sla.percentile is not None:
            measured = figures.get(sla.percentile, result.p95_ms)
            if measured > sla.latency_ms:
                met = False
                ctx.add(
                    Finding(
                        check="performance.sla_latency",
                        category="performance",
                        severity=Severity.HIGH,
                        title=f"p{sla.percentile} latency {measured:.1f} ms exceeds the stated {sla.latency_ms:g} ms",
                        detail=f"Target: {sla.text}",
                        endpoint=", ".join(result.endpoints[:4]),
                        evidence=[evidence],
                        requirements=refs,
                    )
                )
        if sla.max_error_rate is not None and result.error_rate > sla.max_error_rate:
            met = False
            ctx.add(
                Finding(
                    check="performance.sla_error_rate",
                    category="performance",
                    severity=Severity.HIGH,
                    title=f"Error rate {result.error_rate:.1%} under load exceeds the stated {sla.max_error_rate:.1%}",
                    detail=f"Target: {sla.text}",
                    endpoint=", ".join(result.endpoints[:4]),
                    evidence=[evidence],
                    requirements=refs,
                )
            )
        if sla.rate_per_s is not None and result.achieved_rate_per_s < 0.9 * sla.rate_per_s:
            met = False
            ctx.add(
                Finding(
                    check="performance.sla_rate",
                    category="performance",
                    severity=Severity.HIGH,
                    title=f"Reached {result.achieved_rate_per_s:.1f} requests/s of the stated {sla.rate_per_s:g}",
                    detail=f"Target: {sla.text}",
                    endpoint=", ".join(result.endpoints[:4]),
                    evidence=[evidence],
                    requirements=refs,
                )
            )
    stated_errors = [s.max_error_rate for s in slas if s.max_error_rate is not None]
    if not stated_errors and result.error_rate > 0.01:
        # Failed requests are not answers: with a stated target they miss it.
        met = met and not slas
        ctx.add(
            Finding(
                check="performance.errors_under_load",
                category="performance",
                severity=Severity.HIGH if slas else Severity.MEDIUM,
                title=f"{result.error_rate:.1%} of requests failed under load",
                detail="Latency figures count successful responses only." if slas else "",
                endpoint=", ".join(result.endpoints[:4]),
                evidence=[evidence],
                requirements=[s.requirement for s in slas if s.requirement],
            )
        )
    return met


def run_performance(ctx: RunContext) -> LoadResult | None:
    """Run the bounded load and compare it with the spec's targets."""
    prober = ctx.prober_required
    run = ctx.run_record("performance")
    user = ctx.principals["A"]
    settings = ctx.settings.load
    for resource in ctx.contract.resources:
        for _ in range(3):
            ctx.create(resource, user)
    targets = _targets(ctx)
    if not targets:
        run.ran = False
        run.note = "no read operation to load"
        return None
    requests: list[LoadRequest] = []
    for operation, path in targets:
        case = prober.make_case(operation, principal=user, path=path)
        url = prober.base_url + case.formatted_path
        requests.append(
            LoadRequest(operation.label, url, case.as_curl_command(base_url=prober.base_url))
        )
    slas = list(ctx.spec.slas)
    stated_rates = [s.rate_per_s for s in slas if s.rate_per_s]
    rate = settings.rate_per_s or (max(stated_rates) if stated_rates else None)
    latencies, errors, elapsed = asyncio.run(
        _drive(
            requests,
            user,
            total=settings.requests,
            concurrency=settings.concurrency,
            rate=rate,
            max_seconds=settings.max_seconds,
            timeout=ctx.settings.request_timeout_s,
        )
    )
    sent = len(latencies) + errors
    prober.count(requests[0].label, sent)
    result = LoadResult(
        endpoints=[r.label for r in requests],
        requests=sent,
        concurrency=settings.concurrency,
        rate_per_s=rate,
        duration_s=round(elapsed, 3),
        achieved_rate_per_s=round(sent / elapsed, 1) if elapsed > 0 else 0.0,
        errors=errors,
        error_rate=round(errors / sent, 4) if sent else 1.0,
        p50_ms=round(percentile(latencies, 50), 2),
        p95_ms=round(percentile(latencies, 95), 2),
        p99_ms=round(percentile(latencies, 99), 2),
        max_ms=round(max(latencies), 2) if latencies else 0.0,
        slas=slas,
    )
    result.met = _judge(ctx, result, slas, requests[0]) if slas else None
    if sent < settings.requests:
        run.note = f"stopped at the {settings.max_seconds:g} s cap after {sent} of {settings.requests} requests"
    run.operations.extend(result.endpoints)
    run.probes.append(
        f"{sent} GET requests, concurrency {settings.concurrency}, "
        + (f"paced at {rate:g}/s" if rate else "closed loop")
    )
    return result
