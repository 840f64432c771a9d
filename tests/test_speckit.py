"""The Spec Kit layout: feature paths, task lines, clarification markers and records."""

from __future__ import annotations

from activities.speckit import (
    FeatureLayout,
    check_off,
    clarification_markers,
    find_task,
    parse_tasks,
    record_clarifications,
)


def test_layout_names_every_document_under_the_feature_dir() -> None:
    layout = FeatureLayout(feature_dir="specs/001-x", branch="001-x")
    assert layout.path("spec") == "specs/001-x/spec.md"
    assert layout.path("contract") == "specs/001-x/contracts/openapi.yaml"
    assert layout.path("constitution") == ".specify/memory/constitution.md"
    assert (
        layout.prompt_history("implement-T001-1")
        == "history/prompts/001-x/implement-T001-1.prompt.md"
    )


def test_a_task_line_keeps_its_markers_and_whole_description() -> None:
    line = find_task("- [ ] T007 [P] [US2] Add tags in app/tags.py\n", "T007")
    assert line is not None
    assert line.text == "T007 [P] [US2] Add tags in app/tags.py"
    assert (line.parallel, line.story, line.files) == (True, "US2", ("app/tags.py",))
    assert find_task("- [ ] T007 x\n", "T008") is None


# ---------------------------------------------------------------------------
# tasks.md

TASKS_MD = """# Tasks: Bookmarks

## Phase 1: Setup

- [ ] T001 Create project structure per implementation plan
- [ ] T002 [P] Configure ruff in pyproject.toml
- [ ] T0010 [P] Long-id task in app/extra.py

## Phase 3: User Story 1

- [X] T003 [P] [US1] Create Bookmark model in app/models.py
- [x] T004 [US1] Implement POST /bookmarks in `app/api/bookmarks.py` using app/models.py
  - [ ] T005 [US2] Contract test for tags in tests/contract/test_tags.py, see docs/api.md
- [ ] T009 Depends on T002 being done
- [ ] not a task line
- [ ] T6 id too short
* [ ] T007 star bullets are not spec-kit tasks
"""


def test_parse_tasks() -> None:
    tasks = {t.id: t for t in parse_tasks(TASKS_MD)}
    assert list(tasks) == ["T001", "T002", "T0010", "T003", "T004", "T005", "T009"]
    t1 = tasks["T001"]
    assert (t1.parallel, t1.story, t1.files, t1.done) == (False, None, [], False)
    assert t1.title == "Create project structure per implementation plan"
    assert (tasks["T002"].parallel, tasks["T002"].files) == (True, ["pyproject.toml"])
    t3 = tasks["T003"]
    assert (t3.parallel, t3.story, t3.files, t3.done) == (True, "US1", ["app/models.py"], True)
    t4 = tasks["T004"]
    assert (t4.parallel, t4.story, t4.done) == (False, "US1", True)
    assert t4.files == ["app/api/bookmarks.py", "app/models.py"]  # backticks stripped, sorted
    t5 = tasks["T005"]
    assert t5.story == "US2"
    assert t5.files == ["docs/api.md", "tests/contract/test_tags.py"]
    assert tasks["T009"].files == []


def test_long_titles_are_cut_at_a_word_but_the_whole_line_stays_readable() -> None:
    line = "- [ ] T001 " + "word " * 100 + "in app/deep/file.py"
    (task,) = parse_tasks(line)
    assert len(task.title) <= 160 and task.title.endswith("word…")
    assert task.files == ["app/deep/file.py"]  # taken from the full title
    whole = find_task(line, "T001")
    assert whole is not None and whole.text.endswith("word in app/deep/file.py")
    assert whole.text == "T001 " + "word " * 100 + "in app/deep/file.py"


def test_check_off_changes_only_that_task() -> None:
    after = check_off(TASKS_MD, "T002")
    before_lines, after_lines = TASKS_MD.splitlines(), after.splitlines()
    changed = [(b, a) for b, a in zip(before_lines, after_lines, strict=True) if b != a]
    assert changed == [
        (
            "- [ ] T002 [P] Configure ruff in pyproject.toml",
            "- [X] T002 [P] Configure ruff in pyproject.toml",
        )
    ]
    assert {t.id for t in parse_tasks(after) if t.done} == {"T002", "T003", "T004"}


def test_check_off_matches_whole_ids_and_indented_lines() -> None:
    after = check_off(TASKS_MD, "T001")
    assert "- [X] T001 Create" in after
    assert "- [ ] T0010 [P]" in after  # a longer id sharing the prefix is untouched
    assert "  - [X] T005 [US2]" in check_off(TASKS_MD, "T005")
    assert check_off(TASKS_MD, "T003") == TASKS_MD  # already done
    assert check_off(TASKS_MD, "T999") == TASKS_MD
    assert check_off(TASKS_MD, "T00") == TASKS_MD


# ---------------------------------------------------------------------------
# spec.md clarifications

SPEC_MD = """# Feature Specification: Bookmarks API

**Feature Branch**: `001-bookmarks-api-tags`

## User Scenarios & Testing

Users save bookmarks. Auth is [NEEDS CLARIFICATION: which auth method?] and tags
are [NEEDS CLARIFICATION: case sensitive?].

## Requirements

- FR-001 ...
"""


def test_marker_regex_finds_the_questions() -> None:
    assert clarification_markers(SPEC_MD) == ["which auth method?", "case sensitive?"]
    assert clarification_markers(
        "[NEEDS CLARIFICATION:x] [NEEDS CLARIFICATION] [needs clarification: y]"
    ) == ["x"]


def test_record_clarifications_creates_the_section_before_the_scenarios() -> None:
    out = record_clarifications(
        SPEC_MD, [("Auth method?", "API keys"), ("Tags case sensitive?", "No")], "2025-03-01"
    )
    assert out.count("## Clarifications") == 1
    assert out.count("### Session 2025-03-01") == 1
    assert (
        "## Clarifications\n\n### Session 2025-03-01\n\n"
        "- Q: Auth method? → A: API keys\n- Q: Tags case sensitive? → A: No\n" in out
    )
    assert out.index("**Feature Branch**") < out.index("## Clarifications")
    assert out.index("## Clarifications") < out.index("## User Scenarios")
    # everything else is kept as it was
    assert out.replace(out[out.index("## Clarifications") : out.index("## User")], "").replace(
        "\n", ""
    ) == SPEC_MD.replace("\n", "")


def test_record_clarifications_appends_without_duplicates() -> None:
    day1 = record_clarifications(SPEC_MD, [("Auth method?", "API keys")], "2025-03-01")
    again = record_clarifications(
        day1, [("Auth method?", "API keys"), ("Max tags?", "10")], "2025-03-01"
    )
    assert again.count("### Session 2025-03-01") == 1
    assert again.count("- Q: Auth method? → A: API keys") == 1
    section = again[again.index("## Clarifications") : again.index("## User Scenarios")]
    assert section.index("Auth method?") < section.index("Max tags?")
    assert record_clarifications(again, [("Max tags?", "10")], "2025-03-09") == again


def test_record_clarifications_new_day_gets_its_own_session() -> None:
    day1 = record_clarifications(SPEC_MD, [("Auth method?", "API keys")], "2025-03-01")
    day2 = record_clarifications(day1, [("Max tags?", "10")], "2025-03-02")
    section = day2[day2.index("## Clarifications") : day2.index("## User Scenarios")]
    assert section.count("### Session") == 2
    assert section.index("### Session 2025-03-02") > section.index("Auth method?")
    assert section.rstrip().endswith("- Q: Max tags? → A: 10")
    assert day2.count("## User Scenarios") == 1


def test_record_clarifications_on_a_spec_without_sections() -> None:
    out = record_clarifications("# Spec\n\nShort.\n", [("Q1?", "A1")], "d1")
    assert out.startswith("# Spec\n\nShort.\n")
    assert out.endswith("## Clarifications\n\n### Session d1\n\n- Q: Q1? → A: A1\n")


def test_record_clarifications_compares_whole_lines() -> None:
    day1 = record_clarifications(SPEC_MD, [("Auth method?", "API keys")], "2025-03-01")
    day2 = record_clarifications(day1, [("Auth method?", "API key")], "2025-03-02")
    assert "- Q: Auth method? → A: API key\n" in day2


def test_record_clarifications_dedupes_within_one_call() -> None:
    out = record_clarifications(SPEC_MD, [("Q?", "A"), ("Q?", "A")], "d1")
    assert out.count("- Q: Q? → A: A") == 1


def test_a_reviewers_guidance_is_recorded_once_in_the_session() -> None:
    comment = "Also cover\n  deleting a tag."
    out = record_clarifications(SPEC_MD, [], "2025-03-02", guidance=comment)
    assert "### Session 2025-03-02\n\n- Reviewer guidance: Also cover deleting a tag.\n" in out
    assert record_clarifications(out, [], "2025-03-02", guidance=comment) == out
