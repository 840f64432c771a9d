"""What one implementation task reads: its place in tasks.md and the parts that concern it.

The implement phase's context (system, environment, documents) is the same for every
task of a feature, so providers serve it from cache; what differs per task comes
after it, in the first message, and is kept small: the whole task line, where it sits
(phase, story, neighbours working in parallel), the requirements it cites (whole), its
user story's scenarios, the contract operations on the paths it names and the
data-model entities it mentions. A code task whose story's tests an earlier task wrote
(from those scenarios and entities) gets where they are, by line, instead of their
text: the tests it must make pass say the same, and it reads them anyway. Everything
else is one ``view_file`` away, by the outlines in the context.
"""

from __future__ import annotations

import re

from activities.documents import (
    contract_operations,
    entity_digest,
    entity_sections,
    headings,
    requirement_ids,
    requirement_lines,
    story_section,
)
from activities.evidence import TaskScope
from activities.speckit import FeatureLayout, TaskLine, task_lines
from activities.workspace import Workspace

__all__ = ["task_brief", "parallel_siblings", "task_phase", "story_excerpt", "story_digest"]

_STORY_CHARS = 1_500
#: Paragraphs of a Spec Kit user story that serve planning, not implementation.
_PLANNING_NOTE = re.compile(r"\*\*(Why this priority|Independent Test)\*\*", re.I)
_API_PATH = re.compile(r"(?<![\w.`/])(/[a-z][\w{}\-]*(?:/[\w{}\-]+)*)")


def task_phase(tasks_text: str, task_id: str) -> str | None:
    """The ``## Phase ...`` heading of tasks.md the task sits under."""
    lines = tasks_text.splitlines()
    at = next((i for i, ln in enumerate(lines) if re.search(rf"\b{task_id}\b", ln)), None)
    if at is None:
        return None
    above = [h for h in headings(tasks_text) if h.line <= at + 1 and h.level == 2]
    return above[-1].title if above else None


def parallel_siblings(tasks_text: str, task_id: str) -> list[TaskLine]:
    """The other ``[P]`` tasks that run side by side with ``task_id`` (same batch as the
    workflow's scheduler forms: consecutive open ``[P]`` tasks naming disjoint files)."""
    batch: list[TaskLine] = []
    taken: set[str] = set()
    for line in task_lines(tasks_text):
        if line.done:
            continue
        if line.parallel and line.files and not taken.intersection(line.files):
            batch.append(line)
            taken.update(line.files)
            continue
        if any(t.id == task_id for t in batch):
            break
        batch, taken = ([line], set(line.files)) if line.parallel and line.files else ([], set())
    return [t for t in batch if t.id != task_id] if any(t.id == task_id for t in batch) else []


def _entities(data_model: str) -> list[str]:
    names = []
    for h in headings(data_model):
        if h.level >= 2:
            word = re.split(r"[\s(:—-]", re.sub(r"[`*]", "", h.title).strip(), maxsplit=1)[0]
            if word and word[0].isupper():
                names.append(word)
    return names


def story_excerpt(spec: str, story: str, *, limit: int = _STORY_CHARS) -> str | None:
    """A user story for an implementer: its heading, what it is, and its acceptance
    scenarios. The priority rationale and the independent-test note (for planning) are
    left out; a story longer than ``limit`` is cut at a line, and says so."""
    text = story_section(spec, story)
    if not text:
        return None
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if not _PLANNING_NOTE.match(p.strip())]
    text = "\n\n".join(p.strip("\n") for p in paragraphs).strip()
    text = re.sub(r"\n+-{3,}\s*$", "", text)
    if len(text) > limit:
        text = text[:limit].rsplit("\n", 1)[0] + "\n... (view_file for the rest)"
    return text


def story_digest(spec: str, story: str, spec_path: str) -> str | None:
    """Where a user story and its acceptance scenarios are in the spec, and how many."""
    number = story.removeprefix("US")
    lines = spec.splitlines()
    found = headings(spec)
    for i, h in enumerate(found):
        if not re.match(rf"User Story {re.escape(number)}\b", h.title, re.I):
            continue
        end = next((n.line - 1 for n in found[i + 1 :] if n.level <= h.level), len(lines))
        body = lines[h.line : end]
        at = next(
            (h.line + 1 + k for k, ln in enumerate(body) if "acceptance scenarios" in ln.lower()),
            None,
        )
        count = sum(1 for ln in body[at - h.line - 1 :] if re.match(r"\d+\.\s", ln)) if at else 0
        scenarios = f" ({count} acceptance scenarios from L{at})" if at and count else ""
        while end > h.line and not lines[end - 1].strip(" -\t"):
            end -= 1
        return f"`{spec_path}` L{h.line}-{end}{scenarios}"
    return None


def task_brief(
    ws: Workspace,
    layout: FeatureLayout,
    scope: TaskScope,
    tasks_text: str,
    *,
    parallel: bool,
) -> str:
    """The per-task parts of the implement prompt, as Markdown."""
    line = scope.line
    text = line.text
    # A code task whose story's tests an earlier task wrote (from the scenarios and the
    # data model): it gets where those are, and reads them with the tests it must pass.
    code_task = bool(scope.concerned) and not scope.test_modules
    parts: list[str] = []
    where = task_phase(tasks_text, line.id)
    if where:
        parts.append(f"In `tasks.md` › {where}.")
    if parallel:
        siblings = parallel_siblings(tasks_text, line.id)
        if siblings:
            names = "; ".join(f"{t.id} ({', '.join(t.files)})" for t in siblings)
            parts.append(
                "Other tasks run at the same time, each in its own copy of the branch: "
                f"{names}. Neither sees the other's files (your tests run on your copy only); "
                "Backforge merges the copies in task order afterwards. Touch only the files "
                "your task names."
            )
    spec_path, spec = layout.path("spec"), _read(ws, layout.path("spec"))
    ids = requirement_ids(text)
    if spec and ids:
        found = requirement_lines(spec, ids)
        if found:
            parts.append(f"Requirements it cites (`{spec_path}`):\n\n" + "\n".join(found))
    pointers: list[str] = []  # a code task's: where its story and entities are
    if spec and line.story and not ids:  # cited requirements say more than the story
        if code_task:
            digest = story_digest(spec, line.story, spec_path)
            if digest:
                pointers.append(f"user story {line.story}, {digest}")
        else:
            story = story_excerpt(spec, line.story)
            if story:
                parts.append(f"Its user story ({line.story}, `{spec_path}`):\n\n{story}")
    contract_path, contract = layout.path("contract"), _read(ws, layout.path("contract"))
    api_paths = list(dict.fromkeys(_API_PATH.findall(text)))
    if contract and api_paths:
        ops = contract_operations(contract, paths=api_paths)
        parts.append(f"Contract operations on its paths (`{contract_path}`):\n\n{ops}")
    model_path, model = layout.path("data-model"), _read(ws, layout.path("data-model"))
    if model:
        words = {w.lower() for w in re.findall(r"[A-Za-z]+", text)}
        named = [n for n in _entities(model) if n.lower() in words or f"{n.lower()}s" in words]
        if named and code_task:
            where = entity_digest(model, named)
            if where:
                pointers.append(f"the data-model entities it mentions, `{model_path}` {where}")
        elif named:
            entities = entity_sections(model, named, limit=_STORY_CHARS)
            if entities:
                parts.append(f"Data-model entities it mentions (`{model_path}`):\n\n{entities}")
    if pointers:
        parts.append(f"Its tests were written from its {'; and '.join(pointers)}.")
    return "\n\n".join(parts)


def _read(ws: Workspace, path: str) -> str:
    return ws.read(path) if ws.exists(path) else ""
