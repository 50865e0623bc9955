"""Partner webhooks against a real HTTP server on 127.0.0.1: registration through the API,
signed deliveries written with the event, retries, permanent failures, private addresses."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from app import notify
from app.services import partners, webhooks
from models import Webhook, WebhookDelivery, utcnow
from tests.conftest import AuthActions


@dataclass
class Endpoint:
    """A partner's endpoint: answers with the scripted statuses first, then 200."""

    replies: list[int] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    state = Endpoint()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append({"headers": dict(self.headers), "body": body})
            self.send_response(state.replies.pop(0) if state.replies else 200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_port}/tandem/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def _token(session: Session, *scopes: str) -> str:
    created = partners.create_token(session=session, name="Funder", scopes=scopes)
    session.commit()
    return created.secret


def _register(client: FlaskClient, token: str, **body: Any) -> Any:
    return client.post("/api/v1/webhooks", json=body, headers={"Authorization": f"Bearer {token}"})


def _deliver(app: Flask) -> notify.DeliveryReport:
    with app.app_context():
        return notify.deliver()


def _make_due(session: Session) -> None:
    session.expire_all()
    for delivery in session.exec(select(WebhookDelivery)):
        delivery.next_attempt_at = utcnow()
        session.add(delivery)
    session.commit()


def _introduce(client: FlaskClient, auth: AuthActions, pair: dict[str, Any]) -> None:
    match = pair["match"]
    auth.login(pair["academic"].email)
    client.post(f"/matches/{match.id}/interest")
    auth.logout()
    auth.login(pair["member"].email)
    client.post(f"/matches/{match.id}/interest")
    auth.logout()


def test_registration_checks_scope_url_events_and_fields(
    app: Flask, client: FlaskClient, session: Session, endpoint: Endpoint
) -> None:
    token = _token(session, "matches", "webhooks")
    reader = _token(session, "matches")
    headers = {"Authorization": f"Bearer {token}"}
    refused = _register(client, reader, url=endpoint.url, events=["match.introduced"])
    assert refused.status_code == 403
    for body, field_name in [
        ({"url": "ftp://x.example.org", "events": ["match.introduced"]}, "url"),
        ({"url": "https://a..example.org/x", "events": ["match.introduced"]}, "url"),
        ({"url": f"https://{'a' * 64}.example.org/", "events": ["match.introduced"]}, "url"),
        ({"url": endpoint.url, "events": ["round.published"]}, "events"),  # no allocations scope
        ({"url": endpoint.url, "events": ["everything"]}, "events"),
        ({"url": endpoint.url, "events": ["match.introduced"], "colour": "blue"}, "colour"),
        ({"url": endpoint.url, "events": "match.introduced"}, "events"),  # strict: not a list
    ]:
        response = _register(client, token, **body)
        assert response.status_code == 400, body
        assert response.mimetype == "application/problem+json"
        assert field_name in response.get_json()["errors"], response.get_json()
    assert session.exec(select(Webhook)).all() == []

    created = _register(client, token, url=endpoint.url, events=["match.introduced"])
    assert created.status_code == 201
    body = created.get_json()
    again = _register(client, token, url=endpoint.url, events=["match.introduced"]).get_json()
    assert again["secret"] != body["secret"], "each webhook has its own random secret"
    client.delete(f"/api/v1/webhooks/{again['id']}", headers=headers)
    assert body["url"] == endpoint.url and len(body["secret"]) == 64
    listing = client.get("/api/v1/webhooks", headers=headers).get_json()
    assert [h["id"] for h in listing["items"]] == [body["id"]]
    assert "secret" not in listing["items"][0], "shown once"

    other = _token(session, "matches", "webhooks")
    gone = client.delete(
        f"/api/v1/webhooks/{body['id']}", headers={"Authorization": f"Bearer {other}"}
    )
    assert gone.status_code == 404, "another partner's webhook is not found"
    assert client.delete(f"/api/v1/webhooks/{body['id']}", headers=headers).status_code == 204
    assert client.get("/api/v1/webhooks", headers=headers).get_json()["items"] == []


def test_an_introduction_is_delivered_signed_once_through_a_server_error(
    app: Flask,
    client: FlaskClient,
    session: Session,
    auth: AuthActions,
    pair: dict[str, Any],
    endpoint: Endpoint,
) -> None:
    token = _token(session, "matches", "webhooks")
    secret = _register(client, token, url=endpoint.url, events=["match.introduced"]).get_json()[
        "secret"
    ]
    endpoint.replies = [500]
    _introduce(client, auth, pair)  # the delivery runs after the commit, and gets a 500
    (delivery,) = session.exec(select(WebhookDelivery)).all()
    assert delivery.status.value == "pending" and delivery.attempts == 1
    assert "HTTP 500" in delivery.last_error
    _make_due(session)
    assert _deliver(app).webhooks_sent == 1
    _make_due(session)
    assert _deliver(app).webhooks_sent == 0, "delivered once"

    first, second = endpoint.received
    assert first["headers"]["Tandem-Delivery"] == second["headers"]["Tandem-Delivery"]
    signature = dict(
        part.split("=", 1) for part in second["headers"]["Tandem-Signature"].split(",")
    )
    expected = hmac.new(
        secret.encode(), f"{signature['t']}.".encode() + second["body"], hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(signature["v1"], expected)
    payload = json.loads(second["body"])
    assert payload["event"] == "match.introduced"
    assert payload["data"]["id"] == pair["match"].id and payload["data"]["status"] == "introduced"
    assert payload["data"]["academic"] is None, "no contact details in notifications"


def test_refusals_are_final_and_gone_removes_the_webhook(
    app: Flask,
    client: FlaskClient,
    session: Session,
    auth: AuthActions,
    pair: dict[str, Any],
    endpoint: Endpoint,
) -> None:
    token = _token(session, "matches", "webhooks")
    _register(client, token, url=endpoint.url, events=["match.introduced"])
    endpoint.replies = [410]
    _introduce(client, auth, pair)
    (delivery,) = session.exec(select(WebhookDelivery)).all()
    assert delivery.status.value == "failed" and "410" in delivery.last_error
    _make_due(session)
    _deliver(app)
    assert len(endpoint.received) == 1, "a refusal is not retried"
    session.expire_all()
    assert session.exec(select(Webhook)).one().disabled_at is not None


def test_private_addresses_are_refused_outside_development(
    app: Flask,
    client: FlaskClient,
    session: Session,
    auth: AuthActions,
    pair: dict[str, Any],
    endpoint: Endpoint,
) -> None:
    token = _token(session, "matches", "webhooks")
    _register(client, token, url=endpoint.url, events=["match.introduced"])
    app.config["TANDEM_WEBHOOKS_ALLOW_PRIVATE"] = False
    _introduce(client, auth, pair)
    (delivery,) = session.exec(select(WebhookDelivery)).all()
    assert delivery.status.value == "failed" and "private address" in delivery.last_error
    assert endpoint.received == []


# Literal addresses in private networks, in forms the resolver reads (the last four are
# 127.0.0.1 as one decimal number, hex and octal parts, and with parts left out).
PRIVATE_LITERALS = [
    "https://10.0.0.5/hook",
    "https://127.0.0.1/",
    "https://[::1]/",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::ffff:127.0.0.1]/",
    "https://192.168.1.20:8443/hooks",
    "https://2130706433/",
    "https://0x7f.1/",
    "https://0177.0.0.1/",
    "https://127.1/",
]


def test_literal_private_addresses_are_refused_at_registration_outside_development(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    app.config["TANDEM_WEBHOOKS_ALLOW_PRIVATE"] = False
    token = _token(session, "matches", "webhooks")
    spec = client.get("/api/v1/openapi.json").get_json()
    pattern = spec["components"]["schemas"]["WebhookIn"]["properties"]["url"]["pattern"]
    refused = [
        *((url, "is a private address") for url in PRIVATE_LITERALS),
        ("https://8.8.8.8/hook", "host name, not an IP address"),
        ("http://funder.example.org/hook", "Use https://"),
        ("https://funder.example.org:0/hook", "port from 1 to 65535"),
        ("https://funder.example.org/\u00e9t\u00e9", "in ASCII"),
    ]
    for url, message in refused:
        response = _register(client, token, url=url, events=["match.introduced"])
        assert response.status_code == 400, (url, response.get_json())
        assert response.mimetype == "application/problem+json"
        (said,) = response.get_json()["errors"]["url"]
        assert message in said, (url, said)
        assert not re.fullmatch(pattern, url), f"the document refuses {url} too"
    assert session.exec(select(Webhook)).all() == []

    # A host name is taken: what it resolves to is checked at each delivery (DNS changes).
    url = "https://funder.example.org:8443/tandem/hooks?v=1"
    assert re.fullmatch(pattern, url)
    assert _register(client, token, url=url, events=["match.introduced"]).status_code == 201

    app.config["TANDEM_WEBHOOKS_ALLOW_PRIVATE"] = True  # development: a receiver on this machine
    local = _register(client, token, url="http://10.0.0.5/hook", events=["match.introduced"])
    assert local.status_code == 201


@pytest.mark.parametrize(
    ("address", "private"),
    [
        ("8.8.8.8", False),
        ("2001:4860:4860::8888", False),
        ("10.0.0.5", True),
        ("::ffff:10.0.0.5", True),
        ("64:ff9b::7f00:1", True),  # NAT64 of 127.0.0.1
        ("2002:a9fe:a9fe::1", True),  # 6to4 of 169.254.169.254
        ("fe80::1%eth0", True),
    ],
)
def test_private_addresses_include_ipv4_carried_in_ipv6(address: str, private: bool) -> None:
    assert webhooks.private_address(address) is private


def test_one_broken_endpoint_does_not_hold_up_the_others(
    app: Flask,
    client: FlaskClient,
    session: Session,
    auth: AuthActions,
    pair: dict[str, Any],
    endpoint: Endpoint,
) -> None:
    # A server that answers with something that is not HTTP at all.
    broken = socket.socket()
    broken.bind(("127.0.0.1", 0))
    broken.listen()

    def babble() -> None:
        connection, _ = broken.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HELLO\r\n\r\n")

    thread = threading.Thread(target=babble, daemon=True)
    thread.start()
    token = _token(session, "matches", "webhooks")
    broken_url = f"http://127.0.0.1:{broken.getsockname()[1]}/hooks"
    _register(client, token, url=broken_url, events=["match.introduced"])
    _register(client, token, url=endpoint.url, events=["match.introduced"])
    _introduce(client, auth, pair)
    thread.join(timeout=10)
    broken.close()
    statuses = {
        d.webhook_id: (d.status.value, d.last_error) for d in session.exec(select(WebhookDelivery))
    }
    assert len(endpoint.received) == 1, "the working endpoint got its notification"
    assert sorted(state for state, _ in statuses.values()) == ["pending", "sent"]
    assert any("BadStatusLine" in error for _, error in statuses.values())


def test_a_sender_holds_only_the_delivery_it_is_sending(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    """A sender that dies mid-delivery must leave the rest to the next sender at once: while
    it waits on one endpoint, every other delivery is still pending."""
    arrived, release = threading.Event(), threading.Event()

    class Stalling(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            arrived.set()
            release.wait(timeout=60)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Stalling)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    token = _token(session, "matches", "webhooks")
    for number in range(3):
        url = f"http://127.0.0.1:{server.server_port}/hooks/{number}"
        assert _register(client, token, url=url, events=["match.introduced"]).status_code == 201
    written = webhooks.enqueue(
        session=session, event="match.introduced", key="match-1", payload={"id": 1}
    )
    session.commit()
    assert written == 3
    sender = threading.Thread(target=_deliver, args=(app,))
    sender.start()
    try:
        assert arrived.wait(timeout=30), "the sender reached the endpoint"
        session.expire_all()
        states = sorted(d.status.value for d in session.exec(select(WebhookDelivery)))
        assert states == ["pending", "pending", "sending"]
    finally:
        release.set()
        sender.join(timeout=60)
        server.shutdown()
        server.server_close()
    session.expire_all()
    assert [d.status.value for d in session.exec(select(WebhookDelivery))] == ["sent"] * 3
