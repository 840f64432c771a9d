"""The checker's reading of a contract, its x-backforge extension, the quickstart and payloads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from activities.validation.openapi import ContractError, load_contract
from activities.validation.payloads import PayloadFactory, matches_schema_string
from activities.validation.quickstart import parse_quickstart_text
from tests.support.validation_demo import build_demo_service
from tests.support.validation_services import REFERENCE

REFERENCE_CONTRACT = REFERENCE / "service" / "specs" / "001-notes" / "contracts" / "openapi.yaml"


@pytest.fixture(scope="module")
def demo_contract(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo_service(tmp_path_factory.mktemp("demo")).contract


def test_demo_contract_identity_resources_and_requirements(demo_contract: Path) -> None:
    contract = load_contract(demo_contract)
    assert contract.identity_header_names == ["X-User-Id"]
    assert not contract.find("get", "/health").secured  # type: ignore[union-attr]
    secured = [o.label for o in contract.operations if o.secured]
    assert len(secured) == 14
    assert contract.used_schemes == []
    resources = {r.name: r for r in contract.resources}
    assert set(resources) == {"bookmarks", "collections"}
    bookmarks = resources["bookmarks"]
    assert (bookmarks.id_param, bookmarks.id_field) == ("bookmark_id", "id")
    assert (
        bookmarks.update is not None and bookmarks.update.label == "PATCH /bookmarks/{bookmark_id}"
    )
    assert bookmarks.listing is not None and bookmarks.listing.label == "GET /bookmarks"
    create = contract.find("post", "/bookmarks")
    assert create is not None
    assert create.requirements == ["FR-002", "FR-003", "FR-004", "FR-005", "FR-011", "FR-012"]
    assert contract.resource_for_param("collection_id") is resources["collections"]
    assert contract.auth_flow.login is None and contract.auth_flow.register is None


def test_reference_contract_bearer_scheme_and_login_flow() -> None:
    contract = load_contract(REFERENCE_CONTRACT)
    assert [s.label for s in contract.used_schemes] == ["http bearer"]
    assert contract.identity_header_names == []
    flow = contract.auth_flow
    assert flow.register is not None and flow.register.operation_id == "register"
    assert flow.login is not None and flow.login.operation_id == "login"
    assert (flow.username_field, flow.password_field, flow.token_field) == (
        "username",
        "password",
        "access_token",
    )
    public = {o.label for o in contract.operations if not o.secured}
    assert public == {"GET /health", "POST /auth/register", "POST /auth/login"}
    (notes,) = contract.resources
    assert notes.update is not None and notes.update.method == "put"


def _contract(tmp_path: Path, extension: dict[str, object]) -> Path:
    raw = yaml.safe_load(REFERENCE_CONTRACT.read_text())
    raw["x-backforge"] = extension
    path = tmp_path / "openapi.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_extension_overrides_inference(tmp_path: Path) -> None:
    path = _contract(
        tmp_path,
        {
            "identity": {
                "scheme": "bearerAuth",
                "register": "register",
                "login": "login",
                "token_field": "access_token",
            },
            "public": ["listNotes"],
            "resources": [
                {
                    "create": "createNote",
                    "read": "getNote",
                    "delete": "deleteNote",
                    "example": {"title": "x"},
                }
            ],
            "requirements": {"authentication": ["FR-003"]},
            "load": {"operations": ["listNotes"]},
        },
    )
    contract = load_contract(path)
    (notes,) = contract.resources
    assert notes.example == {"title": "x"} and notes.update is None
    assert contract.extension.requirements == {"authentication": ["FR-003"]}
    assert contract.auth_flow.register is not None


def test_extension_typo_is_a_contract_error(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="x-backforge"):
        load_contract(_contract(tmp_path, {"identiy": {}}))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("swagger: '2.0'\npaths: {/a: {}}\n", "not an OpenAPI 3"),
        ("openapi: 3.1.0\npaths: {}\n", "no paths"),
        ("openapi: [unclosed\n", "not valid YAML"),
    ],
)
def test_unreadable_contracts(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "openapi.yaml"
    path.write_text(content)
    with pytest.raises(ContractError, match=message):
        load_contract(path)


def test_quickstart_curl_calls() -> None:
    quickstart = parse_quickstart_text(
        """
```bash
API=http://127.0.0.1:8000
ALICE='X-User-Id: alice'
curl -s -X POST "$API/bookmarks" -H "$ALICE" -H 'Content-Type: application/json' \\
  -d '{"url": "https://example.com/a", "title": "A"}'
curl -s "$API/bookmarks/1" -H "$ALICE"   # read it back
curl -u bob:secret-pass "$API/private"
```
"""
    )
    first, second, third = quickstart.calls
    assert (first.method, first.path, first.body) == (
        "POST",
        "/bookmarks",
        {"url": "https://example.com/a", "title": "A"},
    )
    assert first.headers["X-User-Id"] == "alice"
    assert (second.method, second.path) == ("GET", "/bookmarks/1")
    assert third.basic_auth == ("bob", "secret-pass")
    assert quickstart.header_values("x-user-id") == ["alice"]
    assert quickstart.bodies_for("POST", "/bookmarks") == [
        {"url": "https://example.com/a", "title": "A"}
    ]
    assert quickstart.bodies_for("GET", "/bookmarks/{bookmark_id}") == []


def test_payloads_are_valid_unique_and_deterministic() -> None:
    schema = {
        "type": "object",
        "required": ["username", "email", "url", "count", "tags"],
        "properties": {
            "username": {"type": "string", "pattern": "^[a-z0-9_]{3,12}$"},
            "email": {"type": "string", "format": "email"},
            "url": {"type": "string", "maxLength": 60, "examples": ["https://example.com/a"]},
            "count": {"type": "integer", "minimum": 3, "maximum": 5},
            "tags": {
                "type": "array",
                "minItems": 2,
                "items": {"type": "string", "pattern": "^[a-z-]{1,10}$"},
            },
            "optional": {"type": "string"},
        },
    }
    first, second = PayloadFactory("ab12").object(schema), PayloadFactory("ab12").object(schema)
    assert first == second, "the same label gives the same values"
    assert set(first) == {"username", "email", "url", "count", "tags"}
    assert re.fullmatch(r"[a-z0-9_]{3,12}", first["username"])
    assert "@" in first["email"] and first["url"].startswith("https://example.com/a?bf=")
    assert first["count"] == 3 and len(first["tags"]) == 2
    assert all(re.fullmatch(r"[a-z-]{1,10}", t) for t in first["tags"])
    factory = PayloadFactory("cd34")
    values = {factory.string({"type": "string", "maxLength": 20}, "title") for _ in range(50)}
    assert len(values) == 50 and all(len(v) <= 20 for v in values)


def test_example_bodies_are_made_unique_within_the_schema() -> None:
    factory = PayloadFactory("ef56")
    schema = {
        "type": "object",
        "required": ["username", "password"],
        "properties": {
            "username": {"type": "string", "pattern": "^[a-z0-9_]{3,32}$"},
            "password": {"type": "string", "minLength": 8},
        },
    }
    a = factory.body_from_example({"username": "alice", "password": "correct horse"}, schema)
    b = factory.body_from_example({"username": "alice", "password": "correct horse"}, schema)
    assert a["username"] != b["username"]
    assert all(
        matches_schema_string(body["username"], schema["properties"]["username"]) for body in (a, b)
    )
