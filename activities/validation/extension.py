"""The ``x-backforge`` extension of an OpenAPI contract: the checker's own configuration.

A contract may carry, at its top level, an ``x-backforge`` object that tells the
checker what it cannot infer. Everything is optional; without it the checker
infers identity from ``securitySchemes``, required identity headers and
login/registration operations, and resources from ``/things`` + ``/things/{id}``
paths. Example::

    x-backforge:
      app: app.main:app              # the ASGI application to serve (default app.main:app)
      identity:
        header: X-User-Id            # identity header; its value is the user id
        users: [alice, bob]          # values to act as two users (fresh ones if omitted)
        scheme: bearerAuth           # securitySchemes entry to authenticate with
        register: registerUser       # operationId of registration
        login: loginUser             # operationId of login
        token_field: access_token    # login response field with the token (dotted path)
        credentials:                 # fixed accounts, when there is no registration
          - {username: alice, password: "correct horse 1"}
          - {username: bob, password: "correct horse 2"}
      public: [health]               # operationIds that need no identity
      resources:                     # when paths do not follow /things + /things/{id}
        - create: createNote
          read: getNote
          update: updateNote
          delete: deleteNote
          list: listNotes
          id_field: id
          example: {title: hello}    # a valid create body
      requirements:                  # check categories -> requirement ids
        authentication: [FR-001]
        authorization: [FR-005, FR-006]
      load:
        operations: [listNotes]      # what the load exercises (default: GETs without path params)
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["BackforgeExtension", "IdentityConfig", "ResourceConfig", "LoadConfig", "EXTENSION_KEY"]

EXTENSION_KEY = "x-backforge"


class _Strict(BaseModel):
    # A typo in the extension should fail loudly, not be ignored.
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class IdentityConfig(_Strict):
    """How the checker becomes a user."""

    header: str | None = None
    users: list[str] = Field(default_factory=list)
    scheme: str | None = None
    #: ``register`` in the contract (the name shadows a pydantic attribute here).
    register_op: str | None = Field(default=None, alias="register")
    login: str | None = None
    token_field: str | None = None
    credentials: list[dict[str, str]] = Field(default_factory=list)


class ResourceConfig(_Strict):
    """One owned resource, by operationId."""

    create: str
    read: str | None = None
    update: str | None = None
    delete: str | None = None
    list: str | None = None
    id_field: str = "id"
    example: dict[str, Any] | None = None


class LoadConfig(_Strict):
    """What the bounded load exercises."""

    operations: list[str] = Field(default_factory=list)


class BackforgeExtension(_Strict):
    """The ``x-backforge`` object (see the module docstring)."""

    #: ``module:attribute`` of the ASGI application (Backforge serves it with uvicorn).
    app: str | None = Field(default=None, pattern=r"^[\w.]+:[\w.]+$")
    identity: IdentityConfig | None = None
    public: list[str] = Field(default_factory=list)
    resources: list[ResourceConfig] = Field(default_factory=list)
    requirements: dict[str, list[str]] = Field(default_factory=dict)
    load: LoadConfig | None = None
