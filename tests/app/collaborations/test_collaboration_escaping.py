"""Words one side types on a collaboration record (why it ended, the result's link) are shown
to the other side and to administrators, on the record's history and in the HTML mail: as
text, never as markup."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from models import Collaboration
from tests.conftest import AuthActions

SCRIPT = "<script>alert(document.cookie)</script>"


def _html_mails_to(app: Flask, address: str) -> list[str]:
    found = []
    for path in sorted(Path(app.config["TANDEM_MAIL_DIR"]).glob("*.eml")):
        mail = message_from_bytes(path.read_bytes(), policy=policy.default)
        if mail["To"].addresses[0].addr_spec == address:
            found.append(mail.get_body(("html",)).get_content())
    return found


def test_typed_words_reach_the_history_and_the_html_mail_as_text(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    pair: dict[str, Any],
    make_admin: Any,
) -> None:
    match = pair["match"]
    for side in ("academic", "member"):
        auth.login(pair[side].email)
        client.post(f"/matches/{match.id}/interest")
        auth.logout()
    record = session.exec(select(Collaboration).where(Collaboration.match_id == match.id)).one()
    auth.login(pair["member"].email)
    typed = f"数据不足 🚀 {SCRIPT} & <b>more</b>"
    response = client.post(
        f"/collaborations/{record.id}",
        data={"stage": "ended_without_result", "end_reason": "other", "end_reason_text": typed},
    )
    assert response.status_code == 302
    auth.logout()

    auth.login(make_admin(email="root@example.org").email)
    page = client.get(f"/collaborations/{record.id}").get_data(as_text=True)
    assert SCRIPT not in page and "<b>more</b>" not in page
    assert page.count("数据不足 🚀 &lt;script&gt;alert(document.cookie)&lt;/script&gt; &amp;") == 2

    mails = _html_mails_to(app, pair["academic"].email)
    told = [m for m in mails if "数据不足" in m]
    assert told, "the academic is told of the change"
    assert all(SCRIPT not in m and "<b>more</b>" not in m for m in told)
    assert "&lt;script&gt;alert(document.cookie)&lt;/script&gt;" in told[-1]
