"""What one implementation task reads: its place in tasks.md and the parts that concern it.

The implement phase's context (system, environment, documents) is the same for every
task of a feature, so providers serve it from cache; what differs per task comes
after it, in the first message, and is kept small: the whole task line, where it sits
(phase, story, neighbours working in parallel), the requirements it cites, its user
story's scenarios, the contract operations on the paths it names and the data-model
entities it mentions. Everything else is one ``view_file`` away, by the outlines in
the context.
"""

from __future__ import annotations

import re

from activities.documents import (
    contract_operations,
    entity_sections,
    headings,
    requirement_ids,
    requirement_lines,
    story_section,
)
from activities.evidence import TaskScope
from activities.speckit import FeatureLayout, TaskLine, task_lines
from activities.workspace import Workspace

__all__ = ["task_brief", "parallel_siblings", "task_phase"]

_STORY_CHARS = 1_500
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
    parts: list[str] = []
    where = task_phase(tasks_text, line.id)
    if where:
        parts.append(f"It belongs to `tasks.md` › {where}.")
    if parallel:
        siblings = parallel_siblings(tasks_text, line.id)
        if siblings:
            names = "; ".join(f"{t.id} ({', '.join(t.files)})" for t in siblings)
            parts.append(
                "You work alongside other tasks running at the same time, each in its own "
                f"copy of the branch: {names}. You cannot see their files and they cannot "
                "see yours (your tests run on your copy only); Backforge merges the copies "
                "afterwards in task order. Touch only the files your task names."
            )
    spec_path, spec = layout.path("spec"), _read(ws, layout.path("spec"))
    ids = requirement_ids(text)
    if spec and ids:
        found = requirement_lines(spec, ids)
        if found:
            parts.append(f"Requirements it cites (`{spec_path}`):\n\n" + "\n".join(found))
    if spec and line.story and not ids:  # cited requirements say more than the story
        story = story_section(spec, line.story)
        if story:
            if len(story) > _STORY_CHARS:
                story = story[:_STORY_CHARS].rsplit("\n", 1)[0] + "\n... (view_file for the rest)"
            parts.append(f"Its user story ({line.story}, `{spec_path}`):\n\n{story}")
    contract_path, contract = layout.path("contract"), _read(ws, layout.path("contract"))
    api_paths = list(dict.fromkeys(_API_PATH.findall(text)))
    if contract and api_paths:
        ops = contract_operations(contract, paths=api_paths)
        parts.append(
            f"Contract operations on the paths it names (`{contract_path}`, line numbers "
            f"for `view_file`):\n\n{ops}"
        )
    model_path, model = layout.path("data-model"), _read(ws, layout.path("data-model"))
    if model:
        words = {w.lower() for w in re.findall(r"[A-Za-z]+", text)}
        named = [n for n in _entities(model) if n.lower() in words or f"{n.lower()}s" in words]
        entities = entity_sections(model, named, limit=_STORY_CHARS) if named else ""
        if entities:
            parts.append(f"Data-model entities it mentions (`{model_path}`):\n\n{entities}")
    return "\n\n".join(parts)


def _read(ws: Workspace, path: str) -> str:
    return ws.read(path) if ws.exists(path) else ""
