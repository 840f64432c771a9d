"""The api_docs tool's library: documentation of installed packages, read statically."""

from __future__ import annotations

import sys

import pytest

from activities.api_docs import DocsError, docs_for
from activities.environment import installed_packages
from activities.sandbox import base_env


@pytest.fixture(scope="module")
def docs():  # type: ignore[no-untyped-def]
    env = base_env()
    return docs_for(env, installed_packages(env))


def test_a_class_through_its_re_export(docs) -> None:  # type: ignore[no-untyped-def]
    text = docs.lookup("fastapi.testclient.TestClient")
    assert text.startswith("class starlette.testclient.TestClient  (fastapi.testclient.TestClient)")
    assert "TestClient.__init__(app: ASGIApp" in text and "- def request(" in text


def test_annotated_doc_parameters_are_unwrapped(docs) -> None:  # type: ignore[no-untyped-def]
    text = docs.lookup("fastapi.Query")
    assert (
        "max_length: int | None = None" in text and "Annotated[" not in text.split("Parameters:")[0]
    )


def test_search_within_a_package(docs) -> None:  # type: ignore[no-untyped-def]
    assert "fastapi.applications.FastAPI.dependency_overrides" in docs.search(
        "fastapi", "dependency overrides"
    )


def test_lazily_re_exported_names_are_found(docs) -> None:  # type: ignore[no-untyped-def]
    assert docs.lookup("pydantic.EmailStr").startswith("class pydantic.networks.EmailStr")


def test_unknown_names_and_backforge_itself_are_refused(docs) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DocsError, match="no installed package 'email_validator'"):
        docs.lookup("email_validator")
    with pytest.raises(DocsError, match="has no member 'nope'; its public members: APIRouter"):
        docs.lookup("fastapi.nope")
    with pytest.raises(DocsError, match="not an installed package of the project environment"):
        docs.lookup("activities.agent")


def test_nothing_is_imported_to_document_it(docs) -> None:  # type: ignore[no-untyped-def]
    assert "bandit.core.manager" not in sys.modules
    assert "BanditManager" in docs.lookup("bandit.core.manager")
    assert "bandit.core.manager" not in sys.modules
