"""Sign-up, sign-in and their protections, through the real Flask-Security views."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from app import create_app
from app.auth.passwords import is_common
from models import Organisation, OrganisationKind, Role, User
from tests.conftest import TEST_PASSWORD, AuthActions, needs_redis, totp_code

STRONG = "orchid-tractor-meadow-91"


def _signup(client: FlaskClient, **overrides: str) -> Any:
    data = {
        "name": "Grace Hopper",
        "email": "grace@brightlab.example.com",
        "role": "academic",
        "organisation": "Brightlab Institute",
        "password": STRONG,
        "password_confirm": STRONG,
        **overrides,
    }
    return client.post("/register", data=data)


def _field_errors(response: Any) -> list[str]:
    return re.findall(r'<p class="field-error">([^<]*)</p>', response.get_data(as_text=True))


def test_sign_up_creates_an_unverified_organisation_and_asks_to_confirm(
    client: FlaskClient, session: Session
) -> None:
    response = _signup(client, email="Grace@BrightLab.example.com")
    assert response.status_code == 302
    user = session.exec(select(User).where(User.email == "grace@brightlab.example.com")).one()
    assert user.role == Role.academic and user.name == "Grace Hopper"
    assert user.confirmed_at is None
    assert user.password_hash.startswith("$argon2id$")
    organisation = session.get(Organisation, user.organisation_id)
    assert organisation is not None
    assert organisation.name == "Brightlab Institute" and not organisation.verified
    assert organisation.kind == OrganisationKind.university
    assert organisation.email_domains == ["brightlab.example.com"]

    response = client.post("/login", data={"email": user.email, "password": STRONG})
    assert response.status_code == 422
    assert "confirm your email" in response.get_data(as_text=True)


def test_a_colleague_joins_the_organisation_of_their_email_domain(
    client: FlaskClient, session: Session, make_organisation: Callable[..., Any]
) -> None:
    helios = make_organisation(
        name="Helios Compute", kind=OrganisationKind.company, email_domains=["helios.example.com"]
    )
    response = _signup(
        client, email="new@helios.example.com", role="company", organisation="Helios"
    )
    assert response.status_code == 302
    user = session.exec(select(User).where(User.email == "new@helios.example.com")).one()
    assert user.organisation_id == helios.id and user.role == Role.company


def test_an_outsider_cannot_claim_an_existing_organisation(
    client: FlaskClient, session: Session, make_organisation: Callable[..., Any]
) -> None:
    make_organisation(
        name="Helios Compute", kind=OrganisationKind.company, email_domains=["helios.example.com"]
    )
    response = _signup(
        client, email="mallory@gmail.com", role="company", organisation="helios compute"
    )
    assert response.status_code == 422
    assert any("already on Tandem" in e for e in _field_errors(response))
    page = response.get_data(as_text=True)
    assert 'value="mallory@gmail.com"' in page and 'value="helios compute"' in page
    assert session.exec(select(User).where(User.email == "mallory@gmail.com")).first() is None


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short-pw", "at least 12"),
        ("password1234", "common"),
        ("qwertyuiopas", "easy to guess"),  # a row of keys: zxcvbn's estimate refuses it
    ],
)
def test_weak_passwords_are_refused_at_the_field(
    client: FlaskClient, session: Session, password: str, message: str
) -> None:
    response = _signup(client, password=password, password_confirm=password)
    assert response.status_code == 422
    assert any(message in e.lower() for e in _field_errors(response)), _field_errors(response)
    assert 'value="Grace Hopper"' in response.get_data(as_text=True)
    assert session.exec(select(User)).all() == []


def test_the_shipped_common_password_list_catches_decorated_passwords() -> None:
    assert is_common("Password1234!") and is_common("iloveyou") and is_common("aaaaaaaaaaaa")
    assert not is_common(STRONG)


def test_sign_up_rejects_missing_and_malformed_fields(
    client: FlaskClient, make_user: Callable[..., Any]
) -> None:
    response = _signup(
        client, name="", email="", role="", organisation="", password="", password_confirm=""
    )
    assert response.status_code == 422
    # Every empty field says what to enter, in Tandem's words (not the library's defaults).
    assert _field_errors(response) == [
        "Enter your name, e.g. Ada Lovelace.",
        "Enter your email address, e.g. ada@example.com.",
        "Choose whether you join as an academic or a company member.",
        "Enter your university, institute or company, e.g. Northbridge University.",
        "Choose a password: at least 12 characters, e.g. four unrelated words.",
        "Type your password again.",
    ]
    response = _signup(client, email="grace.example.com", password_confirm=STRONG + "!")
    assert _field_errors(response) == [
        "Enter your whole email address, with an @, e.g. ada@example.com.",
        "The two passwords differ. Type the same password in both fields.",
    ]

    # A taken address is answered as any sign-up: see test_enumeration.py.


def test_a_name_of_invisible_characters_is_no_name(client: FlaskClient) -> None:
    response = _signup(client, name="\u200b\u2060 ", organisation="\ufeff\u200b")
    assert response.status_code == 422
    assert _field_errors(response) == [
        "Enter your name, e.g. Ada Lovelace.",
        "Enter your university, institute or company, e.g. Northbridge University.",
    ]


def _labels(response: Any) -> list[str]:
    """The text of every <label> and <legend> on the page, in order."""
    html = response.get_data(as_text=True)
    found = re.findall(r"<(?:label|legend)\b[^>]*>(.*?)</(?:label|legend)>", html, re.DOTALL)
    return [" ".join(re.sub(r"<[^>]+>", " ", text).split()) for text in found]


def test_account_pages_label_their_fields_in_sentence_case(
    client: FlaskClient, auth: AuthActions, make_user: Callable[..., Any]
) -> None:
    assert _labels(client.get("/login")) == [
        "Email address",
        "Password",
        "Keep me signed in on this device",
    ]
    assert _labels(client.get("/register")) == [
        "Your name",
        "Email address",
        "I am joining as",
        "An academic: I will propose research and look for compute or data",
        "A company member: I will offer compute or data to research projects",
        "Organisation",
        "Password",
        "Retype password",
    ]
    assert _labels(client.get("/reset")) == ["Email address"]
    assert _labels(client.get("/confirm")) == ["Email address"]
    user = make_user()
    auth.login(user.email)
    assert _labels(client.get("/change")) == [
        "Current password",
        "New password",
        "Retype new password",
    ]


def test_the_sign_in_page_offers_one_way_to_reset_a_password(client: FlaskClient) -> None:
    page = client.get("/login").get_data(as_text=True)
    assert page.count('href="/reset"') == 1
    assert page.count("Forgot your password?") == 1


def test_every_missing_field_of_a_password_change_is_named_on_the_first_submit(
    client: FlaskClient, auth: AuthActions, make_user: Callable[..., Any]
) -> None:
    auth.login(make_user().email)
    response = client.post("/change", data={})
    assert response.status_code == 422
    assert _field_errors(response) == [
        "Enter your current password.",
        "Choose a new password: at least 12 characters, e.g. four unrelated words.",
        "Type your new password again.",
    ]
    response = client.post(
        "/change",
        data={
            "password": "not-my-password-9",
            "new_password": STRONG,
            "new_password_confirm": STRONG,
        },
    )
    assert _field_errors(response) == ["That password is not right. Check it and try again."]


def test_nobody_can_sign_up_as_an_administrator(client: FlaskClient, session: Session) -> None:
    response = _signup(client, role="admin")
    assert response.status_code == 422
    assert session.exec(select(User)).all() == []


def test_sign_in_and_out(client: FlaskClient, make_user: Callable[..., Any]) -> None:
    user = make_user()
    assert client.get("/dashboard").headers["Location"].startswith("/login")
    response = client.post("/login", data={"email": user.email.upper(), "password": TEST_PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/dashboard"
    assert client.get("/account").status_code == 200
    client.post("/logout")
    assert client.get("/account").status_code == 302


def test_a_suspended_user_cannot_sign_in(
    client: FlaskClient, session: Session, make_user: Callable[..., Any]
) -> None:
    user = make_user()
    user.active = False
    session.add(user)
    session.commit()
    response = client.post("/login", data={"email": user.email, "password": TEST_PASSWORD})
    assert response.status_code == 422
    assert "suspended" in response.get_data(as_text=True)


def test_administrators_must_set_up_two_factor_sign_in(
    client: FlaskClient, make_user: Callable[..., Any]
) -> None:
    admin = make_user(role=Role.admin)
    response = client.post("/login", data={"email": admin.email, "password": TEST_PASSWORD})
    assert response.status_code == 302 and "/tf-setup" in response.headers["Location"]
    assert client.get("/admin/").status_code != 200


def test_administrators_sign_in_with_their_code(
    client: FlaskClient, auth: AuthActions, make_admin: Callable[..., Any]
) -> None:
    admin = make_admin()
    response = client.post("/login", data={"email": admin.email, "password": TEST_PASSWORD})
    assert "/tf-validate" in response.headers["Location"]
    assert client.get("/admin/").status_code != 200  # password alone is not enough
    response = client.post("/tf-validate", data={"code": "000000"})
    assert response.status_code == 422
    auth.second_factor(admin.email)
    assert client.get("/admin/").status_code == 200


def test_an_authenticator_code_opens_the_account_once(
    client: FlaskClient, app: Flask, make_admin: Callable[..., Any], session: Session
) -> None:
    """A code read over a shoulder (or replayed from a proxy log) is worthless once used."""
    admin = make_admin()
    code = totp_code(app, admin.tf_totp_secret)
    client.post("/login", data={"email": admin.email, "password": TEST_PASSWORD})
    assert client.post("/tf-validate", data={"code": code}).status_code == 302
    client.post("/logout")

    client.post("/login", data={"email": admin.email, "password": TEST_PASSWORD})
    response = client.post("/tf-validate", data={"code": code})
    assert response.status_code == 422
    assert "That code is not right" in response.get_data(as_text=True)
    assert client.get("/admin/").status_code != 200
    session.expire_all()
    last = session.get(User, admin.id).tf_totp_last_counter
    next_code = totp_code(app, admin.tf_totp_secret, after=last)
    assert client.post("/tf-validate", data={"code": next_code}).status_code == 302
    assert client.get("/admin/").status_code == 200


def test_one_code_sent_twice_at_the_same_moment_signs_in_once(
    app: Flask, make_admin: Callable[..., Any]
) -> None:
    """Two sign-ins racing with the same code (real concurrent requests, on SQLite and
    PostgreSQL): exactly one gets in, each time."""
    for trial in range(10):
        admin = make_admin()
        clients = [app.test_client(), app.test_client()]
        for number, client in enumerate(clients):
            # Two devices: each has its own address, so the sign-in limits stay out of it.
            client.environ_base["REMOTE_ADDR"] = f"192.0.2.{2 * trial + number}"
            response = client.post("/login", data={"email": admin.email, "password": TEST_PASSWORD})
            assert "/tf-validate" in response.headers["Location"]
        code = totp_code(app, admin.tf_totp_secret)
        start = threading.Barrier(len(clients))

        def validate(
            client: FlaskClient, start: threading.Barrier = start, code: str = code
        ) -> int:
            start.wait()
            return client.post("/tf-validate", data={"code": code}).status_code

        with ThreadPoolExecutor(max_workers=len(clients)) as pool:
            codes = sorted(pool.map(validate, clients))
        assert codes == [302, 422], f"trial {trial}: {codes}"


def test_sign_in_is_rate_limited_per_account(
    client: FlaskClient, app: Flask, make_user: Callable[..., Any]
) -> None:
    user = make_user()
    for _ in range(5):
        response = client.post("/login", data={"email": user.email, "password": "wrong-guess-1"})
        assert response.status_code == 422
    response = client.post("/login", data={"email": user.email, "password": TEST_PASSWORD})
    assert response.status_code == 429
    # Another account from the same address is not locked out by this one's limit.
    other = make_user()
    response = client.post("/login", data={"email": other.email, "password": TEST_PASSWORD})
    assert response.status_code == 302


def test_sign_in_is_rate_limited_per_address(
    database_url: str, tmp_path: Any, make_user: Callable[..., Any], app: Flask
) -> None:
    users = [make_user() for _ in range(4)]
    app.config["TANDEM_SIGNIN_LIMIT_ADDRESS"] = "3 per minute"
    limited = create_app({**app.config, "TANDEM_SIGNIN_LIMIT_ADDRESS": "3 per minute"})
    client = limited.test_client()
    codes = [
        client.post("/login", data={"email": u.email, "password": "wrong-guess-1"}).status_code
        for u in users
    ]
    assert codes == [422, 422, 422, 429]
    limited.extensions["tandem.engine"].dispose()


def test_forms_are_refused_without_a_csrf_token(app: Flask, make_user: Callable[..., Any]) -> None:
    user = make_user()
    protected = create_app({**app.config, "WTF_CSRF_ENABLED": True})
    client = protected.test_client()
    response = client.post("/login", data={"email": user.email, "password": TEST_PASSWORD})
    assert response.status_code in (400, 422)
    assert client.get("/account").status_code == 302  # not signed in
    AuthActions(client).login_with_form_token(user.email)
    protected.extensions["tandem.engine"].dispose()


@needs_redis
def test_sign_in_limits_are_shared_through_redis(
    app: Flask, client: FlaskClient, make_user: Callable[..., Any]
) -> None:
    """With REDIS_URL set, every web worker counts attempts in the same Redis: a second app
    (another worker) sees the attempts the first one counted."""
    import redis

    user = make_user()
    for _ in range(5):
        client.post("/login", data={"email": user.email, "password": "wrong-guess-1"})
    keys = redis.Redis.from_url(os.environ["REDIS_URL"]).keys(
        f"*{app.config['RATELIMIT_KEY_PREFIX']}*"
    )
    assert keys, "no rate-limit counters in Redis"
    other_worker = create_app(dict(app.config))
    response = other_worker.test_client().post(
        "/login", data={"email": user.email, "password": TEST_PASSWORD}
    )
    assert response.status_code == 429
    other_worker.extensions["tandem.engine"].dispose()


def test_sign_out_ends_the_session_for_a_copied_cookie_too(
    app: Flask, client: FlaskClient, auth: AuthActions, make_user: Callable[..., Any]
) -> None:
    """A session cookie copied before sign-out (another tab, a shared computer, a thief)
    no longer signs anyone in once its owner signed out."""
    make_user(email="ada@nb.example.org")
    client.post(
        "/login", data={"email": "ada@nb.example.org", "password": TEST_PASSWORD, "remember": "y"}
    )
    copy = app.test_client()
    for name in ("session", "remember_token"):
        cookie = client.get_cookie(name)
        if cookie is not None:
            copy.set_cookie(name, cookie.value)
    assert copy.get("/account").status_code == 200, "the copied cookie works before"
    auth.logout()
    response = copy.get("/account")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
