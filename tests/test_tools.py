"""The agent's toolbox: every mistake a model can make comes back as a tool error.

A refused or failed call must (a) return ``is_error=True`` with a message the
model can act on, (b) never raise, and (c) leave the disk exactly as it was,
inside the repository and outside it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from activities.models.base import ToolCallPart, ToolResultPart
from activities.tools import Toolbox
from activities.workspace import Workspace

SECRET = "TOPSECRET-outside-the-repo\n"
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]


# ---------------------------------------------------------------------------
# Fixtures and helpers


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        [*GIT, *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    """A repo with files, a nested dir and symlinks leaving it, next to an outside dir."""
    repo = tmp_path / "repo"
    outside = tmp_path / "outside"
    repo.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    _git(repo, "init", "-q", "-b", "main")
    (repo / "app").mkdir()
    (repo / "app" / "main.py").write_text(
        "import os\n\n\ndef handler():\n    return 1\n\n\ndef other():\n    return 2\n"
    )
    (repo / "dup.txt").write_text("x = 1\ny = 2\nx = 1\n")
    (repo / "ten.txt").write_text("".join(f"line {i}\n" for i in range(1, 11)))
    (repo / "sub").mkdir()
    (repo / "sub" / "keep.txt").write_text("keep\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "init")
    # Links that leave the repository (not committed: the model finds them in the tree).
    os.symlink(outside / "secret.txt", repo / "leak.txt")
    os.symlink(outside, repo / "outdir")
    os.symlink(repo / ".git", repo / "gitlink")
    return {"root": tmp_path, "repo": repo, "outside": outside}


@pytest.fixture
def toolbox(layout: dict[str, Path]) -> Toolbox:
    return Toolbox(Workspace(layout["repo"]))


def snapshot(root: Path) -> dict[str, tuple[str, bytes | str]]:
    """Every entry under ``root`` (links not followed): kind and content or link target."""
    snap: dict[str, tuple[str, bytes | str]] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            if path.is_symlink():
                snap[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                snap[rel] = ("dir", b"")
            else:
                snap[rel] = ("file", path.read_bytes())
    return snap


async def refused(layout: dict[str, Path], tb: Toolbox, name: str, **arguments: object) -> str:
    """Call a tool that must refuse: an error result, and nothing on disk changed."""
    before = snapshot(layout["root"])
    result = await call(tb, name, **arguments)
    assert result.is_error, result.content
    assert snapshot(layout["root"]) == before
    return result.content


async def call(tb: Toolbox, name: str, **arguments: object) -> ToolResultPart:
    result = await tb.execute(ToolCallPart(id="call_1", name=name, arguments=arguments))
    assert isinstance(result, ToolResultPart)
    assert result.tool_call_id == "call_1"
    assert result.name == name
    return result


def home_bashrc() -> bytes | None:
    path = Path.home() / ".bashrc"
    return path.read_bytes() if path.is_file() else None


# ---------------------------------------------------------------------------
# Confinement: escapes are tool errors and change nothing anywhere

ESCAPES = [
    "../x",
    "../outside/secret.txt",
    "/etc/passwd",
    "~/.bashrc",
    "leak.txt",  # symlink to a file outside
    "outdir/secret.txt",  # through a symlinked directory pointing outside
    "outdir/new.txt",
    ".git/config",
    "./.git/HEAD",
    "sub/../../x",
    "sub/../.git/config",
    "gitlink/config",  # symlink into .git
]


def _calls_for(path: str) -> list[tuple[str, dict[str, object]]]:
    return [
        ("view_file", {"path": path}),
        ("create_file", {"path": path, "content": "pwned\n"}),
        ("replace_text", {"path": path, "old_text": "TOPSECRET", "new_text": "pwned"}),
        ("insert_text", {"path": path, "after_line": 0, "text": "pwned"}),
        ("delete_file", {"path": path}),
        ("search", {"pattern": "TOPSECRET|repositoryformatversion|ref:", "path": path}),
        ("list_files", {"path": path}),
    ]


@pytest.mark.parametrize("path", ESCAPES)
async def test_escape_attempts_are_tool_errors_and_change_nothing(
    layout: dict[str, Path], toolbox: Toolbox, path: str
) -> None:
    before = snapshot(layout["root"])
    bashrc = home_bashrc()
    for name, args in _calls_for(path):
        result = await call(toolbox, name, **args)
        assert result.is_error, f"{name}({path!r}) was not refused: {result.content!r}"
        assert any(
            word in result.content for word in ("refused", "off limits", "outside the repository")
        ), f"{name}({path!r}) gave no useful message: {result.content!r}"
        assert "TOPSECRET" not in result.content
        assert "repositoryformatversion" not in result.content
    assert snapshot(layout["root"]) == before
    assert (layout["outside"] / "secret.txt").read_text() == SECRET
    assert not (layout["root"] / "x").exists()
    assert home_bashrc() == bashrc
    assert toolbox.changed == set()


async def test_escape_messages_say_what_went_wrong(toolbox: Toolbox) -> None:
    msgs = {p: (await call(toolbox, "view_file", path=p)).content for p in ESCAPES}
    assert "absolute paths are refused" in msgs["/etc/passwd"]
    assert "absolute paths are refused" in msgs["~/.bashrc"]
    assert "'..' is refused" in msgs["../x"]
    assert "'..' is refused" in msgs["sub/../../x"]
    assert "outside the repository" in msgs["leak.txt"]
    assert "outside the repository" in msgs["outdir/secret.txt"]
    assert ".git is off limits" in msgs[".git/config"]
    assert ".git is off limits" in msgs["./.git/HEAD"]
    assert "off limits" in msgs["gitlink/config"]
    for path, msg in msgs.items():
        assert path in msg, f"message for {path!r} does not name it: {msg!r}"


async def test_write_through_outside_symlink_keeps_link_and_target(
    layout: dict[str, Path], toolbox: Toolbox
) -> None:
    repo = layout["repo"]
    result = await call(toolbox, "create_file", path="leak.txt", content="pwned")
    assert result.is_error
    assert os.readlink(repo / "leak.txt") == str(layout["outside"] / "secret.txt")
    assert (layout["outside"] / "secret.txt").read_text() == SECRET
    result = await call(toolbox, "create_file", path="outdir/planted.py", content="pwned")
    assert result.is_error
    assert sorted(p.name for p in layout["outside"].iterdir()) == ["secret.txt"]


async def test_search_does_not_read_through_symlinks_leaving_the_repo(
    layout: dict[str, Path], toolbox: Toolbox
) -> None:
    result = await call(toolbox, "search", pattern="TOPSECRET")
    assert "TOPSECRET" not in result.content
    assert "leak.txt" not in result.content


async def test_empty_and_windows_paths_are_refused(toolbox: Toolbox) -> None:
    for path in ("", "   ", "C:\\Windows\\win.ini", "C:/x"):
        result = await call(toolbox, "view_file", path=path)
        assert result.is_error, path
        assert result.content


async def test_nul_byte_in_path_is_a_tool_error(toolbox: Toolbox) -> None:
    result = await call(toolbox, "view_file", path="app/main.py\x00.txt")
    assert result.is_error


# ---------------------------------------------------------------------------
# Missing files, ambiguous and failed edits


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("view_file", {"path": "nope.py"}),
        ("replace_text", {"path": "nope.py", "old_text": "a", "new_text": "b"}),
        ("insert_text", {"path": "nope.py", "after_line": 0, "text": "a"}),
        ("delete_file", {"path": "nope.py"}),
        ("view_file", {"path": "app/main.py/x"}),  # a file used as a directory
    ],
)
async def test_missing_file_is_a_tool_error(
    layout: dict[str, Path], toolbox: Toolbox, name: str, args: dict[str, object]
) -> None:
    content = await refused(layout, toolbox, name, **args)
    assert "no such file" in content
    assert str(args["path"]) in content
    assert not (layout["repo"] / "nope.py").exists()


async def test_delete_file_refuses_a_directory(layout: dict[str, Path], toolbox: Toolbox) -> None:
    content = await refused(layout, toolbox, "delete_file", path="sub")
    assert "sub" in content


async def test_create_file_on_a_directory_is_a_tool_error(
    layout: dict[str, Path], toolbox: Toolbox
) -> None:
    content = await refused(layout, toolbox, "create_file", path="sub", content="x")
    assert "directory" in content


async def test_replace_non_unique_leaves_file_byte_for_byte(
    layout: dict[str, Path], toolbox: Toolbox
) -> None:
    content = await refused(
        layout, toolbox, "replace_text", path="dup.txt", old_text="x = 1", new_text="z"
    )
    assert "2 times" in content
    assert "dup.txt" in content
    assert "Nothing changed" in content
    assert toolbox.changed == set()


async def test_replace_not_found_names_file_and_lines_of_first_line(
    layout: dict[str, Path], toolbox: Toolbox
) -> None:
    before = snapshot(layout["root"])
    result = await call(
        toolbox,
        "replace_text",
        path="app/main.py",
        old_text="def handler():\n    return 42\n",
        new_text="def handler():\n    return 3\n",
    )
    assert result.is_error
    assert "not found in app/main.py" in result.content
    assert "line(s) [4]" in result.content  # "def handler():" is line 4
    assert snapshot(layout["root"]) == before


async def test_replace_not_found_without_hint_when_first_line_absent(
    layout: dict[str, Path], toolbox: Toolbox
) -> None:
    result = await call(
        toolbox, "replace_text", path="app/main.py", old_text="nowhere()", new_text="x"
    )
    assert result.is_error
    assert "not found in app/main.py" in result.content
    assert "line(s)" not in result.content


async def test_replace_empty_old_text_is_refused(layout: dict[str, Path], toolbox: Toolbox) -> None:
    content = await refused(
        layout, toolbox, "replace_text", path="dup.txt", old_text="", new_text="z"
    )
    assert "old_text is empty" in content


async def test_replace_unique_changes_exactly_that_text(
    layout: dict[str, Path], toolbox: Toolbox
) -> None:
    result = await call(
        toolbox, "replace_text", path="app/main.py", old_text="return 1", new_text="return 10"
    )
    assert not result.is_error
    assert result.content == "replaced 1 occurrence in app/main.py"
    assert (layout["repo"] / "app" / "main.py").read_text() == (
        "import os\n\n\ndef handler():\n    return 10\n\n\ndef other():\n    return 2\n"
    )
    assert toolbox.changed == {"app/main.py"}


async def test_replace_keeps_crlf_line_endings(layout: dict[str, Path], toolbox: Toolbox) -> None:
    path = layout["repo"] / "win.txt"
    path.write_bytes(b"one\r\ntwo\r\n")
    result = await call(toolbox, "replace_text", path="win.txt", old_text="two", new_text="2")
    assert not result.is_error
    assert path.read_bytes() == b"one\r\n2\r\n"


# ---------------------------------------------------------------------------
# Bad calls: unknown tools and bad arguments


async def test_unknown_tool_is_a_tool_error_listing_the_tools(
    layout: dict[str, Path], toolbox: Toolbox
) -> None:
    before = snapshot(layout["root"])
    result = await call(toolbox, "rm_rf", path=".")
    assert result.is_error
    assert "unknown tool 'rm_rf'" in result.content
    for name in ("list_files", "view_file", "replace_text", "create_file"):
        assert name in result.content
    assert snapshot(layout["root"]) == before


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("view_file", {}),
        ("create_file", {"path": "new.py"}),
        ("replace_text", {"path": "dup.txt", "old_text": "x = 1"}),
        ("insert_text", {"path": "dup.txt", "text": "z"}),
        ("search", {}),
        ("view_file", {"path": "dup.txt", "colour": "red"}),  # unknown argument
    ],
)
async def test_missing_or_unknown_arguments_are_tool_errors(
    layout: dict[str, Path], toolbox: Toolbox, name: str, args: dict[str, object]
) -> None:
    content = await refused(layout, toolbox, name, **args)
    assert f"bad arguments for {name}" in content


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("view_file", {"path": "ten.txt", "start_line": "abc"}),
        ("insert_text", {"path": "ten.txt", "after_line": "two", "text": "x"}),
        ("list_files", {"depth": "deep"}),
    ],
)
async def test_wrongly_typed_arguments_are_tool_errors(
    layout: dict[str, Path], toolbox: Toolbox, name: str, args: dict[str, object]
) -> None:
    await refused(layout, toolbox, name, **args)


async def test_create_file_below_a_file_is_a_tool_error(
    layout: dict[str, Path], toolbox: Toolbox
) -> None:
    await refused(layout, toolbox, "create_file", path="app/main.py/x.py", content="x")


async def test_create_file_with_bad_content_leaves_no_directories(
    layout: dict[str, Path], toolbox: Toolbox
) -> None:
    await refused(layout, toolbox, "create_file", path="newpkg/deep/x.py", content=5)


# ---------------------------------------------------------------------------
# view_file


async def test_view_file_numbers_every_line(toolbox: Toolbox) -> None:
    result = await call(toolbox, "view_file", path="ten.txt")
    assert not result.is_error
    lines = result.content.splitlines()
    assert len(lines) == 10
    assert lines[0] == " 1  line 1"  # numbers as wide as the widest shown
    assert lines[9] == "10  line 10"
    assert "more lines" not in result.content


async def test_view_file_range_and_continuation_hint(toolbox: Toolbox) -> None:
    result = await call(toolbox, "view_file", path="ten.txt", start_line=3, end_line=4)
    assert not result.is_error
    assert result.content == "3  line 3\n4  line 4\n... (6 more lines; pass start_line=5)"


async def test_view_file_range_is_clamped_to_the_file(toolbox: Toolbox) -> None:
    result = await call(toolbox, "view_file", path="ten.txt", start_line=9, end_line=500)
    assert result.content == " 9  line 9\n10  line 10"
    result = await call(toolbox, "view_file", path="ten.txt", start_line=-4, end_line=1)
    assert result.content.splitlines()[0] == "1  line 1"


async def test_view_file_start_past_the_end_is_an_error(toolbox: Toolbox) -> None:
    result = await call(toolbox, "view_file", path="ten.txt", start_line=11)
    assert result.is_error
    assert "ten.txt has 10 lines" in result.content
    assert "start_line 11" in result.content


async def test_view_file_long_file_is_bounded(layout: dict[str, Path], toolbox: Toolbox) -> None:
    (layout["repo"] / "big.txt").write_text("".join(f"{i}\n" for i in range(1, 2001)))
    result = await call(toolbox, "view_file", path="big.txt")
    lines = result.content.splitlines()
    assert len(lines) == 801
    assert lines[799] == "800  800"
    assert lines[800] == "... (1200 more lines; pass start_line=801)"
    result = await call(toolbox, "view_file", path="big.txt", start_line=1990)
    assert result.content.splitlines()[-1] == "2000  2000"


async def test_view_file_empty_file(layout: dict[str, Path], toolbox: Toolbox) -> None:
    (layout["repo"] / "empty.py").write_text("")
    result = await call(toolbox, "view_file", path="empty.py")
    assert not result.is_error
    assert result.content == "(empty file)"


async def test_view_file_binary_is_a_tool_error(layout: dict[str, Path], toolbox: Toolbox) -> None:
    (layout["repo"] / "blob.bin").write_bytes(b"\xff\xfe\x00\x81")
    result = await call(toolbox, "view_file", path="blob.bin")
    assert result.is_error


async def test_view_file_inverted_range_is_an_error(toolbox: Toolbox) -> None:
    result = await call(toolbox, "view_file", path="ten.txt", start_line=5, end_line=3)
    assert result.is_error
    assert "empty file" not in result.content


# ---------------------------------------------------------------------------
# list_files and search


async def test_list_files_skips_private_and_cache_dirs(
    layout: dict[str, Path], toolbox: Toolbox
) -> None:
    repo = layout["repo"]
    for d in ("__pycache__", "app/__pycache__", ".venv/lib", ".pytest_cache", "node_modules/x"):
        (repo / d).mkdir(parents=True, exist_ok=True)
        (repo / d / "junk.pyc").write_bytes(b"\x00")
    result = await call(toolbox, "list_files")
    assert not result.is_error
    entries = result.content.splitlines()
    assert "app/" in entries
    assert "app/main.py" in entries
    assert "sub/keep.txt" in entries
    for entry in entries:
        parts = entry.rstrip("/").split("/")
        assert not {".git", "__pycache__", ".venv", ".pytest_cache", "node_modules"} & set(parts)
    # symlinked directories are listed but not walked
    assert not any(e.startswith("outdir/") and e != "outdir/" for e in entries)
    assert not any("secret" in e for e in entries)


async def test_list_files_depth_and_subdirectory(layout: dict[str, Path], toolbox: Toolbox) -> None:
    repo = layout["repo"]
    (repo / "a" / "b" / "c").mkdir(parents=True)
    (repo / "a" / "b" / "c" / "deep.txt").write_text("")
    shallow = (await call(toolbox, "list_files", depth=1)).content.splitlines()
    assert "a/" in shallow
    assert "a/b/" not in shallow
    sub = (await call(toolbox, "list_files", path="a", depth=2)).content.splitlines()
    assert sub == ["a/b/", "a/b/c/"]
    assert (await call(toolbox, "list_files", path="app/main.py")).is_error
    assert (await call(toolbox, "list_files", path="missing")).is_error


async def test_list_files_is_bounded(layout: dict[str, Path], toolbox: Toolbox) -> None:
    many = layout["repo"] / "many"
    many.mkdir()
    for i in range(450):
        (many / f"f{i:03d}.txt").write_text("")
    lines = (await call(toolbox, "list_files", path="many")).content.splitlines()
    assert len(lines) == 401
    assert lines[-1].startswith("... (stopped at 400 entries")


async def test_search_reports_path_line_and_text(toolbox: Toolbox) -> None:
    result = await call(toolbox, "search", pattern=r"def \w+\(\)")
    assert not result.is_error
    assert result.content.splitlines() == [
        "app/main.py:4: def handler():",
        "app/main.py:8: def other():",
    ]
    assert (await call(toolbox, "search", pattern="zzz-no-such")).content == "no matches"


async def test_search_glob_and_path_filters(layout: dict[str, Path], toolbox: Toolbox) -> None:
    (layout["repo"] / "sub" / "more.py").write_text("keep = True\n")
    py_only = await call(toolbox, "search", pattern="keep", glob="*.py")
    assert py_only.content == "sub/more.py:1: keep = True"
    in_file = await call(toolbox, "search", pattern="keep", path="sub/keep.txt")
    assert in_file.content == "sub/keep.txt:1: keep"


async def test_search_skips_git_dir(layout: dict[str, Path], toolbox: Toolbox) -> None:
    result = await call(toolbox, "search", pattern="repositoryformatversion")
    assert result.content == "no matches"


async def test_search_invalid_regex_is_a_tool_error(toolbox: Toolbox) -> None:
    result = await call(toolbox, "search", pattern="def (")
    assert result.is_error
    assert "invalid regular expression 'def ('" in result.content


async def test_search_is_bounded(layout: dict[str, Path], toolbox: Toolbox) -> None:
    (layout["repo"] / "hits.txt").write_text("needle\n" * 300)
    lines = (await call(toolbox, "search", pattern="needle")).content.splitlines()
    assert len(lines) == 101
    assert lines[-1].startswith("... (stopped at 100 matches")


# ---------------------------------------------------------------------------
# create, insert, delete


async def test_create_file_creates_parents_and_reports(
    layout: dict[str, Path], toolbox: Toolbox
) -> None:
    result = await call(toolbox, "create_file", path="app/api/routes.py", content="a\nb\n")
    assert not result.is_error
    assert result.content == "created app/api/routes.py (2 lines)"
    assert (layout["repo"] / "app" / "api" / "routes.py").read_text() == "a\nb\n"
    result = await call(toolbox, "create_file", path="app/api/routes.py", content="c\n")
    assert result.content == "overwrote app/api/routes.py (1 lines)"
    assert toolbox.changed == {"app/api/routes.py"}


@pytest.mark.parametrize("after_line", [-1, 11, 100])
async def test_insert_text_out_of_bounds_changes_nothing(
    layout: dict[str, Path], toolbox: Toolbox, after_line: int
) -> None:
    content = await refused(
        layout, toolbox, "insert_text", path="ten.txt", after_line=after_line, text="x"
    )
    assert "between 0 and 10" in content


async def test_insert_text_at_top_middle_and_end(layout: dict[str, Path], toolbox: Toolbox) -> None:
    path = layout["repo"] / "three.txt"
    path.write_text("a\nb\nc")  # no trailing newline
    assert not (
        await call(toolbox, "insert_text", path="three.txt", after_line=0, text="top")
    ).is_error
    assert path.read_text() == "top\na\nb\nc\n"
    await call(toolbox, "insert_text", path="three.txt", after_line=2, text="mid1\nmid2\n")
    assert path.read_text() == "top\na\nmid1\nmid2\nb\nc\n"
    result = await call(toolbox, "insert_text", path="three.txt", after_line=6, text="end")
    assert result.content == "inserted 1 lines after line 6 of three.txt"
    assert path.read_text() == "top\na\nmid1\nmid2\nb\nc\nend\n"


async def test_delete_file_removes_it(layout: dict[str, Path], toolbox: Toolbox) -> None:
    result = await call(toolbox, "delete_file", path="sub/keep.txt")
    assert result.content == "deleted sub/keep.txt"
    assert not (layout["repo"] / "sub" / "keep.txt").exists()
    assert toolbox.changed == {"sub/keep.txt"}


async def test_delete_file_on_an_internal_symlink_removes_the_link(
    layout: dict[str, Path], toolbox: Toolbox
) -> None:
    repo = layout["repo"]
    os.symlink("app/main.py", repo / "alias.py")
    result = await call(toolbox, "delete_file", path="alias.py")
    assert not result.is_error
    assert (repo / "app" / "main.py").exists()
    assert not os.path.lexists(repo / "alias.py")


# ---------------------------------------------------------------------------
# run_tests


async def test_run_tests_not_offered_without_a_runner(
    layout: dict[str, Path], toolbox: Toolbox
) -> None:
    assert "run_tests" not in [s.name for s in toolbox.specs()]
    result = await call(toolbox, "run_tests")
    assert result.is_error
    assert "unknown tool 'run_tests'" in result.content
    assert "run_tests" not in result.content.split("available:")[1]


async def test_run_tests_offered_and_called_with_a_runner(layout: dict[str, Path]) -> None:
    seen: list[list[str]] = []

    async def runner(selection: list[str]) -> str:
        seen.append(selection)
        return "3 passed in 0.1s"

    tb = Toolbox(Workspace(layout["repo"]), run_tests=runner)
    assert "run_tests" in [s.name for s in tb.specs()]
    assert (await call(tb, "run_tests")).content == "3 passed in 0.1s"
    await call(tb, "run_tests", tests=["tests/test_a.py::test_x"])
    assert seen == [[], ["tests/test_a.py::test_x"]]


async def test_tool_specs_have_object_schemas_with_required_fields(toolbox: Toolbox) -> None:
    specs = {s.name: s for s in toolbox.specs()}
    assert set(specs) == {
        "list_files",
        "view_file",
        "search",
        "create_file",
        "replace_text",
        "insert_text",
        "delete_file",
    }
    assert specs["replace_text"].parameters["required"] == ["path", "old_text", "new_text"]
    assert "required" not in specs["list_files"].parameters  # nothing required: no empty list
    for spec in specs.values():
        assert spec.parameters["type"] == "object"
        # Every request carries the tools: the schema does not spell out what the tools
        # enforce themselves (an unknown argument is refused, below).
        assert "additionalProperties" not in spec.parameters


async def test_an_unknown_argument_is_refused(toolbox: Toolbox) -> None:
    result = await call(toolbox, "view_file", path="ten.txt", encoding="latin-1")
    assert result.is_error and "bad arguments for view_file" in result.content


async def test_search_keeps_indentation(layout: dict[str, Path], toolbox: Toolbox) -> None:
    (layout["repo"] / "nested.py").write_text("class A:\n    def m(self):\n        return 1\n")
    result = await call(toolbox, "search", pattern="return 1", glob="nested.py")
    assert result.content == "nested.py:3:         return 1"  # Python's indentation is syntax


async def test_sandboxed_tools_are_offered_only_with_their_runners(layout: dict[str, Path]) -> None:
    async def docs(target: str | None, package: str | None, query: str | None) -> str:
        return f"{target}|{package}|{query}"

    tb = Toolbox(Workspace(layout["repo"]), api_docs=docs)
    names = [s.name for s in tb.specs()]
    assert "api_docs" in names and "run_command" not in names and "run_tests" not in names
    assert (await call(tb, "api_docs", package="fastapi", query="depends")).content == (
        "None|fastapi|depends"
    )
    missing = await call(tb, "api_docs", query="depends")
    assert missing.is_error and "a query needs `package`" in missing.content
    refused = await call(tb, "run_command", python="print(1)")
    assert refused.is_error and refused.content.startswith("unknown tool 'run_command'")
