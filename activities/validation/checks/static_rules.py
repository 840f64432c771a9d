"""Focused AST rules for generated FastAPI + sqlite/SQL code.

The rules read source with ``ast`` and never import or run it. Each one targets a
mistake that black-box probes cannot see or that code makes obvious:

* ``static.sql_string_format`` - SQL passed to ``execute``/``text`` built with an
  f-string, ``%``, ``.format`` or ``+`` (directly or through a local variable);
* ``static.plaintext_password`` - a password written to storage (an SQL
  ``INSERT``/``UPDATE`` of a ``password`` column, or a ``password`` key or keyword
  of a stored record) in a function that never hashes;
* ``static.plaintext_secret_compare`` - a password, token or secret compared with
  ``==``/``!=`` (plaintext, and not constant-time); comparing digests with ``==``
  is ``static.timing_unsafe_compare``;
* ``static.hardcoded_secret`` - a literal secret in code (a ``SECRET``/``TOKEN``/
  ``KEY``/``PASSWORD`` name bound to a string literal, a literal default of an
  environment lookup, private keys and well-known token formats);
* ``static.debug_enabled`` - ``debug=True``, ``DEBUG = True``, ``reload=True``;
* ``static.unsafe_eval`` - ``eval``/``exec``, ``pickle``/``marshal`` loads, ``yaml.load``
  without a safe loader, ``shell=True``, ``os.system``;
* ``static.test_tampering`` - test hooks that rewrite outcomes (``report.outcome =``,
  ``force_result``), empty the collected items or force the exit status. Only
  test files and ``conftest.py`` are checked for this one; the others skip tests.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from activities.validation.models import Severity

__all__ = ["RuleHit", "scan_file", "scan_source", "is_test_file", "iter_python_files", "SKIP_DIRS"]

SKIP_DIRS = {
    ".git",
    ".venv",
    "venv",
    "env",
    "node_modules",
    "__pycache__",
    "site-packages",
    "build",
    "dist",
    ".tox",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
}
_SQL = re.compile(
    r"\b(select|insert|update|delete|where|from|into|values|drop|create table)\b", re.IGNORECASE
)
_SECRET_NAME = re.compile(
    r"passw(or)?d|passwd|\bpwd\b|secret|token|api_?key|private_?key|signing_?key|credential",
    re.IGNORECASE,
)
_SECRET_ASSIGN = re.compile(
    r"(secret|token|api_?key|passw(or)?d|passwd|private_?key|signing_?key|jwt_?key)", re.IGNORECASE
)
_NOT_SECRET = re.compile(
    r"(type|url|uri|endpoint|header|name|field|prefix|path|length|len|min|max|ttl|expire|minutes|seconds|scheme|algorithm|id)$",
    re.IGNORECASE,
)
_DIGEST = re.compile(r"hash|digest|hmac|signature", re.IGNORECASE)
_HASH_CALL = re.compile(
    r"hash|pbkdf2|bcrypt|argon|scrypt|crypt|digest|passlib|make_password|sha\d|blake2",
    re.IGNORECASE,
)
_PASSWORD_KEY = re.compile(r"^(password|passwd|pwd|pass)$", re.IGNORECASE)
_PASSWORD_COLUMN = re.compile(
    r"(insert\s+into\s+\w+\s*\([^)]*\b(password|passwd|pwd)\b\s*[,)])|(set\s+(password|passwd|pwd)\s*=)",
    re.IGNORECASE,
)
_TOKEN_FORMATS = re.compile(
    r"-----BEGIN (RSA |EC |OPENSSH )?PRIVATE KEY-----|AKIA[0-9A-Z]{16}|ghp_[A-Za-z0-9]{30,}|xox[baprs]-[A-Za-z0-9-]{10,}|sk-[A-Za-z0-9]{20,}"
)
_READ_FUNCS = re.compile(r"login|verify|authenticat|check|compare|validate|sign_?in", re.IGNORECASE)
_TEST_HOOKS = {
    "pytest_runtest_makereport",
    "pytest_runtest_logreport",
    "pytest_report_teststatus",
    "pytest_runtest_protocol",
    "pytest_runtest_call",
    "pytest_pyfunc_call",
    "pytest_terminal_summary",
    "pytest_sessionfinish",
    "pytest_collection_modifyitems",
    "pytest_runtest_setup",
    "pytest_collection_finish",
}


@dataclass
class RuleHit:
    """One match of a rule."""

    check: str
    severity: Severity
    title: str
    path: str
    line: int
    snippet: str


def is_test_file(path: Path) -> bool:
    """Test modules, test packages and ``conftest.py``."""
    parts = {p.lower() for p in path.parts[:-1]}
    name = path.name
    return (
        bool(parts & {"tests", "test"})
        or name.startswith("test_")
        or name.endswith("_test.py")
        or name == "conftest.py"
    )


def iter_python_files(root: Path) -> list[Path]:
    """Python files under ``root``, skipping virtualenvs, caches and VCS data."""
    found: list[Path] = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if any(part in SKIP_DIRS for part in relative.parts[:-1]):
            continue
        if path.is_file():
            found.append(path)
    return found


def _name_of(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.slice, ast.Constant)
        and isinstance(node.slice.value, str)
    ):
        return node.slice.value
    if isinstance(node, ast.Call):
        return _name_of(node.func)
    return ""


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _const_text(node: ast.AST) -> str:
    """The literal text of a string expression (the constant parts of an f-string)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
        )
    if isinstance(node, ast.BinOp):
        return _const_text(node.left) + " " + _const_text(node.right)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
    ):
        return _const_text(node.func.value)
    return ""


def _composed(node: ast.AST) -> bool:
    """Whether a string expression mixes in runtime values."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return bool(_const_text(node.left))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        parts = [node.left, node.right]
        return any(_const_text(p) for p in parts) and not all(
            isinstance(p, ast.Constant) for p in parts
        )
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
    ):
        return bool(_const_text(node.func.value))
    return False


class _Visitor(ast.NodeVisitor):
    def __init__(self, path: str, lines: list[str], *, test_file: bool) -> None:
        self.path = path
        self.lines = lines
        self.test_file = test_file
        self.hits: list[RuleHit] = []
        self.functions: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
        self.assigned: list[dict[str, ast.AST]] = [{}]

    def hit(self, check: str, severity: Severity, title: str, node: ast.AST) -> None:
        line = getattr(node, "lineno", 1)
        snippet = self.lines[line - 1].strip() if 0 < line <= len(self.lines) else ""
        self.hits.append(RuleHit(check, severity, title, self.path, line, snippet[:200]))

    # -- scopes --------------------------------------------------------------

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.functions.append(node)
        self.assigned.append({})
        if self.test_file and node.name in _TEST_HOOKS:
            self._test_hook(node)
        self.generic_visit(node)
        self.assigned.pop()
        self.functions.pop()

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def _hashes(self) -> bool:
        scope: ast.AST | None = self.functions[-1] if self.functions else None
        if scope is None:
            return False
        return any(
            isinstance(n, ast.Call) and _HASH_CALL.search(_dotted(n.func) or _name_of(n.func))
            for n in ast.walk(scope)
        )

    def _function_name(self) -> str:
        return self.functions[-1].name if self.functions else ""

    # -- rules ---------------------------------------------------------------

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            if isinstance(target, ast.Name):
                self.assigned[-1][target.id] = node.value
            elif (
                isinstance(target, ast.Tuple)
                and isinstance(node.value, ast.Tuple)
                and len(target.elts) == len(node.value.elts)
            ):
                for element, value in zip(target.elts, node.value.elts, strict=True):
                    if isinstance(element, ast.Name):
                        self.assigned[-1][element.id] = value
        if not self.test_file:
            for target in node.targets:
                self._secret_literal(_name_of(target), node.value, node)
                self._debug_flag(target, node.value, node)
            self._password_record(node.value)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None and isinstance(node.target, ast.Name):
            self.assigned[-1][node.target.id] = node.value
            if not self.test_file:
                self._secret_literal(node.target.id, node.value, node)
        self.generic_visit(node)

    def _secret_literal(self, name: str, value: ast.AST, node: ast.AST) -> None:
        if not name or not _SECRET_ASSIGN.search(name) or _NOT_SECRET.search(name):
            return
        if (
            isinstance(value, ast.Constant)
            and isinstance(value.value, str)
            and len(value.value) >= 8
        ):
            self.hit(
                "static.hardcoded_secret", Severity.HIGH, f"Literal secret bound to {name}", node
            )
        elif isinstance(value, ast.Call) and re.search(
            r"getenv|environ\.get|get", _dotted(value.func)
        ):
            default = value.args[1] if len(value.args) > 1 else None
            if (
                isinstance(default, ast.Constant)
                and isinstance(default.value, str)
                and len(default.value) >= 8
            ):
                self.hit(
                    "static.hardcoded_secret",
                    Severity.MEDIUM,
                    f"Literal fallback secret for {name}",
                    node,
                )

    def _debug_flag(self, target: ast.AST, value: ast.AST, node: ast.AST) -> None:
        if (
            isinstance(value, ast.Constant)
            and value.value is True
            and _name_of(target).lower() == "debug"
        ):
            self.hit("static.debug_enabled", Severity.MEDIUM, "Debug mode switched on", node)

    def _password_record(self, value: ast.AST) -> None:
        if _READ_FUNCS.search(self._function_name()) or self._hashes():
            return
        for node in ast.walk(value):
            pairs: list[tuple[str, ast.AST]] = []
            if isinstance(node, ast.Dict):
                pairs = [
                    (k.value, v)
                    for k, v in zip(node.keys, node.values, strict=False)
                    if isinstance(k, ast.Constant) and isinstance(k.value, str)
                ]
            elif isinstance(node, ast.Call):
                pairs = [(k.arg, k.value) for k in node.keywords if k.arg]
            for key, item in pairs:
                if (
                    _PASSWORD_KEY.match(key)
                    and _SECRET_NAME.search(_name_of(item))
                    and not isinstance(item, ast.Constant)
                ):
                    self.hit(
                        "static.plaintext_password",
                        Severity.HIGH,
                        "Password stored without hashing",
                        node,
                    )
                    return

    def visit_Expr(self, node: ast.Expr) -> None:
        if not self.test_file:
            self._password_record(node.value)
        self.generic_visit(node)

    def _resolve(self, node: ast.AST, depth: int = 3) -> ast.AST:
        """Follow a local name to the expression last assigned to it."""
        while depth and isinstance(node, ast.Name):
            for scope in reversed(self.assigned):
                if node.id in scope:
                    node = scope[node.id]
                    break
            else:
                break
            depth -= 1
        return node

    @staticmethod
    def _raw_secret(node: ast.AST) -> bool:
        name = _name_of(node)
        return (
            not isinstance(node, (ast.Call, ast.Constant))
            and bool(_SECRET_NAME.search(name))
            and not _DIGEST.search(name)
        )

    @staticmethod
    def _digest(node: ast.AST) -> bool:
        if isinstance(node, ast.Call):
            return bool(_HASH_CALL.search(_name_of(node)))
        return bool(_DIGEST.search(_name_of(node)))

    def visit_Compare(self, node: ast.Compare) -> None:
        if (
            not self.test_file
            and len(node.ops) == 1
            and isinstance(node.ops[0], (ast.Eq, ast.NotEq))
        ):
            sides = (node.left, node.comparators[0])
            if not any(isinstance(side, ast.Constant) for side in sides):
                names = [_name_of(side) for side in sides]
                if any(_SECRET_NAME.search(n) for n in names):
                    if any(self._raw_secret(self._resolve(side)) for side in sides):
                        self.hit(
                            "static.plaintext_secret_compare",
                            Severity.HIGH,
                            "Password or token compared in plaintext",
                            node,
                        )
                    elif any(self._digest(side) for side in sides):
                        self.hit(
                            "static.timing_unsafe_compare",
                            Severity.MEDIUM,
                            "Secret digest compared with ==",
                            node,
                        )
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if not self.test_file:
            self._sql(node)
            self._unsafe(node)
            self._debug_call(node)
            for keyword in node.keywords:
                if (
                    keyword.arg
                    and _SECRET_ASSIGN.search(keyword.arg)
                    and not _NOT_SECRET.search(keyword.arg)
                ):
                    value = keyword.value
                    if (
                        isinstance(value, ast.Constant)
                        and isinstance(value.value, str)
                        and len(value.value) >= 8
                    ):
                        self.hit(
                            "static.hardcoded_secret",
                            Severity.HIGH,
                            f"Literal secret passed as {keyword.arg}",
                            node,
                        )
        self.generic_visit(node)

    def _sql(self, node: ast.Call) -> None:
        name = _name_of(node.func)
        if (
            name
            not in ("execute", "executemany", "executescript", "text", "raw", "exec_driver_sql")
            or not node.args
        ):
            return
        query = self._resolve(node.args[0], depth=1)
        text = _const_text(query)
        if _composed(query) and _SQL.search(text):
            self.hit(
                "static.sql_string_format",
                Severity.HIGH,
                "SQL composed with string formatting",
                node,
            )
        if (
            _PASSWORD_COLUMN.search(text)
            and not self._hashes()
            and not _READ_FUNCS.search(self._function_name())
        ):
            self.hit(
                "static.plaintext_password",
                Severity.HIGH,
                "Password written to the database without hashing",
                node,
            )
            return
        if len(node.args) > 1 and re.search(r"\b(insert|update)\b", text, re.IGNORECASE):
            params = node.args[1]
            values = (
                params.elts
                if isinstance(params, (ast.Tuple, ast.List))
                else params.values
                if isinstance(params, ast.Dict)
                else []
            )
            for value in values:
                if value is not None and _PASSWORD_KEY.match(_name_of(self._resolve(value))):
                    self.hit(
                        "static.plaintext_password",
                        Severity.HIGH,
                        "Password written to the database without hashing",
                        node,
                    )
                    return

    def _unsafe(self, node: ast.Call) -> None:
        dotted = _dotted(node.func)
        name = _name_of(node.func)
        if dotted in ("eval", "exec") or dotted in (
            "pickle.loads",
            "pickle.load",
            "marshal.loads",
            "cPickle.loads",
            "os.system",
            "os.popen",
        ):
            self.hit("static.unsafe_eval", Severity.HIGH, f"{dotted}() on data", node)
        elif (
            dotted == "yaml.load"
            and not any(k.arg == "Loader" and "Safe" in _dotted(k.value) for k in node.keywords)
            and not (len(node.args) > 1 and "Safe" in _dotted(node.args[1]))
        ):
            self.hit("static.unsafe_eval", Severity.HIGH, "yaml.load without a safe loader", node)
        elif (
            name in ("run", "call", "Popen", "check_output", "check_call")
            and dotted.startswith("subprocess")
            and any(
                k.arg == "shell" and isinstance(k.value, ast.Constant) and k.value.value is True
                for k in node.keywords
            )
        ):
            self.hit("static.unsafe_eval", Severity.HIGH, "subprocess with shell=True", node)

    def _debug_call(self, node: ast.Call) -> None:
        for keyword in node.keywords:
            if (
                keyword.arg in ("debug", "reload")
                and isinstance(keyword.value, ast.Constant)
                and keyword.value.value is True
            ):
                self.hit(
                    "static.debug_enabled",
                    Severity.MEDIUM,
                    f"{keyword.arg}=True in {_dotted(node.func) or 'a call'}",
                    node,
                )

    def visit_Constant(self, node: ast.Constant) -> None:
        if not self.test_file and isinstance(node.value, str) and _TOKEN_FORMATS.search(node.value):
            self.hit(
                "static.hardcoded_secret",
                Severity.HIGH,
                "Private key or access token in code",
                node,
            )

    # -- tests ---------------------------------------------------------------

    def _test_hook(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for inner in ast.walk(node):
            if isinstance(inner, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                targets = inner.targets if isinstance(inner, ast.Assign) else [inner.target]
                for target in targets:
                    attr = target.attr if isinstance(target, ast.Attribute) else ""
                    if attr in ("outcome", "longrepr", "exitstatus", "wasxfail"):
                        self.hit(
                            "static.test_tampering",
                            Severity.CRITICAL,
                            f"Test hook {node.name} rewrites {attr}",
                            inner,
                        )
                        return
                    if (
                        isinstance(target, ast.Subscript)
                        and isinstance(target.value, ast.Name)
                        and target.value.id == "items"
                    ):
                        self.hit(
                            "static.test_tampering",
                            Severity.CRITICAL,
                            f"Test hook {node.name} replaces the collected tests",
                            inner,
                        )
                        return
            if isinstance(inner, ast.Call):
                called = _name_of(inner.func)
                if called in ("force_result", "force_exception", "_exit") or (
                    called == "clear" and _dotted(inner.func).startswith("items")
                ):
                    self.hit(
                        "static.test_tampering",
                        Severity.CRITICAL,
                        f"Test hook {node.name} calls {called}()",
                        inner,
                    )
                    return


def scan_source(source: str, path: str, *, test_file: bool) -> list[RuleHit]:
    """Run every rule on one file's source (a syntax error yields no hits)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    visitor = _Visitor(path, source.splitlines(), test_file=test_file)
    visitor.visit(tree)
    return visitor.hits


def scan_file(path: Path, root: Path) -> list[RuleHit]:
    """Run every rule on the file at ``path`` (reported relative to ``root``)."""
    try:
        source = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    relative = path.relative_to(root)
    return scan_source(source, str(relative), test_file=is_test_file(relative))
