"""Sign-up addresses Tandem can actually mail (issue 12, finding 14): an address with
non-ASCII letters before the @ is refused at the field; an internationalised domain is stored
in its ASCII form, so the confirmation mail is written and the account can be confirmed."""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from app import mail
from models import Notification, User

STRONG = "orchid-tractor-meadow-91"


def _signup(client: FlaskClient, email: str) -> Any:
    return client.post(
        "/register",
        data={
            "name": "Grace Hopper",
            "email": email,
            "role": "academic",
            "organisation": "Brightlab Institute",
            "password": STRONG,
            "password_confirm": STRONG,
        },
    )


def _field_errors(response: Any) -> list[str]:
    return re.findall(r'<p class="field-error">([^<]*)</p>', response.get_data(as_text=True))


@pytest.mark.parametrize(
    "typed", ["ünï@exämple.com", "grâce@example.com", "δοκιμή@παράδειγμα.δοκιμή"]
)
def test_sign_up_refuses_an_address_with_non_ascii_letters_before_the_at(
    client: FlaskClient, session: Session, typed: str
) -> None:
    response = _signup(client, typed)
    assert response.status_code == 422
    assert _field_errors(response) == [
        "Tandem cannot send mail to an address with accents or non-Latin letters before the "
        "@. Please use another address, e.g. ada@example.com."
    ]
    assert f'value="{typed}"' in response.get_data(as_text=True), "what was typed is kept"
    assert session.exec(select(User)).all() == []
    assert session.exec(select(Notification)).all() == []


def test_an_internationalised_domain_is_stored_in_ascii_and_its_confirmation_mail_sent(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    response = _signup(client, "Grace@Exämple.com")
    assert response.status_code == 302, _field_errors(response)
    (row,) = session.exec(select(Notification)).all()
    assert row.status.value == "sent", row.last_error
    assert row.recipient_email == "grace@xn--exmple-cua.com"
    user = session.exec(select(User)).one()
    assert user.email == "grace@xn--exmple-cua.com"
    with app.app_context():
        assert bytes(mail.message_for(row)), "app/mail.py builds and encodes the message"
    (written,) = Path(app.config["TANDEM_MAIL_DIR"]).glob("*.eml")
    message = BytesParser(policy=policy.default).parsebytes(written.read_bytes())
    assert message["To"].addresses[0].addr_spec == "grace@xn--exmple-cua.com"
    body = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    link = re.search(r"http://127\.0\.0\.1:5000(/confirm/\S+)", body)
    assert link, body

    assert client.get(link.group(1)).status_code == 302
    session.expire_all()
    assert session.get(User, user.id).confirmed_at is not None
    # Typed either way, the domain signs in to the one account.
    for typed in ("grace@exämple.com", "GRACE@xn--exmple-cua.com"):
        response = client.post("/login", data={"email": typed, "password": STRONG})
        assert response.status_code == 302, _field_errors(response)
        client.post("/logout")
