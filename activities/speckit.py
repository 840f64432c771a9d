"""The Spec Kit layout: where a feature's documents live, and how tasks and markers read.

Every path the pipeline composes for a feature comes from ``FeatureLayout``; task
lines are parsed and checked off here; clarification markers are found and
answers recorded here. Nothing else spells ``spec.md`` or ``tasks.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from contract import TaskItem

__all__ = [
    "CONSTITUTION",
    "CODEBASE",
    "FeatureLayout",
    "DocumentName",
    "TaskLine",
    "parse_tasks",
    "task_lines",
    "find_task",
    "check_off",
    "clarification_markers",
    "MAX_MARKERS",
    "clarification_line",
    "record_clarifications",
    "MAX_TITLE_CHARS",
]

CONSTITUTION = ".specify/memory/constitution.md"
#: The map of an existing codebase, written by the summarize phase (brownfield repositories).
CODEBASE = ".specify/memory/codebase.md"
MAX_MARKERS = 3
#: Task titles are cut to this for display; the phase itself reads the whole line.
MAX_TITLE_CHARS = 160

DocumentName = Literal[
    "codebase",
    "constitution",
    "spec",
    "plan",
    "research",
    "data-model",
    "contract",
    "quickstart",
    "tasks",
    "test-results",
    "validation",
    "analysis",
    "report",
]

_TASK_LINE = re.compile(
    r"^\s*- \[(?P<done>[ xX])\] (?P<id>T\d{3,})(?P<p> \[P\])?(?: \[(?P<story>US\d+)\])? (?P<title>.+)$"
)
_PATH = re.compile(r"(?<![\w/])((?:[\w.-]+/)*[\w.-]+\.(?:py|md|ya?ml|toml|txt|json|cfg|ini|sql))\b")
_MARKER = re.compile(r"\[NEEDS CLARIFICATION:\s*([^\]]+)\]")


@dataclass(frozen=True)
class FeatureLayout:
    """Repo-relative paths of one feature's documents (``specs/NNN-short-name/...``)."""

    feature_dir: str
    branch: str

    def path(self, name: DocumentName) -> str:
        if name == "constitution":
            return CONSTITUTION
        if name == "codebase":
            return CODEBASE
        file = {
            "spec": "spec.md",
            "plan": "plan.md",
            "research": "research.md",
            "data-model": "data-model.md",
            "contract": "contracts/openapi.yaml",
            "quickstart": "quickstart.md",
            "tasks": "tasks.md",
            "test-results": "test-results.md",
            "validation": "validation.md",
            "analysis": "analysis.md",
            "report": "report.md",
        }[name]
        return f"{self.feature_dir}/{file}"

    @property
    def prompt_history_dir(self) -> str:
        return f"history/prompts/{self.branch}"

    def prompt_history(self, run_key: str) -> str:
        return f"{self.prompt_history_dir}/{run_key}.prompt.md"


@dataclass(frozen=True)
class TaskLine:
    """One task line of tasks.md, whole."""

    id: str
    parallel: bool
    story: str | None
    description: str
    done: bool
    #: File paths the description names.
    files: tuple[str, ...]

    @property
    def text(self) -> str:
        """The line as the model should read it: id, markers and the full description."""
        marks = (" [P]" if self.parallel else "") + (f" [{self.story}]" if self.story else "")
        return f"{self.id}{marks} {self.description}"

    def item(self) -> TaskItem:
        """The short form the workflow schedules (title cut at a word, marked when cut)."""
        title = self.description
        if len(title) > MAX_TITLE_CHARS:
            title = title[: MAX_TITLE_CHARS - 1].rsplit(" ", 1)[0] + "…"
        return TaskItem(
            id=self.id,
            parallel=self.parallel,
            story=self.story,
            files=list(self.files),
            title=title,
            done=self.done,
        )


def _lines(text: str) -> list[TaskLine]:
    out = []
    for line in text.splitlines():
        m = _TASK_LINE.match(line)
        if not m:
            continue
        description = m.group("title").strip()
        out.append(
            TaskLine(
                id=m.group("id"),
                parallel=bool(m.group("p")),
                story=m.group("story"),
                description=description,
                done=m.group("done") != " ",
                files=tuple(sorted({f.strip("`") for f in _PATH.findall(description)})),
            )
        )
    return out


def task_lines(text: str) -> list[TaskLine]:
    """Every task line of tasks.md text, whole, in order."""
    return _lines(text)


def parse_tasks(text: str) -> list[TaskItem]:
    """The task list of tasks.md text (``- [ ] T001 [P] [US1] ... in app/x.py``)."""
    return [line.item() for line in _lines(text)]


def find_task(text: str, task_id: str) -> TaskLine | None:
    """The whole line of ``task_id`` in tasks.md text."""
    return next((line for line in _lines(text) if line.id == task_id), None)


def check_off(text: str, task_id: str) -> str:
    """Mark ``task_id`` done (``- [X]``) in tasks.md text."""
    return re.sub(rf"^(\s*- )\[ \]( {task_id}\b)", r"\1[X]\2", text, count=1, flags=re.M)


def clarification_markers(spec_text: str) -> list[str]:
    """The ``[NEEDS CLARIFICATION: ...]`` questions in spec.md, in order."""
    return [m.strip() for m in _MARKER.findall(spec_text)]


def clarification_line(question: str, answer: str) -> str:
    """One answered question as Spec Kit records it: ``- Q: … → A: …``."""
    return f"- Q: {question} → A: {answer}"


def record_clarifications(
    text: str, answers: list[tuple[str, str]], day: str, *, guidance: str | None = None
) -> str:
    """Add ``## Clarifications`` / ``### Session <day>`` bullets not already present.

    Args:
        answers: (question, answer) pairs a person gave.
        guidance: A reviewer's comment that sent the spec back (recorded as one bullet).
    """
    existing = set(text.splitlines())
    pairs = dict.fromkeys(clarification_line(q, a) for q, a in answers)
    if guidance and guidance.strip():
        pairs[f"- Reviewer guidance: {' '.join(guidance.split())}"] = None
    new = [line for line in pairs if line not in existing]
    if not new:
        return text
    session = f"### Session {day}"
    if "## Clarifications" not in text:
        # Spec Kit puts the section right after the header block, before the scenarios.
        anchor = text.find("\n## ")
        block = f"\n## Clarifications\n\n{session}\n\n" + "\n".join(new) + "\n"
        return text + block if anchor < 0 else text[:anchor] + "\n" + block + text[anchor:]
    start = text.index("## Clarifications")
    end = text.find("\n## ", start + 1)
    end = len(text) if end < 0 else end
    section = text[start:end].rstrip("\n")
    section += ("\n" if session in section else f"\n\n{session}\n\n") + "\n".join(new)
    return text[:start] + section + "\n" + text[end:]
