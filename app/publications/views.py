"""Publication pages of the signed-in academic."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("publications", __name__, url_prefix="/publications")
