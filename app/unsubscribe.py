"""Signed one-click unsubscribe links: no sign-in needed, and nobody can forge one."""

from __future__ import annotations

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

SALT = "tandem-unsubscribe"


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def token_for(user_id: int, email: str) -> str:
    """Bound to the user and their current address: a changed address voids old links."""
    return _serializer().dumps({"user": user_id, "email": email.lower()})


def read_token(token: str) -> tuple[int, str] | None:
    try:
        data = _serializer().loads(token)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("user"), int):
        return None
    return data["user"], str(data.get("email", ""))


def url_for_user(user_id: int, email: str) -> str:
    base = current_app.config["TANDEM_BASE_URL"].rstrip("/")
    return f"{base}/unsubscribe/{token_for(user_id, email)}"
