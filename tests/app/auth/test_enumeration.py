"""The account pages anyone can use tell nobody which addresses have accounts: sign-in,
password reset, resend confirmation and sign-up answer an address with an account and one
without the same way, and mails asked for on these pages are limited per address."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from app import create_app
from models import Notification, User
from tests.conftest import TEST_PASSWORD

STRONG = "orchid-tractor-meadow-91"


def _page(response: Any, typed: str) -> str:
    """The page as the person sees it, with the address they typed taken out."""
    html = response.get_data(as_text=True).replace(typed, "TYPED")
    return re.sub(r'name="csrf_token" type="hidden" value="[^"]*"', "", html)


def _field_errors(response: Any) -> list[str]:
    return re.findall(r'<p class="field-error">([^<]*)</p>', response.get_data(as_text=True))


def _mails_to(session: Session, email: str) -> list[Notification]:
    session.expire_all()
    return list(session.exec(select(Notification).where(Notification.recipient_email == email)))


def test_sign_in_answers_an_unknown_address_as_a_wrong_password(
    client: FlaskClient, make_user: Callable[..., Any]
) -> None:
    user = make_user(email="known@nb.example.org")
    wrong = client.post("/login", data={"email": user.email, "password": "wrong-guess-12"})
    unknown = client.post(
        "/login", data={"email": "nobody@nb.example.org", "password": "wrong-guess-12"}
    )
    assert wrong.status_code == unknown.status_code == 422
    assert _page(wrong, user.email) == _page(unknown, "nobody@nb.example.org")
    assert "do not match a Tandem account" in wrong.get_data(as_text=True)
    assert _field_errors(wrong) == []

    # What is wrong with what was typed is still said at its field.
    empty = client.post("/login", data={"email": "", "password": ""})
    assert _field_errors(empty) == [
        "Enter your email address, e.g. ada@example.com.",
        "Enter your password.",
    ]
    assert "do not match" not in empty.get_data(as_text=True)
    malformed = client.post("/login", data={"email": "nb.example.org", "password": "x" * 12})
    assert _field_errors(malformed)[0].startswith("Enter your whole email address")


def test_password_reset_answers_every_address_the_same_and_mails_only_accounts(
    client: FlaskClient, session: Session, make_user: Callable[..., Any]
) -> None:
    user = make_user(email="known@nb.example.org")
    known = client.post("/reset", data={"email": user.email})
    unknown = client.post("/reset", data={"email": "nobody@nb.example.org"})
    assert known.status_code == unknown.status_code == 200
    assert _page(known, user.email) == _page(unknown, "nobody@nb.example.org")
    assert "If TYPED has a Tandem account, we sent it a link" in _page(known, user.email)
    assert [m.subject for m in _mails_to(session, user.email)] == ["Reset your Tandem password"]
    assert _mails_to(session, "nobody@nb.example.org") == []

    empty = client.post("/reset", data={"email": ""})
    assert empty.status_code == 422
    assert _field_errors(empty) == ["Enter your email address, e.g. ada@example.com."]
    assert "we sent" not in empty.get_data(as_text=True)


def test_resend_confirmation_answers_every_address_the_same(
    client: FlaskClient, session: Session, make_user: Callable[..., Any]
) -> None:
    waiting = make_user(email="waiting@nb.example.org", confirmed_at=None)
    confirmed = make_user(email="confirmed@nb.example.org")
    pages = {}
    for email in (waiting.email, confirmed.email, "nobody@nb.example.org"):
        response = client.post("/confirm", data={"email": email})
        assert response.status_code == 200, email
        pages[email] = _page(response, email)
    assert len(set(pages.values())) == 1
    assert len(_mails_to(session, waiting.email)) == 1
    assert _mails_to(session, confirmed.email) == []
    assert _mails_to(session, "nobody@nb.example.org") == []


def test_sign_up_with_a_taken_address_looks_like_any_sign_up_and_mails_its_owner(
    client: FlaskClient, session: Session, make_user: Callable[..., Any]
) -> None:
    owner = make_user(email="taken@nb.example.org")
    form = {
        "name": "Grace Hopper",
        "role": "academic",
        "organisation": "Northbridge University",
        "password": STRONG,
        "password_confirm": STRONG,
    }
    taken = client.post("/register", data={**form, "email": owner.email.upper()})
    new = client.post("/register", data={**form, "email": "new@nb.example.org"})
    assert taken.status_code == new.status_code == 302
    assert taken.headers["Location"] == new.headers["Location"]
    users = session.exec(select(User).where(User.email == owner.email)).all()
    assert [u.name for u in users] == [owner.name], "the account is left as it was"
    mails = _mails_to(session, owner.email)
    assert [m.subject for m in mails] == [
        "Your Tandem account: someone tried to sign up with your address"
    ]
    assert "already has a Tandem account" in mails[0].text_body
    assert "/reset/" in mails[0].text_body


def test_mails_asked_for_on_the_account_pages_are_limited_per_address(
    app: Flask, session: Session, make_user: Callable[..., Any]
) -> None:
    """15 requests for a confirmation mail write 3 mails; unknown addresses are limited
    the same way, so the limit tells nothing either; typing mistakes cost nothing."""
    limited = create_app({**app.config, "TANDEM_ACCOUNT_MAIL_LIMIT": "3 per hour"})
    limited.extensions["tandem.encoder"] = app.extensions["tandem.encoder"]
    client = limited.test_client()
    waiting = make_user(email="waiting@nb.example.org", confirmed_at=None)
    for _ in range(3):
        assert client.post("/reset", data={"email": ""}).status_code == 422
    codes = {
        email: [client.post("/confirm", data={"email": email}).status_code for _ in range(15)]
        for email in (waiting.email, "nobody@nb.example.org")
    }
    assert codes[waiting.email] == codes["nobody@nb.example.org"] == [200] * 3 + [429] * 12
    assert len(_mails_to(session, waiting.email)) == 3
    assert client.post("/reset", data={"email": waiting.email}).status_code == 429
    limited.extensions["tandem.engine"].dispose()


def test_no_bearer_token_is_handed_out_by_the_account_pages(
    client: FlaskClient, make_user: Callable[..., Any]
) -> None:
    user = make_user(email="ada@nb.example.org")
    as_json = client.post(
        "/login?include_auth_token",
        json={"email": user.email, "password": TEST_PASSWORD},
    )
    assert as_json.status_code == 415
    assert "authentication_token" not in as_json.get_data(as_text=True)
    asking_for_json = client.post(
        "/login?include_auth_token",
        data={"email": user.email, "password": TEST_PASSWORD},
        headers={"Accept": "application/json"},
    )
    assert asking_for_json.status_code == 302
    assert "authentication_token" not in asking_for_json.get_data(as_text=True)
