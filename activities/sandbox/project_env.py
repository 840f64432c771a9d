"""The generated project's environment: immutable, keyed, built offline inside the sandbox.

An environment is keyed by the interpreter and its base layer (``interpreter.fingerprint``)
and by the project's declared requirements, normalised (``requirements.txt`` lines and
``[project].dependencies`` of ``pyproject.toml``; a local path requirement by the hash of
its content). It is built at most once per key (a file lock), shared by every
repository, feature and attempt that declares the same, and mounted read-only at
``/venv``. So a package the current tree does not declare is never present: removing a
requirement changes the key, and the old environment is simply not used.

Requirements the base layer (the worker's own packages) already satisfies need nothing:
such a project gets the base environment. Otherwise pip runs inside the sandbox (no
network, ``--no-index``, the operator's wheelhouse ``BACKFORGE_WHEELHOUSE`` read-only),
the project's build code included, and streams the result back as a tar archive that the
worker unpacks with strict checks into a new directory, freezes read-only and publishes
with its manifest. A requirement that is not available offline fails with a message
naming it; nothing is ever retried online.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from activities.sandbox import env_store, interpreter
from activities.sandbox.host import ENV_BUILDER, ChannelStream, capabilities, run_with_channel
from activities.sandbox.models import WHEELHOUSE, WORKSPACE, EnvResult, ProjectEnv, SandboxLimits

__all__ = [
    "BUILD_LIMITS",
    "Declared",
    "declared_requirements",
    "wheelhouses",
    "ensure_project_env",
]

BUILD_LIMITS = SandboxLimits(
    timeout_s=900, cpu_s=900, memory_mb=4096, file_size_mb=1024, disk_mb=2048,
    output_limit_bytes=24_000,
)  # fmt: skip
_IGNORED_OPTIONS = {
    "-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--trusted-host",
    "--no-index", "--pre", "--prefer-binary", "--only-binary", "--no-binary",
}  # fmt: skip
_LOCAL_HASH_LIMIT = 256 * 1024 * 1024
_TAR_LIMIT = 4 * 1024 * 1024 * 1024
_TAR_MEMBERS = 200_000
_MISSING = re.compile(
    r"(?:No matching distribution found for|Could not find a version that satisfies the "
    r"requirement) (\S+)"
)


@dataclass
class Declared:
    """What a checkout declares, as the key sees it and as pip inside the sandbox gets it."""

    requirements: list[str] = field(default_factory=list)
    pip_args: list[str] = field(default_factory=list)
    needs_pip: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)


def wheelhouses() -> list[Path]:
    """The operator's wheelhouse directories (``BACKFORGE_WHEELHOUSE``, os.pathsep-separated)."""
    value = os.environ.get("BACKFORGE_WHEELHOUSE", "")
    return [Path(p).resolve() for p in value.split(os.pathsep) if p and Path(p).is_dir()]


def _looks_like_path(text: str) -> bool:
    return "/" in text or text.startswith(".") or text.endswith((".whl", ".zip", ".tar.gz", ".tgz"))


def _content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    total = 0
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*"))
    for p in files:
        rel = p.relative_to(path).as_posix() if p != path else p.name
        if ".git" in p.parts[len(path.parts) :] or "__pycache__" in p.parts:
            continue
        digest.update(rel.encode() + b"\0")
        if p.is_symlink():
            digest.update(b"L" + os.readlink(p).encode())
        elif p.is_file():
            data = p.read_bytes()
            total += len(data)
            if total > _LOCAL_HASH_LIMIT:
                raise ValueError(f"local requirement {path.name} is larger than 256 MiB")
            digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()


class _Reader:
    """Reads requirement files the way pip would, minus the options that reach the network."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.out = Declared()
        self.reqs: list[Requirement] = []
        self.locals: list[str] = []

    def inside(self, base: Path, text: str, what: str) -> Path:
        path = (base / text).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"{what} {text!r} is outside the project")
        if not path.exists():
            raise ValueError(f"{what} {text!r} does not exist")
        return path

    def local(self, base: Path, text: str) -> None:
        path = self.inside(base, text, "local requirement")
        if path == self.root:
            self.out.notes.append(
                f"{text!r} is the project itself: not installed (it is on sys.path)"
            )
            return
        rel = path.relative_to(self.root).as_posix()
        digest = _content_hash(path)
        self.out.requirements.append(f"./{rel} (sha256:{digest[:16]})")
        self.out.digests.append(digest)
        self.out.pip_args.append(f"{WORKSPACE}/{rel}")
        self.out.needs_pip.append(f"./{rel}")

    def requirement(self, base: Path, text: str, origin: str) -> None:
        try:
            req = Requirement(text)
        except InvalidRequirement as err:
            if _looks_like_path(text):
                self.local(base, text)
                return
            raise ValueError(f"{origin}: not a requirement: {text!r} ({err})") from err
        if req.url:
            if req.url.startswith("file:"):
                self.local(base, req.url.removeprefix("file://").removeprefix("file:"))
                return
            raise ValueError(
                f"{origin}: {text!r} is a URL requirement; packages come only from the "
                "worker's wheelhouse (BACKFORGE_WHEELHOUSE)"
            )
        self.reqs.append(req)

    def file(self, path: Path, depth: int = 0) -> None:
        if depth > 5:
            raise ValueError(f"{path.name}: requirement files nested too deeply")
        rel = path.relative_to(self.root).as_posix()
        text = re.sub(r"\\\n", " ", path.read_text())
        for raw in text.splitlines():
            line = re.sub(r"(^|\s)#.*$", "", raw).strip()
            if not line:
                continue
            if not line.startswith("-"):
                self.requirement(path.parent, line, rel)
                continue
            option, _, value = line.replace("=", " ", 1).partition(" ")
            value = value.strip()
            if option in ("-r", "--requirement"):
                self.file(self.inside(path.parent, value, "requirement file"), depth + 1)
            elif option in ("-c", "--constraint"):
                target = self.inside(path.parent, value, "constraint file")
                self.out.requirements.append(f"-c {target.relative_to(self.root).as_posix()}")
                self.out.digests.append(_content_hash(target))
                rel_c = target.relative_to(self.root).as_posix()
                self.out.pip_args += ["-c", f"{WORKSPACE}/{rel_c}"]
            elif option in ("-e", "--editable"):
                self.local(path.parent, value)
            elif option in _IGNORED_OPTIONS:
                self.out.notes.append(
                    f"{rel}: ignored {option} (packages come from the worker's wheelhouse)"
                )
            else:
                raise ValueError(f"{rel}: unsupported option {option!r}")


def declared_requirements(source: Path) -> Declared:
    """The requirements a checkout declares, normalised.

    Raises:
        ValueError: For an unreadable declaration (invalid TOML, a bad line, a local
            path outside the project, a URL requirement).
    """
    root = Path(source).resolve()
    reader = _Reader(root)
    req_file = root / "requirements.txt"
    if req_file.is_file():
        reader.file(req_file)
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            project = tomllib.loads(pyproject.read_text()).get("project", {})
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"pyproject.toml is not valid TOML: {err}") from err
        deps = project.get("dependencies", []) if isinstance(project, dict) else []
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            raise ValueError("pyproject.toml: [project].dependencies must be a list of strings")
        for dep in deps:
            if dep.strip().startswith("-"):
                raise ValueError(f"pyproject.toml: not a requirement: {dep!r}")
            if dep.strip():
                reader.requirement(root, dep.strip(), "pyproject.toml")
    out = reader.out
    for req in reader.reqs:
        text = str(req)
        out.requirements.append(text)
        out.pip_args.append(text)
        if not _satisfied_by_base(req):
            out.needs_pip.append(text)
    out.requirements = sorted(set(out.requirements))
    return out


def _satisfied_by_base(req: Requirement, depth: int = 0) -> bool:
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        return True  # not for this interpreter
    dist = interpreter.base_distributions().get(canonicalize_name(req.name))
    if dist is None or not req.specifier.contains(dist.version, prereleases=True):
        return False
    if depth > 3:
        return True
    for extra in req.extras:
        for line in dist.requires or []:
            dep = Requirement(line)
            if dep.marker is not None and dep.marker.evaluate({"extra": extra}):
                dep.marker = None
                if not _satisfied_by_base(dep, depth + 1):
                    return False
    return True


def _key(declared: Declared) -> str:
    if not declared.needs_pip:
        return f"base-{interpreter.fingerprint()[:24]}"
    identity = {
        "base": interpreter.fingerprint(),
        "contained": capabilities()["contained"],
        "requirements": declared.requirements,
        "digests": sorted(declared.digests),
        "pip": declared.pip_args,
    }
    return "env-" + hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]


async def ensure_project_env(
    source: Path, *, cache_dir: Path | None = None, limits: SandboxLimits | None = None
) -> EnvResult:
    """The environment for ``source``'s declared requirements, built if needed.

    Args:
        source: The checkout (only read: the requirement files and local requirements).
        cache_dir: Where environments live; default ``$BACKFORGE_CACHE_DIR`` or
            ``~/.cache/backforge``.
        limits: Limits of the build run; default ``BUILD_LIMITS``.

    Returns:
        ``ok`` with the environment, or a one-line ``message`` saying what is missing.
    """
    started = time.monotonic()
    done = functools.partial(_result, started)
    try:
        declared = await asyncio.to_thread(declared_requirements, Path(source))
    except (ValueError, OSError) as err:
        return done(ok=False, message=str(err))
    key = _key(declared)
    envs = await asyncio.to_thread(env_store.envs_dir, cache_dir)
    reqs = declared.requirements
    if not declared.needs_pip:
        env: ProjectEnv | None = await asyncio.to_thread(env_store.base_env_cached, envs, key)
        note = "; ".join(declared.notes)
        message = "declared requirements satisfied by the base environment" + (
            f" ({note})" if note else ""
        )
        return done(ok=True, env=env, reused=True, requirements=reqs, message=message)
    if (env := await asyncio.to_thread(env_store.load, envs, key)) is not None:
        return done(ok=True, env=env, reused=True, requirements=reqs, message="environment reused")
    lock = open(envs / f"{key}.lock", "w")  # noqa: SIM115  (held across awaits)
    try:
        await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
        if (env := await asyncio.to_thread(env_store.load, envs, key)) is not None:
            return done(
                ok=True, env=env, reused=True, requirements=reqs, message="environment reused"
            )
        return await _build(Path(source), declared, key, envs, limits or BUILD_LIMITS, started)
    finally:
        lock.close()


def _result(started: float, **fields: object) -> EnvResult:
    return EnvResult.model_validate({**fields, "duration_s": round(time.monotonic() - started, 3)})


async def _build(
    source: Path, declared: Declared, key: str, envs: Path, limits: SandboxLimits, started: float
) -> EnvResult:
    finish = functools.partial(_result, started)
    staging = await asyncio.to_thread(env_store.staging_dir, envs)
    try:
        venv = staging / "venv"
        await asyncio.to_thread(interpreter.make_skeleton, venv)
        skip = sorted(str(p.relative_to(venv)) for p in venv.rglob("*"))
        houses = wheelhouses()
        config = {
            "venv": "/venv",
            "pip": declared.pip_args,
            "wheelhouses": [f"{WHEELHOUSE}/{i}" for i in range(len(houses))],
            "skip": skip,
        }
        result, extracted = await run_with_channel(
            ["python", ENV_BUILDER, json.dumps(config)],
            source=source,
            channel=functools.partial(_extract, venv),
            limits=limits,
            project_env=ProjectEnv(key="build", path=venv),
            writable_env=venv,
            wheelhouses=houses,
        )
        log = result.output
        if result.exit_code != 0 or result.timed_out or extracted is None:
            missing = sorted(set(_MISSING.findall(log)))
            if missing:
                message = (
                    f"dependencies not available offline: {', '.join(missing)} (the worker "
                    "installs only from its wheelhouse, BACKFORGE_WHEELHOUSE; nothing is "
                    "fetched from the network)"
                )
            elif result.timed_out:
                message = "installing the declared dependencies timed out"
            else:
                why = f"exit {result.exit_code}"
                if extracted is None and result.exit_code == 0:
                    why = "the installed files could not be read back"
                message = f"installing the declared dependencies failed ({why}): {_last_error(log)}"
            return finish(
                ok=False, requirements=declared.requirements, missing=missing,
                message=message, log=log,
            )  # fmt: skip
        installed = await asyncio.to_thread(_installed, venv)
        env = ProjectEnv(
            key=key, path=staging, requirements=declared.requirements, installed=installed
        )
        extra = {"created": time.time(), "files": extracted, "isolation": result.isolation}
        env = await asyncio.to_thread(env_store.publish, envs, staging, env, extra)
        return finish(
            ok=True, env=env, requirements=declared.requirements, log=log,
            message=f"built the project environment: {', '.join(installed) or 'nothing new'}",
        )  # fmt: skip
    finally:
        if staging.exists():
            await asyncio.to_thread(env_store.remove_tree, staging)


def _last_error(output: str) -> str:
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR")]
    return (errors or lines or ["no output"])[-1][:500]


def _installed(venv: Path) -> list[str]:
    found = []
    for meta in interpreter.site_packages(venv).glob("*.dist-info/METADATA"):
        text = meta.read_text(errors="replace")
        name = re.search(r"^Name: (.+)$", text, re.M)
        version = re.search(r"^Version: (.+)$", text, re.M)
        if name and version:
            found.append(f"{canonicalize_name(name[1].strip())}=={version[1].strip()}")
    return sorted(found)


# --- unpacking what the sandbox built -----------------------------------------------------


def _extract(root: Path, stream: ChannelStream) -> int:
    """Unpack the builder's tar stream into ``root``; returns the number of entries.

    The stream is untrusted: only relative names without ``..``, only directories,
    regular files and symlinks whose target stays inside; every path component is
    opened without following symlinks, so no entry writes through a link.
    """
    count = 0
    total = 0
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with tarfile.open(fileobj=io.BufferedReader(stream), mode="r|") as tar:
            for member in tar:
                count += 1
                total += max(member.size, 0)
                if count > _TAR_MEMBERS or total > _TAR_LIMIT:
                    raise ValueError("the built environment is too large")
                parts = PurePosixPath(member.name).parts
                if (
                    not parts
                    or member.name.startswith("/")
                    or any(p in ("", ".", "..") for p in parts)
                ):
                    raise ValueError(f"refused entry {member.name!r}")
                parent = _open_dirs(root_fd, parts[:-1])
                try:
                    _write_member(tar, member, parent, parts)
                finally:
                    os.close(parent)
    finally:
        os.close(root_fd)
    return count


def _open_dirs(root_fd: int, parts: tuple[str, ...]) -> int:
    fd = os.dup(root_fd)
    for part in parts:
        with contextlib.suppress(FileExistsError):
            os.mkdir(part, 0o755, dir_fd=fd)
        try:
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        finally:
            os.close(fd)
        fd = child
    return fd


def _write_member(
    tar: tarfile.TarFile, member: tarfile.TarInfo, parent: int, parts: tuple[str, ...]
) -> None:
    name = parts[-1]
    if member.isdir():
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o755, dir_fd=parent)
        os.close(os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent))
    elif member.isfile():
        mode = 0o755 if member.mode & 0o111 else 0o644
        fd = os.open(
            name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode, dir_fd=parent
        )
        with os.fdopen(fd, "wb") as out:
            data = tar.extractfile(member)
            if data is not None:
                shutil.copyfileobj(data, out)
        os.chmod(name, mode, dir_fd=parent)
    elif member.issym():
        target = member.linkname
        resolved = os.path.normpath(os.path.join(*parts[:-1], target)) if parts[:-1] else target
        if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
            raise ValueError(f"refused symlink {member.name!r} -> {target!r}")
        os.symlink(target, name, dir_fd=parent)
    else:
        raise ValueError(f"refused entry {member.name!r} (type {member.type!r})")
