"""Identity mechanisms beyond the reference service: an API key issued at registration,
and HTTP basic auth with fixed accounts from the contract's x-backforge extension.

Each tiny service is served on loopback and validated; a broken credential check
in each must be reported as a blocking authentication finding.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from activities.validation import (
    ValidationReport,
    ValidationSettings,
    ValidationTarget,
    validate_service,
)
from tests.support.validation_services import serve

SETTINGS = ValidationSettings(max_examples=5, stateful_scenarios=3, skip=["performance", "static"])

API_KEY_APP = """
import secrets

from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel

app = FastAPI()
KEYS: dict[str, str] = {}


class Account(BaseModel):
    username: str
    password: str


@app.post("/users", status_code=201)
def register(account: Account) -> dict[str, str]:
    key = secrets.token_hex(16)
    KEYS[key] = account.username
    return {"username": account.username, "api_key": key}


def caller(key: str | None) -> str:
    if key not in KEYS:  # CHECK
        raise HTTPException(status_code=401, detail="bad key")
    return KEYS.get(key, "anonymous")


@app.get("/me")
def me(x_api_key: str | None = Header(default=None)) -> dict[str, str]:
    return {"username": caller(x_api_key)}
"""

API_KEY_CONTRACT = """
openapi: 3.1.0
info: {title: keys, version: "1"}
security: [{apiKey: []}]
paths:
  /users:
    post:
      operationId: register
      security: []
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [username, password]
              properties:
                username: {type: string, pattern: "^[a-z0-9]{3,20}$"}
                password: {type: string, minLength: 8, maxLength: 64}
      responses:
        "201":
          description: Registered.
          content:
            application/json:
              schema:
                type: object
                required: [username, api_key]
                properties: {username: {type: string}, api_key: {type: string}}
        "422": {description: Invalid.}
  /me:
    get:
      operationId: me
      responses:
        "200":
          description: Who I am.
          content:
            application/json:
              schema: {type: object, required: [username], properties: {username: {type: string}}}
        "401": {description: No or bad key.}
components:
  securitySchemes:
    apiKey: {type: apiKey, in: header, name: X-API-Key}
"""

BASIC_APP = """
import secrets
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import HTTPBasic, HTTPBasicCredentials

app = FastAPI()
basic = HTTPBasic(auto_error=False)
USERS = {"alice": "alice-password-1", "bob": "bob-password-22"}


def caller(credentials: Annotated[HTTPBasicCredentials | None, Depends(basic)]) -> str:
    if credentials is None or credentials.username not in USERS:
        raise HTTPException(status_code=401, detail="who?", headers={"WWW-Authenticate": "Basic"})
    if not secrets.compare_digest(credentials.password, USERS[credentials.username]):  # CHECK
        raise HTTPException(status_code=401, detail="who?", headers={"WWW-Authenticate": "Basic"})
    return credentials.username


@app.get("/me")
def me(user: Annotated[str, Depends(caller)]) -> dict[str, str]:
    return {"username": user}
"""

BASIC_CONTRACT = """
openapi: 3.1.0
info: {title: basic, version: "1"}
security: [{basicAuth: []}]
x-backforge:
  identity:
    credentials:
      - {username: alice, password: alice-password-1}
      - {username: bob, password: bob-password-22}
paths:
  /me:
    get:
      operationId: me
      responses:
        "200":
          description: Who I am.
          content:
            application/json:
              schema: {type: object, required: [username], properties: {username: {type: string}}}
        "401": {description: No or bad credentials.}
components:
  securitySchemes:
    basicAuth: {type: http, scheme: basic}
"""


def _validate(tmp_path: Path, app: str, contract: str) -> ValidationReport:
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "svc_app.py").write_text(textwrap.dedent(app))
    (tmp_path / "openapi.yaml").write_text(textwrap.dedent(contract))
    with serve(tmp_path / "svc", "svc_app:app", log=tmp_path / "uvicorn.log") as url:
        return validate_service(
            ValidationTarget(
                base_url=url, contract_path=tmp_path / "openapi.yaml", settings=SETTINGS
            )
        )


def _auth(report: ValidationReport) -> tuple[str, set[str]]:
    record = next(c for c in report.checks if c.category == "authentication")
    return record.note, set(record.probes)


def test_api_key_issued_at_registration(tmp_path: Path) -> None:
    report = _validate(tmp_path, API_KEY_APP, API_KEY_CONTRACT)
    assert report.blocking == [], [(f.check, f.title) for f in report.blocking]
    note, probes = _auth(report)
    assert "security scheme apiKey (apiKey header X-API-Key)" in note
    assert "registered username=" in note
    assert {"no credentials", "made-up X-API-Key"} <= probes


@pytest.mark.parametrize(
    ("app", "contract", "broken", "probe"),
    [
        (API_KEY_APP, API_KEY_CONTRACT, "if key is None:  # CHECK", "made-up X-API-Key"),
        (BASIC_APP, BASIC_CONTRACT, "if False:  # CHECK", "wrong basic password"),
    ],
    ids=["api-key-not-checked", "basic-password-not-checked"],
)
def test_broken_credential_check_is_caught(
    tmp_path: Path, app: str, contract: str, broken: str, probe: str
) -> None:
    line = next(line for line in app.splitlines() if line.endswith("# CHECK"))
    indent = line[: len(line) - len(line.lstrip())]
    report = _validate(tmp_path, app.replace(line, indent + broken), contract)
    caught = [
        f for f in report.blocking if f.check == "authentication.malformed_credential_accepted"
    ]
    assert caught and caught[0].endpoint == "GET /me"
    assert caught[0].evidence[0].note == probe and caught[0].evidence[0].status == 200


def test_basic_auth_with_fixed_accounts(tmp_path: Path) -> None:
    report = _validate(tmp_path, BASIC_APP, BASIC_CONTRACT)
    assert report.blocking == [], [(f.check, f.title) for f in report.blocking]
    note, probes = _auth(report)
    assert "fixed account alice" in note and "fixed account bob" in note
    assert "same account as A" in note, "two fixed accounts: the fuzz user reuses A's"
    assert {"no credentials", "wrong basic password", "garbled basic credentials"} <= probes
