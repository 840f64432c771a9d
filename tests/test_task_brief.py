"""What an implementation task reads: its brief and the implement context.

The promises: the whole task line; the requirements a task cites, whole; a story's
scenarios (or, for a code task whose story's tests exist, where they are); the contract
operations and data-model entities it names; the plan's source tree; outlines that give
the line numbers of everything else.
"""

from __future__ import annotations

from pathlib import Path

from activities import prompts
from activities.documents import entity_digest, outline, requirement_lines
from activities.environment import EnvironmentFacts, render_environment
from activities.evidence import task_scope
from activities.phases.implement import ImplementPhase
from activities.speckit import FeatureLayout
from activities.task_brief import story_digest, story_excerpt, task_brief
from activities.workspace import Workspace
from contract import PhaseInput, WorkspaceInfo

FEATURE = "specs/001-notes"
LAYOUT = FeatureLayout(feature_dir=FEATURE, branch="001-notes")

SPEC = """\
# Feature Specification: Notes

## Clarifications

### Session 2026-01-01

- Q: Are titles unique? → A: No.

## User Scenarios & Testing *(mandatory)*

### User Story 1 - Keep notes (Priority: P1)

A user writes short notes and reads them back.

**Why this priority**: notes are the product.

**Independent Test**: create and list notes as two users.

**Acceptance Scenarios**:

1. **Given** a user, **When** they save a note, **Then** it is listed.
2. **Given** a note of user B, **When** user A reads it, **Then** it is not found (404).

---

### Edge Cases

- A title of only spaces is empty.

## Requirements *(mandatory)*

### Functional Requirements

- **FR-001**: Users MUST be able to save a note with a title of 1 to 80
  characters after trimming, and the system MUST record when it was created.
- **FR-002**: System MUST treat another user's note exactly like a missing one.

### Key Entities

- **Note**: a title and a body.
"""

DATA_MODEL = """\
# Data Model: Notes

## Note

| Field | Type | Rules |
|-------|------|-------|
| `title` | string | Required; 1-80 characters (FR-001). |

## Error

`ErrorResponse{detail: string}`.
"""

CONTRACT = """\
openapi: 3.1.0
info: {title: Notes, version: 1.0.0}
paths:
  /notes:
    get:
      summary: List my notes (FR-001)
      responses: {"200": {description: ok}}
    post:
      summary: Save a note (FR-001)
      responses: {"201": {description: created}, "422": {description: invalid}}
"""

PLAN = """\
# Implementation Plan: Notes

## Technical Context

**Language/Version**: Python 3.11
**Storage**: in-memory

## Project Structure

### Documentation (this feature)

```text
specs/001-notes/plan.md
```

### Source Code (repository root)

```text
app/
├── main.py     # create_app()
└── notes.py    # /notes
tests/
└── test_notes.py
```

**Structure Decision**: one module per resource, because it is small.
"""

LONG = (
    "Implement the notes endpoints GET /notes and POST /notes in app/notes.py, registered "
    "in app/main.py, keeping every existing response field unchanged for clients that "
    "send no title and answering 422 with the offending field named"
)
TASKS = f"""\
# Tasks: Notes

## Phase 3: User Story 1 - Keep notes (Priority: P1)

- [ ] T001 [US1] Write note API tests for FR-001 to FR-002 in tests/test_notes.py
- [ ] T002 [US1] {LONG}
"""


def _workspace(root: Path) -> Workspace:
    files = {
        "spec.md": SPEC,
        "data-model.md": DATA_MODEL,
        "contracts/openapi.yaml": CONTRACT,
        "plan.md": PLAN,
        "tasks.md": TASKS,
        "research.md": "# Research\n",
    }
    for name, text in files.items():
        path = root / FEATURE / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return Workspace(root)


def _brief(ws: Workspace, task: str) -> str:
    scope = task_scope(TASKS, task, feature_dir=FEATURE)
    assert scope is not None
    return task_brief(ws, LAYOUT, scope, TASKS, parallel=False)


def test_a_cited_requirement_reaches_the_model_whole() -> None:
    [fr1] = requirement_lines(SPEC, ["FR-001"])
    assert fr1.startswith("- **FR-001**: Users MUST be able to save a note")
    assert fr1.endswith("and the system MUST record when it was created.")


def test_a_story_excerpt_keeps_the_scenarios_and_leaves_the_planning_notes() -> None:
    story = story_excerpt(SPEC, "US1")
    assert story is not None
    assert story.startswith("### User Story 1 - Keep notes (Priority: P1)")
    assert "A user writes short notes" in story
    assert "2. **Given** a note of user B" in story  # every scenario
    assert "Why this priority" not in story and "Independent Test" not in story
    assert not story.endswith("---")


def test_a_story_digest_says_where_the_story_and_its_scenarios_are() -> None:
    digest = story_digest(SPEC, "US1", f"{FEATURE}/spec.md")
    lines = SPEC.splitlines()
    start = lines.index("### User Story 1 - Keep notes (Priority: P1)") + 1
    scenarios = lines.index("**Acceptance Scenarios**:") + 1
    end = (
        lines.index(
            "2. **Given** a note of user B, **When** user A reads it, **Then** it is not found (404)."
        )
        + 1
    )
    assert digest == (
        f"`{FEATURE}/spec.md` L{start}-{end} (2 acceptance scenarios from L{scenarios})"
    )


def test_outlines_leave_out_headings_a_neighbour_already_fetches() -> None:
    text = outline(SPEC)
    assert "Feature Specification" not in text  # the title: the path names the document
    assert "## Clarifications" in text and "Session 2026-01-01" not in text  # lone child
    assert "User Scenarios & Testing" not in text  # its stories start right below it
    assert "### User Story 1 - Keep notes" in text and "### Edge Cases" in text
    assert "### Functional Requirements" in text and "### Key Entities" in text
    # Every line that is left still fetches what it names.
    for line in text.splitlines():
        number, _, title = line.partition(" ")
        assert SPEC.splitlines()[int(number[1:]) - 1].endswith(title.split("# ", 1)[1])


def test_an_entity_digest_gives_each_section_its_lines() -> None:
    assert entity_digest(DATA_MODEL, ["note", "error"]) == "Note L3-7, Error L9-11"


def test_a_test_first_task_gets_the_requirements_and_entities_whole(tmp_path: Path) -> None:
    brief = _brief(_workspace(tmp_path), "T001")
    assert "In `tasks.md` › Phase 3: User Story 1 - Keep notes (Priority: P1)." in brief
    assert "and the system MUST record when it was created." in brief
    assert "| `title` | string | Required; 1-80 characters (FR-001). |" in brief


def test_a_code_task_gets_where_its_story_and_entities_are(tmp_path: Path) -> None:
    brief = _brief(_workspace(tmp_path), "T002")
    # The contract operations on the paths it names, with their lines.
    assert "GET /notes (L4): List my notes (FR-001) -> 200" in brief
    assert "POST /notes (L4): Save a note (FR-001) -> 201, 422" in brief
    # Its story's tests came first: the story and the entity by their lines.
    assert f"its user story US1, `{FEATURE}/spec.md` L" in brief
    assert "(2 acceptance scenarios from L" in brief
    assert f"`{FEATURE}/data-model.md` Note L3-7" in brief
    assert "**Given**" not in brief and "| `title` |" not in brief


def _input(root: Path, task: str) -> PhaseInput:
    info = WorkspaceInfo(
        repo_path=str(root), branch="001-notes", feature_dir=FEATURE, base_commit="0" * 40
    )
    return PhaseInput(
        workflow_id="wf",
        phase="implement",
        workspace=info,
        base_commit="0" * 40,
        model="scripted:x",
        task_id=task,
    )


async def test_the_model_gets_the_whole_line_the_environment_and_test_first(
    tmp_path: Path,
) -> None:
    ws = _workspace(tmp_path)
    phase = ImplementPhase(None)  # type: ignore[arg-type]
    facts = EnvironmentFacts(
        python="3.11.7",
        env_ok=True,
        declared=["fastapi>=0.110"],
        packages={"fastapi": "0.115.0", "pytest": "8.3.0"},
        feature_dir=FEATURE,
        codebase_map=False,
        tools=["run_tests", "run_command", "api_docs"],
    )
    system = phase.system_prompt(_input(tmp_path, "T002"), render_environment(facts))
    assert "Tests come first" in system and f"`{FEATURE}/tasks.md`" in system
    for fact in (
        "- Python 3.11.7; project environment ready; no network.",
        "- Declared by the project: fastapi>=0.110.",
        "- Installed: fastapi 0.115.0, pytest 8.3.0;",
        "Not installed: starlette, pydantic,",
        f"feature documents in\n  `{FEATURE}/`",
        "Project Structure says (default `app/`, `tests/`)",
        "- `run_tests`: `python -m pytest -p no:cacheprovider [paths or node ids]`",
        "- `run_command`: a `python -c` snippet or `sh -c` command",
        "- `api_docs`: the installed versions' docs",
    ):
        assert fact in system, fact

    for task, kind in (("T001", "This is a test-first task"), ("T002", "Backforge runs its tests")):
        values = await phase.prompt_values(ws, _input(tmp_path, task))  # type: ignore[arg-type]
        message = prompts.render("implement", feature_dir=FEATURE, guidance="", **values)
        line = TASKS.splitlines()[3 + int(task[-1])].removeprefix("- [ ] ")
        assert f"\n\n    {line}\n\n{kind}" in message  # the whole line, never cut
    first = (await phase.prompt_values(ws, _input(tmp_path, "T001")))["kind"]  # type: ignore[arg-type]
    assert "until T002 lands" in " ".join(first.split())
    assert "accepts them red for missing code" in " ".join(first.split())


def test_the_implement_context_is_the_source_tree_and_outlines(tmp_path: Path) -> None:
    phase = ImplementPhase(None)  # type: ignore[arg-type]
    context = phase.context(_workspace(tmp_path), None, LAYOUT)  # type: ignore[arg-type]
    assert context.startswith(
        f'<document path="{FEATURE}/plan.md (excerpt; Technical Context at L3)">'
    )
    assert "└── notes.py    # /notes" in context and "Structure Decision" not in context
    assert "**Storage**" not in context  # read through the tools, by its line
    assert f"- `{FEATURE}/spec.md` ({len(SPEC.splitlines())} lines):" in context
    assert f"in `{FEATURE}/` (lines): `research.md` (1), `contracts/openapi.yaml` (" in context
