"""The facts about where generated code runs, for the model: the environment block.

Every model-driven phase gets one system-level block (``prompts/environment.md``)
saying which Python runs the tests, how ``run_tests`` calls pytest, which packages
and versions the project environment holds (and which common ones it lacks), what
the worker's wheelhouse offers, where files go, and what the tools do. The facts
come from the checkout (its declared requirements) and the project environment
Backforge builds for it (``activities.sandbox.ensure_project_env``); nothing is
imported from either. The text is the same for the same checkout and worker, so it
stays part of the cacheable prefix and a retried attempt replays its calls.
"""

from __future__ import annotations

import platform
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from pydantic import BaseModel, Field

from activities import prompts
from activities.sandbox import ProjectEnv, ensure_project_env
from activities.sandbox.interpreter import base_distributions
from activities.sandbox.project_env import wheelhouses
from activities.speckit import CODEBASE, CONSTITUTION

__all__ = [
    "COMMON_PACKAGES",
    "COMMAND_TIMEOUT_S",
    "EnvironmentFacts",
    "installed_packages",
    "gather_environment",
    "render_environment",
]

#: Packages a FastAPI service commonly reaches for; the block says which are present.
COMMON_PACKAGES = (
    "fastapi",
    "starlette",
    "pydantic",
    "pydantic-settings",
    "httpx",
    "pytest",
    "pytest-asyncio",
    "anyio",
    "uvicorn",
    "email-validator",
    "python-multipart",
    "sqlalchemy",
    "alembic",
    "aiosqlite",
    "pyjwt",
    "passlib",
    "bcrypt",
    "jinja2",
    "orjson",
    "requests",
)
#: The command tool's time limit (seconds); the block states it.
COMMAND_TIMEOUT_S = 30
_MAX_WHEELS = 40


class EnvironmentFacts(BaseModel):
    """What a phase's model is told about the environment (all of it deterministic)."""

    python: str = Field(description="The interpreter's version, e.g. 3.11.7.")
    env_ok: bool = Field(description="Whether the project environment could be prepared.")
    env_problem: str = Field(default="", description="Why not, in one line.")
    declared: list[str] = Field(
        default_factory=list, description="The project's declared requirements, as written."
    )
    packages: dict[str, str] = Field(
        default_factory=dict, description="Every distribution importable in the environment."
    )
    wheelhouse: list[str] = Field(
        default_factory=list, description="Distributions the wheelhouse offers (name==version)."
    )
    feature_dir: str
    codebase_map: bool = Field(description="Whether the codebase map exists in the checkout.")
    tools: list[str] = Field(default_factory=list, description="Tool names this phase has.")

    def declared_names(self) -> list[str]:
        """The canonical names of the declared requirements (unparsable ones left out)."""
        return [n for n in (_requirement_name(r) for r in self.declared) if n]

    def present_and_absent(self) -> tuple[list[str], list[str]]:
        """Declared and common packages with their versions, and the common ones missing."""
        names = dict.fromkeys([*self.declared_names(), *COMMON_PACKAGES])
        present = [f"{n} {self.packages[n]}" for n in names if n in self.packages]
        absent = [n for n in COMMON_PACKAGES if n not in self.packages]
        return present, absent


def installed_packages(env: ProjectEnv) -> dict[str, str]:
    """Canonical name -> version of every distribution the project environment offers.

    The base layer is the worker's own site-packages (Backforge itself is masked in the
    sandbox, so it is left out here too); ``env.installed`` adds what the project's
    declared requirements brought in.
    """
    found = {
        name: dist.version for name, dist in base_distributions().items() if name != "backforge"
    }
    for item in env.installed:
        name, _, version = item.partition("==")
        found[canonicalize_name(name)] = version
    return dict(sorted(found.items()))


def _wheelhouse() -> list[str]:
    names: set[str] = set()
    for house in wheelhouses():
        for wheel in sorted(house.glob("*.whl")):
            try:
                name, version, _, _ = parse_wheel_filename(wheel.name)
            except InvalidWheelFilename:
                continue
            names.add(f"{name}=={version}")
    return sorted(names)


def _requirement_name(text: str) -> str | None:
    try:
        return canonicalize_name(Requirement(text).name)
    except InvalidRequirement:
        return None


def _declared(facts: EnvironmentFacts) -> str:
    """The declared requirements as written; the installed version is on the Installed
    line, so only a missing one is marked here."""
    out = []
    for text in facts.declared:
        name = _requirement_name(text)
        out.append(f"{text} (NOT installed)" if name and name not in facts.packages else text)
    return ", ".join(out) or "nothing yet"


async def gather_environment(
    root: Path, *, feature_dir: str, tools: list[str], cache_dir: Path | None = None
) -> EnvironmentFacts:
    """The facts for a checkout at ``root`` (builds its project environment if needed)."""
    result = await ensure_project_env(root, cache_dir=cache_dir)
    packages = installed_packages(result.env) if result.ok and result.env else {}
    if not packages:  # no environment: at least the base layer is what tests would get
        packages = {n: d.version for n, d in base_distributions().items() if n != "backforge"}
    return EnvironmentFacts(
        python=platform.python_version(),
        env_ok=result.ok,
        env_problem="" if result.ok else result.message,
        declared=list(result.requirements),
        packages=dict(sorted(packages.items())),
        wheelhouse=_wheelhouse(),
        feature_dir=feature_dir,
        codebase_map=(root / CODEBASE).is_file(),
        tools=tools,
    )


_TOOL_LINES = {
    "run_tests": (
        "`run_tests`: `python -m pytest -p no:cacheprovider [paths or node ids]` from the "
        "root under the project's pytest configuration (`addopts` apply; plugins only of "
        "declared packages); Backforge's "
        "verdict and counts first, then the output's head and tail."
    ),
    "run_command": (
        "`run_command`: a `python -c` snippet or `sh -c` command in the project "
        f"environment on a throwaway copy of the repository ({COMMAND_TIMEOUT_S} s limit)."
    ),
    "api_docs": (
        "`api_docs`: the installed versions' docs, from source: `target` (dotted path) "
        "gives signature, docstring and members; `package` + `query` searches one."
    ),
}


def render_environment(facts: EnvironmentFacts) -> str:
    """The environment block, as the model reads it."""
    present, absent = facts.present_and_absent()
    env = (
        "ready"
        if facts.env_ok
        else f"NOT ready: {facts.env_problem} (fix the declared requirements first)"
    )
    others = len(facts.packages) - len(present)
    wheelhouse = (
        ", ".join(facts.wheelhouse[:_MAX_WHEELS])
        + (
            f" and {len(facts.wheelhouse) - _MAX_WHEELS} more"
            if len(facts.wheelhouse) > _MAX_WHEELS
            else ""
        )
        if facts.wheelhouse
        else ""
    )
    tools = [line for name, line in _TOOL_LINES.items() if name in facts.tools]
    memory = f"`{CONSTITUTION}`" + (
        f"; the map of the existing code is `{CODEBASE}`" if facts.codebase_map else ""
    )
    return prompts.render(
        "environment",
        python=facts.python,
        env=env,
        declared=_declared(facts),
        present=", ".join(present) or "none",
        absent=", ".join(absent) or "none",
        others=f"{others} more" if others > 0 else "nothing else",
        wheelhouse=f" or in the wheelhouse ({wheelhouse})" if wheelhouse else "",
        feature_dir=facts.feature_dir,
        memory=memory,
        tools="\n".join(f"- {line}" for line in tools),
    ).strip()
