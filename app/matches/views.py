"""Match actions (POST only; each redirects back to the page it came from)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("matches", __name__, url_prefix="/matches")
