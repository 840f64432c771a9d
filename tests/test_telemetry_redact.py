"""Secrets never leave in spans: URLs, key-like tokens and the environment's credentials."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from telemetry.redact import REDACTED, RedactingExporter, redact, redact_url, secret_values


def test_url_credentials_are_removed() -> None:
    assert redact_url("https://user:tok3n@git.example/a/b.git") == (
        f"https://{REDACTED}@git.example/a/b.git"
    )
    assert redact_url("/srv/repos/plain") == "/srv/repos/plain"
    assert redact_url("git@host:org/repo.git") == "git@host:org/repo.git"  # no secret in it


def test_key_like_tokens_and_known_values_are_removed() -> None:
    assert REDACTED in redact("Incorrect API key provided: sk-proj-abcdefgh12345678")
    assert redact("Authorization: Bearer abc.def.ghi12345") == f"Authorization: {REDACTED}"
    assert redact("value is hunter2-long-secret", ["hunter2-long-secret"]) == f"value is {REDACTED}"
    assert (
        redact("run_phase_plan failed after 3 attempts") == "run_phase_plan failed after 3 attempts"
    )


def test_secret_values_come_from_credential_names() -> None:
    env = {"ANTHROPIC_API_KEY": "a" * 20, "GH_TOKEN": "b" * 12, "HOME": "/root", "X_KEY": "short"}
    assert set(secret_values(env)) == {"a" * 20, "b" * 12}


def test_exporter_scrubs_names_attributes_events_and_status() -> None:
    secret = "my-very-secret-value-123"
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(RedactingExporter(memory, secrets=[secret])))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span(f"push {secret}") as span:
        span.set_attribute("url", f"https://x:{secret}@h/r")
        span.set_attribute("list", ["ok", f"a {secret}"])
        span.set_attribute("count", 3)
        span.add_event("failed", {"message": f"key {secret}"})
        span.set_status(Status(StatusCode.ERROR, f"boom {secret}"))
    (out,) = memory.get_finished_spans()
    dumped = out.to_json()
    assert secret not in dumped
    assert out.attributes is not None and out.attributes["count"] == 3
    assert out.status.status_code == StatusCode.ERROR and REDACTED in (out.status.description or "")
    assert out.context == span.get_span_context()
