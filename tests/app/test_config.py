"""Configuration: SECRET_KEY is required outside development; URLs are normalised."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask.cli import run_command

from app import create_app
from app.db import normalise_url


def test_production_refuses_to_start_without_a_secret_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TANDEM_INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("TANDEM_ENV", raising=False)
    with pytest.raises(RuntimeError, match="SECRET_KEY must be set"):
        create_app()
    monkeypatch.setenv("SECRET_KEY", "a-real-secret")
    assert create_app().config["SECRET_KEY"] == "a-real-secret"


def test_development_keeps_one_generated_key_per_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TANDEM_INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("TANDEM_ENV", "development")
    first, second = create_app(), create_app()
    assert len(first.config["SECRET_KEY"]) == 64
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]


def test_bad_number_in_environment_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TANDEM_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("TANDEM_TOP_K", "five")
    with pytest.raises(RuntimeError, match="TANDEM_TOP_K"):
        create_app({"TESTING": True})


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u@h:5432/d", "postgresql+psycopg://u@h:5432/d"),
        ("postgres://u@h/d", "postgresql+psycopg://u@h/d"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_database_urls_are_normalised(url: str, expected: str) -> None:
    assert normalise_url(url) == expected


def test_score_weights_come_from_the_environment_and_are_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TANDEM_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("TANDEM_SCORE_WEIGHTS", "proposal=1,fit=1")
    app = create_app({"TESTING": True})
    assert app.extensions["tandem.weights"].normalised()["fit"] == 0.5
    monkeypatch.setenv("TANDEM_SCORE_WEIGHTS", "speed=2")
    with pytest.raises(RuntimeError, match="TANDEM_SCORE_WEIGHTS: unknown score components"):
        create_app({"TESTING": True})


@pytest.fixture
def no_address_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An environment that says nothing about where the portal answers."""
    monkeypatch.setenv("TANDEM_INSTANCE_PATH", str(tmp_path))
    for name in ("TANDEM_BASE_URL", "PORT", "FLASK_RUN_PORT", "FLASK_RUN_HOST"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_address_settings")
def test_mail_links_name_the_port_flask_run_serves_on() -> None:
    assert create_app({"TESTING": True}).config["TANDEM_BASE_URL"] == "http://127.0.0.1:5000"
    with run_command.make_context("run", ["--port", "8123"]):
        app = create_app({"TESTING": True})
    assert app.config["TANDEM_BASE_URL"] == "http://127.0.0.1:8123"
    # Listening on every interface: links still need an address a browser can open.
    with run_command.make_context("run", ["--host", "0.0.0.0", "--port", "8124"]):
        app = create_app({"TESTING": True})
    assert app.config["TANDEM_BASE_URL"] == "http://127.0.0.1:8124"


@pytest.mark.usefixtures("no_address_settings")
def test_mail_links_follow_the_port_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """What `PORT=8000 make run` sets, for every command it runs (and the queue worker)."""
    monkeypatch.setenv("PORT", "8000")
    assert create_app({"TESTING": True}).config["TANDEM_BASE_URL"] == "http://127.0.0.1:8000"
    monkeypatch.setenv("FLASK_RUN_PORT", "8001")
    monkeypatch.setenv("FLASK_RUN_HOST", "::1")
    assert create_app({"TESTING": True}).config["TANDEM_BASE_URL"] == "http://[::1]:8001"
    monkeypatch.setenv("FLASK_RUN_PORT", "eighty")
    with pytest.raises(RuntimeError, match="FLASK_RUN_PORT must be a whole number"):
        create_app({"TESTING": True})


@pytest.mark.usefixtures("no_address_settings")
def test_tandem_base_url_wins_over_the_served_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """Behind a proxy the public address is not the port the server listens on."""
    monkeypatch.setenv("TANDEM_BASE_URL", "https://tandem.example.org")
    monkeypatch.setenv("PORT", "not-used")
    with run_command.make_context("run", ["--port", "8123"]):
        app = create_app({"TESTING": True})
    assert app.config["TANDEM_BASE_URL"] == "https://tandem.example.org"


def test_every_setting_is_documented_in_env_example_and_nothing_else_is() -> None:
    """Settings are declared once (app/config.py SETTINGS); `.env.example` names each of them
    and the few variables read elsewhere, and nothing the app does not read."""
    from app.config import OTHER_ENVIRONMENT, ROOT, SETTINGS

    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    documented = re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, flags=re.MULTILINE)
    assert len(documented) == len(set(documented)), "each variable once"
    assert set(documented) == {s.name for s in SETTINGS} | set(OTHER_ENVIRONMENT)


def test_the_app_reads_only_declared_variables() -> None:
    from app.config import OTHER_ENVIRONMENT, ROOT, SETTINGS

    declared = {s.name for s in SETTINGS} | set(OTHER_ENVIRONMENT)
    read: set[str] = set()
    for path in (ROOT / "app").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        read |= set(re.findall(r"os\.environ(?:\.get)?[\[(]\"([A-Z0-9_]+)\"", text))
        read |= set(re.findall(r"os\.getenv\(\"([A-Z0-9_]+)\"", text))
    assert read - declared - {"FLASK_RUN_HOST", "FLASK_RUN_PORT"} == set()
