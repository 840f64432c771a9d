"""How figures read to a person: durations, rates, money (shared by the table and the chart)."""

from __future__ import annotations

__all__ = ["days", "duration", "money", "percent"]


def duration(seconds: float | None) -> str:
    """``2d 03h``, ``1h 05m``, ``3m 07s``, ``12.5s`` (``-`` when unknown)."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(round(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s"


def percent(share: float | None) -> str:
    """``75%`` (``-`` when unknown)."""
    return "-" if share is None else f"{share * 100:.0f}%"


def money(usd: float | None) -> str:
    """``$1.23``, or four decimals under a dollar (``-`` when unknown)."""
    if usd is None:
        return "-"
    return f"${usd:.2f}" if usd >= 1 else f"${usd:.4f}"


def days(count: float) -> str:
    """``1 day``, ``7 days``, ``0.5 days``."""
    return f"{count:g} day" if count == 1 else f"{count:g} days"
