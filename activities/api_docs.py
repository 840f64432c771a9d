"""API documentation of the packages installed in the project environment: the ``api_docs`` tool.

The model asks for a module, class or function by its dotted path
(``fastapi.testclient.TestClient``) and gets its signature, docstring and members, or
searches one package's names and docstrings for words (``package="fastapi",
query="dependency override"``). Answers come from the versions the project
environment actually holds, so the model never codes against an API the tests will
not find.

The documentation is extracted with griffe (https://mkdocstrings.github.io/griffe/),
which reads the packages' source statically: no generated or third-party code is
imported into the worker to document it (``allow_inspection=False``, so compiled
modules without sources are reported as such). Packages are found only in the
environment's site directories; anything resolving elsewhere (an editable install
pointing at a source tree, Backforge itself) is refused.

Loaders are cached per environment (environments are immutable, keyed by their
content), and guarded by a lock because tools run in threads.
"""

from __future__ import annotations

import ast
import functools
import re
import sysconfig
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import griffe
from packaging.utils import canonicalize_name

from activities.sandbox import ProjectEnv
from activities.sandbox.interpreter import base_distributions, site_dirs, site_packages

__all__ = ["ApiDocs", "DocsError", "docs_for", "MAX_DOC_CHARS"]

MAX_DOC_CHARS = 8_000
_MAX_MEMBERS = 60
_MAX_HITS = 20
_MAX_WALK = 30_000
_DOCSTRING_CHARS = 1_500
_PARAM_DOC_CHARS = 160
_MEMBER_SIG_CHARS = 160
_TARGET = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


class DocsError(Exception):
    """A lookup the model must correct (unknown package or object); the message says how."""


def _first_line(text: str | None) -> str:
    line = (text or "").strip().split("\n\n", 1)[0]
    return " ".join(line.split())[:200]


def _literal(text: str) -> str:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return textwrap.dedent(value).strip() if isinstance(value, str) else text


def _annotation(expr: object) -> tuple[str, str | None]:
    """``(type, doc)``: ``Annotated[X, Doc("...")]`` shown as ``X``, its Doc text kept."""
    if (
        isinstance(expr, griffe.ExprSubscript)
        and str(expr.left).rsplit(".", 1)[-1] == "Annotated"
        and isinstance(expr.slice, griffe.ExprTuple)
        and expr.slice.elements
    ):
        first, *rest = expr.slice.elements
        doc = None
        for item in rest:
            if (
                isinstance(item, griffe.ExprCall)
                and str(item.function).rsplit(".", 1)[-1] == "Doc"
                and item.arguments
            ):
                doc = _literal(str(item.arguments[0]))
        return str(first), doc
    return ("" if expr is None else str(expr)), None


def _signature(fn: griffe.Function, *, with_docs: bool = False) -> tuple[str, list[str]]:
    params: list[str] = []
    docs: list[str] = []
    star = False
    for p in fn.parameters:
        kind = p.kind
        if (
            p.name in ("self", "cls")
            and not params
            and kind is not griffe.ParameterKind.keyword_only
        ):
            continue
        ann, doc = _annotation(p.annotation)
        name = p.name
        if kind is griffe.ParameterKind.var_positional:
            name, star = f"*{name}", True
        elif kind is griffe.ParameterKind.var_keyword:
            name = f"**{name}"
        elif kind is griffe.ParameterKind.keyword_only and not star:
            params.append("*")
            star = True
        text = f"{name}: {ann}" if ann else name
        if p.default is not None and kind not in (
            griffe.ParameterKind.var_positional,
            griffe.ParameterKind.var_keyword,
        ):
            default = str(p.default)
            text += f" = {default if len(default) <= 60 else default[:57] + '...'}"
        params.append(text)
        if with_docs and doc:
            short = " ".join(doc.split())
            if len(short) > _PARAM_DOC_CHARS:
                short = short[: _PARAM_DOC_CHARS - 3] + "..."
            docs.append(f"  {p.name}: {short}")
    returns, _ = _annotation(fn.returns)
    sig = f"{fn.name}({', '.join(params)})" + (f" -> {returns}" if returns else "")
    return sig, docs


def _describe_line(obj: griffe.Object | griffe.Alias) -> str:
    """One line for a member list: kind, signature, first docstring line."""
    try:
        target = obj.final_target if obj.is_alias else obj  # type: ignore[union-attr]
    except (griffe.AliasResolutionError, griffe.CyclicAliasError):
        return f"{obj.name} (re-exported from {obj.target_path})"  # type: ignore[union-attr]
    if isinstance(target, griffe.Function):
        sig = _signature(target)[0]
        head = "def " + (
            sig if len(sig) <= _MEMBER_SIG_CHARS else sig[: _MEMBER_SIG_CHARS - 4] + " ...)"
        )
    elif isinstance(target, griffe.Class):
        bases = ", ".join(str(b) for b in target.bases)
        head = f"class {obj.name}" + (f"({bases})" if bases else "")
    elif isinstance(target, griffe.Attribute):
        ann, _ = _annotation(target.annotation)
        head = f"{obj.name}: {ann}" if ann else obj.name
    else:
        head = f"module {target.path}"
    doc = _first_line(target.docstring.value if target.docstring else None)
    return f"- {head}" + (f"  # {doc}" if doc else "")


def _public(name: str) -> bool:
    return not name.startswith("_") or name == "__init__"


class ApiDocs:
    """The documentation of what one environment's site directories hold."""

    def __init__(self, search_paths: tuple[Path, ...], installed: dict[str, str]) -> None:
        self.search_paths = search_paths
        self.installed = installed
        self._loader = griffe.GriffeLoader(
            search_paths=[str(p) for p in search_paths], allow_inspection=False
        )
        self._lock = threading.Lock()

    # ---- loading -----------------------------------------------------------
    def _module_names(self, package: str) -> list[str]:
        """Import names for a package given by import or distribution name."""
        names = [package.replace("-", "_")]
        dist = base_distributions().get(canonicalize_name(package))
        if dist is not None:
            top = (dist.read_text("top_level.txt") or "").split()
            names += [t for t in top if t not in names]
            for f in dist.files or []:
                first = f.parts[0]
                if (
                    f.suffix == ".py"
                    and len(f.parts) > 1
                    and first not in names
                    and not first.endswith((".dist-info", ".data"))
                    and first != "__pycache__"
                ):
                    names.append(first)
        return names

    def _inside(self, module: griffe.Module) -> bool:
        path = module.filepath
        first = path[0] if isinstance(path, list) else path
        if first is None:
            return False
        real = Path(first).resolve()
        return any(real.is_relative_to(p) for p in self.search_paths)

    def _load(self, package: str) -> griffe.Module:
        errors = []
        for name in self._module_names(package):
            try:
                module = self._loader.modules_collection.get_member(name)
            except (KeyError, ValueError):
                module = None
            if module is None:
                try:
                    module = self._loader.load(name)
                except (ImportError, OSError, SyntaxError, ValueError) as err:
                    errors.append(f"{name}: {err}")
                    continue
            if not isinstance(module, griffe.Module):
                continue
            if not self._inside(module):
                raise DocsError(
                    f"{name} is not an installed package of the project environment "
                    "(read the repository's own code with view_file and search)"
                )
            return module
        raise DocsError(
            f"no installed package {package!r} in the project environment; call api_docs "
            "with no arguments for the list of installed packages"
        )

    def _resolve(self, obj: griffe.Object | griffe.Alias) -> griffe.Object:
        for _ in range(4):
            if not obj.is_alias:
                return obj  # type: ignore[return-value]
            try:
                return obj.final_target  # type: ignore[union-attr, no-any-return]
            except griffe.AliasResolutionError:
                target = obj.target_path  # type: ignore[union-attr]
                self._load(target.split(".", 1)[0])  # another package: load it, try again
            except griffe.CyclicAliasError as err:
                raise DocsError(f"{obj.path}: {err}") from err
        raise DocsError(f"{obj.path}: could not follow its re-export")

    def _find(self, target: str) -> griffe.Object:
        top, _, rest = target.partition(".")
        obj: griffe.Object | griffe.Alias = self._load(top)
        parts = rest.split(".") if rest else []
        for i, part in enumerate(parts):
            current = self._resolve(obj)
            member = current.members.get(part)
            if member is None and isinstance(current, griffe.Module):
                try:  # a submodule not loaded as a member yet
                    member = self._loader.load(f"{current.path}.{part}")
                except (ImportError, OSError, SyntaxError, ValueError, KeyError):
                    member = None
            if member is None and isinstance(current, griffe.Module):
                member = _in_submodules(current, part)
            if member is None:
                known = sorted(n for n in current.members if _public(n))[:40]
                where = ".".join([top, *parts[:i]])
                raise DocsError(
                    f"{where} has no member {part!r}; its public members: {', '.join(known)}"
                )
            obj = member
        return self._resolve(obj)

    # ---- answers -----------------------------------------------------------
    def lookup(self, target: str) -> str:
        """Signature, docstring and members of ``target`` (a dotted path)."""
        target = target.strip()
        if not _TARGET.match(target):
            raise DocsError(f"{target!r} is not a dotted name like fastapi.testclient.TestClient")
        with self._lock:
            obj = self._find(target)
            return _bound(self._render(obj, target))

    def _render(self, obj: griffe.Object, asked: str) -> str:
        version = self._version(obj.package.name)
        header = f"{obj.kind.value} {obj.path}" + (f"  ({asked})" if asked != obj.path else "")
        lines = [header + (f"  [{obj.package.name} {version}]" if version else "")]
        doc = obj.docstring.value.strip() if obj.docstring else ""
        if isinstance(obj, griffe.Function):
            sig, params = _signature(obj, with_docs=True)
            lines.append(f"def {sig}")
            if doc:
                lines += ["", _cut(doc, _DOCSTRING_CHARS * 2)]
            if params:
                lines += ["", "Parameters:", *params]
        elif isinstance(obj, griffe.Class):
            bases = ", ".join(str(b) for b in obj.bases)
            lines.append(f"class {obj.name}" + (f"({bases})" if bases else ""))
            if doc:
                lines += ["", _cut(doc, _DOCSTRING_CHARS)]
            init = obj.members.get("__init__")
            if isinstance(init, griffe.Function):
                sig, params = _signature(init, with_docs=True)
                lines += ["", f"{obj.name}.{sig}", *params]
            lines += ["", "Members:", *self._members(obj, skip={"__init__"})]
        elif isinstance(obj, griffe.Module):
            if doc:
                lines += ["", _cut(doc, _DOCSTRING_CHARS)]
            lines += ["", "Members:", *self._members(obj)]
        else:
            ann, _ = _annotation(getattr(obj, "annotation", None))
            value = getattr(obj, "value", None)
            lines.append(
                f"{obj.name}" + (f": {ann}" if ann else "") + (f" = {value}" if value else "")
            )
            if doc:
                lines += ["", _cut(doc, _DOCSTRING_CHARS)]
        return "\n".join(lines).rstrip() + "\n"

    def _members(self, obj: griffe.Object, skip: set[str] | None = None) -> list[str]:
        names = [n for n in obj.members if _public(n) and n not in (skip or set())]
        exports = getattr(obj, "exports", None)
        if isinstance(obj, griffe.Module) and exports:
            names = [n for n in exports if isinstance(n, str) and n in obj.members]
        lines = [_describe_line(obj.members[n]) for n in names[:_MAX_MEMBERS]]
        if len(names) > _MAX_MEMBERS:
            lines.append(f"- ... and {len(names) - _MAX_MEMBERS} more (ask for one by its path)")
        return lines or ["- (none public)"]

    def _version(self, top: str) -> str:
        for name, version in self.installed.items():
            if name.replace("-", "_") == top.lower():
                return version
        dist = next(
            (
                d
                for d in base_distributions().values()
                if top in (d.read_text("top_level.txt") or "").split()
            ),
            None,
        )
        return dist.version if dist is not None else ""

    def search(self, package: str, query: str) -> str:
        """Objects of ``package`` whose name or docstring holds every word of ``query``."""
        words = [w.lower() for w in re.findall(r"\w+", query)]
        if not words:
            raise DocsError("query is empty; give one or more words to look for")
        with self._lock:
            module = self._load(package.strip())
            hits: list[tuple[int, str, str]] = []
            for obj in _walk(module):
                path = obj.path.lower()
                doc = (obj.docstring.value if obj.docstring else "").lower()
                if not all(w in path or w in doc for w in words):
                    continue
                score = sum(3 if w in obj.name.lower() else 2 if w in path else 1 for w in words)
                hits.append((-score, obj.path, _describe_line(obj)))
            hits.sort()
            head = f"{len(hits)} match(es) for {query!r} in {module.name}"
            version = self._version(module.name)
            if version:
                head += f" {version}"
            if not hits:
                return head + "; try other words, or look a module up by its path\n"
            shown = [f"{path}\n  {line.removeprefix('- ')}" for _, path, line in hits[:_MAX_HITS]]
            more = (
                [f"... and {len(hits) - _MAX_HITS} more; narrow the query"]
                if len(hits) > _MAX_HITS
                else []
            )
            return _bound("\n".join([head, *shown, *more]) + "\n")

    def packages(self) -> str:
        """Every installed distribution with its version."""
        items = [f"{name} {version}" for name, version in self.installed.items()]
        return f"{len(items)} installed packages:\n" + ", ".join(items) + "\n"


def _submodules(module: griffe.Module) -> list[griffe.Module]:
    """Every real submodule, breadth first (aliases skipped: they may form cycles)."""
    out: list[griffe.Module] = []
    stack = [m for m in module.members.values() if not m.is_alias and m.is_module]
    seen: set[int] = set()
    while stack and len(out) < _MAX_WALK:
        sub = stack.pop(0)
        if id(sub) in seen:
            continue
        seen.add(id(sub))
        out.append(sub)  # type: ignore[arg-type]
        stack += [m for m in sub.members.values() if not m.is_alias and m.is_module]
    return out


def _in_submodules(module: griffe.Module, name: str) -> griffe.Object | None:
    """``name`` defined in a submodule (packages that re-export lazily, like pydantic);
    public submodules first, private ones (``pydantic._internal``) last."""
    subs = _submodules(module)
    ordered = [s for s in subs if not s.name.startswith("_")] + [
        s for s in subs if s.name.startswith("_")
    ]
    for sub in ordered:
        member = sub.members.get(name)
        if member is not None and not member.is_alias:
            return member  # type: ignore[return-value]
    return None


def _walk(module: griffe.Module) -> Iterator[griffe.Object]:
    """Public modules, classes, functions and attributes of a package (aliases skipped)."""
    stack: list[griffe.Object] = [module]
    seen = 0
    while stack and seen < _MAX_WALK:
        obj = stack.pop()
        seen += 1
        yield obj
        if isinstance(obj, griffe.Module | griffe.Class):
            for name, member in reversed(list(obj.members.items())):
                if not member.is_alias and _public(name) and name != "__init__":
                    stack.append(member)  # type: ignore[arg-type]


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit].rsplit("\n", 1)[0] + "\n..."


def _bound(text: str) -> str:
    if len(text) <= MAX_DOC_CHARS:
        return text
    return text[:MAX_DOC_CHARS].rsplit("\n", 1)[0] + "\n... (cut; ask for a member by its path)\n"


@functools.lru_cache(maxsize=8)
def _docs(key: str, paths: tuple[Path, ...], installed: tuple[tuple[str, str], ...]) -> ApiDocs:
    return ApiDocs(paths, dict(installed))


def docs_for(env: ProjectEnv, installed: dict[str, str]) -> ApiDocs:
    """The (cached) documentation of one project environment."""
    own = site_packages(env.path)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    paths = tuple(p.resolve() for p in (own, *site_dirs(), stdlib) if p.is_dir())
    return _docs(env.key, paths, tuple(installed.items()))
