"""Fixtures: a migrated database per test (SQLite, and PostgreSQL when
TANDEM_TEST_DATABASE_URL is set), the app on it, and its encoder: the deterministic stand-in by
default, the real embedding model (loaded once per session) for tests marked `semantic`."""

from __future__ import annotations

import functools
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlmodel import Session

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from app import create_app  # noqa: E402
from app.cli.db import upgrade  # noqa: E402
from app.db import make_engine  # noqa: E402
from matching import Encoder, load_model  # noqa: E402
from matching.embeddings import PACKAGED_MODEL  # noqa: E402
from matching.stand_in import StandInEncoder  # noqa: E402

POSTGRES_URL = os.environ.get("TANDEM_TEST_DATABASE_URL")
DATABASES = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]
# A test that needs Redis runs where REDIS_URL is set (CI sets it), and fails there if Redis
# does not answer.
needs_redis = pytest.mark.skipif(
    not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (CI sets it)"
)


@pytest.fixture(scope="session")
def model() -> Any:
    """The real all-MiniLM-L6-v2, loaded once for the whole run, and only if a test asks."""
    return load_model(PACKAGED_MODEL)


@pytest.fixture(scope="session")
def semantic_encoder(model: Any) -> Encoder:
    """The real model's session-wide encoder (its in-memory cache is shared across tests)."""
    return Encoder(model, model_name=PACKAGED_MODEL)


@pytest.fixture(scope="session")
def stand_in_encoder() -> StandInEncoder:
    """The deterministic hashing stand-in's session-wide encoder (shared cache)."""
    return StandInEncoder()


def _is_semantic(request: pytest.FixtureRequest) -> bool:
    return request.node.get_closest_marker("semantic") is not None


@pytest.fixture
def encoder(request: pytest.FixtureRequest) -> Encoder:
    """The encoder the app and the engine rank with: the stand-in, fast and deterministic,
    or the real model for tests marked `semantic` (they assert ranking quality)."""
    if _is_semantic(request):
        return request.getfixturevalue("semantic_encoder")
    return request.getfixturevalue("stand_in_encoder")


@pytest.fixture
def fresh_encoder(request: pytest.FixtureRequest) -> Encoder:
    """An encoder like `encoder` but with an empty in-memory cache, for counting what gets
    encoded (the model itself is shared)."""
    if _is_semantic(request):
        return Encoder(request.getfixturevalue("model"), model_name=PACKAGED_MODEL)
    shared = request.getfixturevalue("stand_in_encoder")
    return Encoder(shared.model, model_name=shared.model_name, batch_size=shared.batch_size)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "tandem.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL test database, emptied and migrated to head once per run.

    If TANDEM_TEST_DATABASE_URL is set but the server does not answer, every PostgreSQL test
    fails: a CI that asked for PostgreSQL must not pass on SQLite alone.
    """
    assert POSTGRES_URL is not None
    engine = make_engine(POSTGRES_URL)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("DROP SCHEMA public CASCADE"))
            connection.execute(sa.text("CREATE SCHEMA public"))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"TANDEM_TEST_DATABASE_URL is set but PostgreSQL does not answer: {exc}")
    upgrade(engine)
    engine.dispose()
    return POSTGRES_URL


def _truncate_postgres(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as connection:
        tables = connection.execute(
            sa.text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"
            )
        ).scalars()
        names = ", ".join(f'"{name}"' for name in tables)
        if names:
            connection.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database for one test."""
    if request.param == "sqlite":
        path = tmp_path / "tandem.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    _truncate_postgres(url)
    return url


@pytest.fixture
def app(
    database_url: str, encoder: Encoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Flask]:
    monkeypatch.setenv("TANDEM_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret-key",
            "TANDEM_ENV": "test",
            "TANDEM_PAGE_SIZE": 10,
            # Client tests post forms directly; tests/app/auth/test_auth.py checks CSRF itself.
            "WTF_CSRF_ENABLED": False,
            "TANDEM_MAIL_DIR": str(tmp_path / "mail"),
            # Mailed links are checked against this address, whatever PORT the shell has.
            "TANDEM_BASE_URL": "http://127.0.0.1:5000",
            # Sign-in limits live in Redis when REDIS_URL is set; each test counts apart.
            "REDIS_URL": os.environ.get("REDIS_URL"),
            "RATELIMIT_KEY_PREFIX": f"tandem-test-{uuid.uuid4().hex}",
            # Queued tasks run in the caller; tests/app/test_queue.py runs the real queues.
            "TANDEM_QUEUE": "immediate",
        }
    )
    app.extensions["tandem.encoder"] = encoder
    yield app
    app.extensions["tandem.engine"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    """A session on the test's database, outside any request."""
    with Session(app.extensions["tandem.engine"], expire_on_commit=False) as session:
        yield session


@pytest.fixture
def demo_loaded(runner: FlaskCliRunner) -> str:
    """The demo data loaded through the real CLI command, recommendations included."""
    result = runner.invoke(args=["demo", "load"])
    assert result.exit_code == 0, result.output
    return result.output


TEST_PASSWORD = "violet-harbour-lantern-42"


@functools.cache
def test_password_hash() -> str:
    """One argon2id hash of TEST_PASSWORD, shared by every test user (hashing is slow)."""
    from argon2 import PasswordHasher

    return PasswordHasher().hash(TEST_PASSWORD)


def totp_code(app: Flask, secret: str, *, after: int | None = None) -> str:
    """The authenticator code for `secret` now, or for the first time step after `after`
    (a code is accepted once, so a second sign-in in the same 30 seconds needs the next
    one: the app shows it a few seconds later, and Tandem accepts codes 2 minutes ahead)."""
    from flask_security.proxies import _security

    with app.app_context():
        totp = _security._totp_factory._totp.from_source(secret)
    now = time.time()
    if after is not None and after >= int(now // totp.period):
        now = (after + 1) * totp.period
    return totp.generate(now).token


class AuthActions:
    """Sign a test client in and out through the real sign-in form (and the real two-factor
    step for users who have it, e.g. administrators made by `make_admin`)."""

    def __init__(self, client: FlaskClient) -> None:
        self._client = client

    def login(self, email: str, password: str = TEST_PASSWORD) -> None:
        response = self._client.post("/login", data={"email": email, "password": password})
        assert response.status_code == 302, response.get_data(as_text=True)[:2000]
        if "/tf-validate" in response.headers["Location"]:
            self.second_factor(email)

    def second_factor(self, email: str) -> None:
        from flask_security import current_user  # noqa: F401  (app context below)

        app = self._client.application
        with app.app_context():
            from app.auth.account import Account
            from app.db import db_session

            account = db_session().scalar(sa.select(Account).where(Account.email == email))
            code = totp_code(app, account.tf_totp_secret, after=account.tf_totp_last_counter)
        response = self._client.post("/tf-validate", data={"code": code})
        assert response.status_code == 302, response.get_data(as_text=True)[:2000]

    def logout(self) -> None:
        self._client.post("/logout")

    def login_with_form_token(self, email: str) -> None:
        """Sign in as a browser does where CSRF protection is on: with the token the sign-in
        page put in its form."""
        page = self._client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
        assert token is not None
        response = self._client.post(
            "/login", data={"email": email, "password": TEST_PASSWORD, "csrf_token": token.group(1)}
        )
        assert response.status_code == 302, response.get_data(as_text=True)[:2000]


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    return AuthActions(client)


@pytest.fixture
def make_organisation(session: Session) -> Callable[..., Any]:
    from models import Organisation, OrganisationKind

    counter = iter(range(1, 10_000))

    def make(**overrides: Any) -> Organisation:
        number = next(counter)
        fields = {
            "name": f"Organisation {number}",
            "kind": OrganisationKind.university,
            "email_domains": [f"org{number}.example.org"],
            "verified": True,
        }
        organisation = Organisation(**{**fields, **overrides})
        session.add(organisation)
        session.commit()
        return organisation

    return make


@pytest.fixture
def make_user(session: Session, make_organisation: Callable[..., Any]) -> Callable[..., Any]:
    from models import Role, User, utcnow

    counter = iter(range(1, 10_000))

    def make(**overrides: Any) -> User:
        number = next(counter)
        if "organisation_id" not in overrides:
            overrides["organisation_id"] = make_organisation().id
        fields = {
            "email": f"person{number}@example.org",
            "name": f"Person {number}",
            "role": Role.academic,
            "password_hash": test_password_hash(),
            "confirmed_at": utcnow(),
        }
        user = User(**{**fields, **overrides})
        session.add(user)
        session.commit()
        return user

    return make


@pytest.fixture
def make_admin(app: Flask, make_user: Callable[..., Any]) -> Callable[..., Any]:
    """An administrator with two-factor sign-in set up (required for admins)."""
    from models import Role

    def make(**overrides: Any) -> Any:
        with app.app_context():
            from flask_security.proxies import _security

            secret = _security._totp_factory.generate_totp_secret()
        return make_user(
            role=Role.admin, tf_primary_method="authenticator", tf_totp_secret=secret, **overrides
        )

    return make


@pytest.fixture
def make_proposal(session: Session, make_user: Callable[..., Any]) -> Callable[..., Any]:
    from models import Proposal, ProposalStatus

    def make(**overrides: Any) -> Proposal:
        if "author_id" not in overrides:
            overrides["author_id"] = make_user().id
        fields = {
            "title": "Offline reinforcement learning for grid batteries",
            "abstract": "We learn battery dispatch policies from logged grid operation data.",
            "research_areas": ["reinforcement learning"],
            "gpu_hours_needed": 1000,
            "status": ProposalStatus.open,
        }
        proposal = Proposal(**{**fields, **overrides})
        session.add(proposal)
        session.commit()
        return proposal

    return make


@pytest.fixture
def make_offer(
    session: Session,
    make_organisation: Callable[..., Any],
) -> Callable[..., Any]:
    from models import Offer, OfferKind, OfferStatus, OrganisationKind

    def make(**overrides: Any) -> Offer:
        if "organisation_id" not in overrides:
            overrides["organisation_id"] = make_organisation(kind=OrganisationKind.company).id
        fields = {
            "kind": OfferKind.compute,
            "title": "H100 hours for open research",
            "description": "Up to 5,000 H100 hours for academic projects that publish openly.",
            "gpu_type": "H100",
            "gpu_memory_gb": 80,
            "gpu_hours_budget": 20_000,
            "max_hours_per_project": 5_000,
            "max_projects": 4,
            "status": OfferStatus.open,
        }
        offer = Offer(**{**fields, **overrides})
        session.add(offer)
        session.commit()
        return offer

    return make
