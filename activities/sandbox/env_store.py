"""The store of built environments: immutable directories keyed by content, on disk.

``<cache>/envs/<key>/`` holds one environment (``venv/``) and its ``manifest.json``; it
is built in a staging directory of the worker that builds it (under a per-key file
lock), frozen read-only and renamed into place, so a reader sees a whole environment or
none. ``base_env`` is the environment of the base layer alone (the worker's own
packages), built once per interpreter without running anything.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

from activities.sandbox import interpreter, reaper
from activities.sandbox.models import ProjectEnv

__all__ = [
    "base_env",
    "base_env_cached",
    "envs_dir",
    "freeze",
    "load",
    "locked",
    "publish",
    "remove_tree",
    "staging_dir",
]


def envs_dir(cache_dir: Path | None) -> Path:
    envs = (cache_dir or interpreter.default_cache_dir()) / "envs"
    envs.mkdir(parents=True, exist_ok=True)
    return envs


def load(envs: Path, key: str) -> ProjectEnv | None:
    try:
        return ProjectEnv.model_validate_json((envs / key / "manifest.json").read_text())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def locked(envs: Path, key: str) -> Iterator[None]:
    with open(envs / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def staging_dir(envs: Path) -> Path:
    """A fresh build directory; stale ones of dead workers are removed on the way."""
    prefix = ".staging-"
    for entry in envs.iterdir():
        name = entry.name
        if name.startswith(prefix) and not reaper.owner_alive(name[len(prefix) :]):
            remove_tree(entry)
    path = envs / f"{prefix}{reaper.worker_identity()}-{secrets.token_hex(4)}"
    path.mkdir()
    return path


def remove_tree(path: Path) -> None:
    """Remove a tree of ours, frozen read-only or not."""
    for _, dirnames, _, dirfd in os.fwalk(path, follow_symlinks=False):
        for name in dirnames:
            with contextlib.suppress(OSError):
                if stat.S_ISDIR(os.stat(name, dir_fd=dirfd, follow_symlinks=False).st_mode):
                    os.chmod(name, 0o755, dir_fd=dirfd)
    with contextlib.suppress(OSError):
        path.chmod(0o755)
    shutil.rmtree(path, ignore_errors=True)


def freeze(path: Path) -> None:
    """Read-only for everyone (the mount is read-only too; this guards the host side)."""
    for dirpath, dirnames, filenames, dirfd in os.fwalk(path, follow_symlinks=False, topdown=False):
        for name in filenames:
            st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            if stat.S_ISREG(st.st_mode):
                os.chmod(name, 0o555 if st.st_mode & 0o111 else 0o444, dir_fd=dirfd)
        for name in dirnames:
            if not os.path.islink(os.path.join(dirpath, name)):
                os.chmod(name, 0o555, dir_fd=dirfd)
    path.chmod(0o555)


def publish(envs: Path, staging: Path, env: ProjectEnv, extra: dict[str, object]) -> ProjectEnv:
    final = envs / env.key
    env = env.model_copy(update={"path": final / "venv"})
    manifest = {**json.loads(env.model_dump_json()), **extra}
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=1))
    freeze(staging)
    if final.exists():  # a broken leftover without a manifest
        remove_tree(final)
    os.rename(staging, final)
    return env


@functools.cache
def base_env_cached(envs: Path, key: str) -> ProjectEnv:
    if (env := load(envs, key)) is not None:
        return env
    with locked(envs, key):
        if (env := load(envs, key)) is not None:
            return env
        staging = staging_dir(envs)
        try:
            interpreter.make_skeleton(staging / "venv")
            return publish(envs, staging, ProjectEnv(key=key, path=staging), {"base": True})
        except BaseException:
            remove_tree(staging)
            raise


def base_env(cache_dir: Path | None = None) -> ProjectEnv:
    """The environment of the base layer alone (blocking; built once per interpreter)."""
    return base_env_cached(envs_dir(cache_dir), f"base-{interpreter.fingerprint()[:24]}")
