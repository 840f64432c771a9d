"""The reaper: one kill loop, and the start-up sweep of what a killed worker left."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from activities.sandbox import reaper

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox is Linux-only")


def test_kill_until_gone_kills_and_reports_survivors() -> None:
    proc = subprocess.Popen(["sleep", "60"])
    try:
        assert reaper.kill_until_gone(lambda: [proc.pid] if proc.poll() is None else []) == 0
        assert proc.wait(timeout=5) == -9
    finally:
        proc.kill()
    assert reaper.kill_until_gone(lambda: [1 << 30]) == 1  # never disappears: counted


def test_worker_identity_names_a_live_worker() -> None:
    assert reaper.owner_alive(f"{reaper.worker_identity()}-abcd")
    assert not reaper.owner_alive(f"{os.getpid()}-1-abcd")  # same pid, other start time
    assert not reaper.owner_alive("not-a-name")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (cgroups and uids)")
def test_sweep_removes_a_dead_workers_cgroup_and_processes() -> None:
    parent, why = reaper.cgroup_parent()
    if parent is None:
        pytest.skip(why)
    stale = parent / f"{reaper.CGROUP_PREFIX}{os.getpid()}-1-deadbeef"  # a dead identity
    live, _ = reaper.PidsCgroup.create(16)
    assert live is not None
    stale.mkdir()
    foreign = parent / f"{reaper.CGROUP_PREFIX}0123456789ab"  # another version's name
    foreign.mkdir()
    uid = reaper.pick_uid()
    orphan = subprocess.Popen(["sleep", "60"], user=uid, group=uid, extra_groups=[])
    try:
        (stale / "cgroup.procs").write_text(str(orphan.pid))
        cleaned = reaper.sweep()
        assert f"cgroup {stale}" in cleaned
        assert orphan.wait(timeout=10) == -9
        assert not stale.exists()
        assert live.path.exists()  # ours, alive: kept
        assert foreign.exists()  # not attributable to a dead worker: kept
    finally:
        foreign.rmdir()
        orphan.kill()
        live.kill()
        live.remove()
        if stale.exists():
            time.sleep(0.1)
            stale.rmdir()
