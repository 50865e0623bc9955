"""How many new searches one person may run.

A search for words not searched recently makes the model embed the query on the CPU that
serves every page, so new queries are counted per person: per account when signed in, per
client address otherwise (`TANDEM_SEARCH_LIMIT_SIGNED_IN`, `TANDEM_SEARCH_LIMIT_ANONYMOUS`,
Flask-Limiter syntax). Browsing, filters, the next page of results and a query searched
again cost nothing and are never limited. The counts live where sign-in limits live (Redis
when `REDIS_URL` is set), so they hold across processes.
"""

from __future__ import annotations

import math
import time

from flask import current_app
from flask_limiter.util import get_remote_address
from flask_security import current_user
from limits import parse_many

from app.auth import limiter


class SearchLimited(Exception):
    """Too many new searches: wait `wait` seconds."""

    def __init__(self, wait: int) -> None:
        super().__init__(f"wait {wait} s")
        self.wait = wait


def admit(query: str) -> None:
    """Count a search whose words the model is about to embed (`search.search` asks just
    before embedding), or raise `SearchLimited` with the seconds to wait when this person has
    run too many lately."""
    if not query:
        return
    if current_user.is_authenticated:
        key, setting = f"user:{current_user.id}", "TANDEM_SEARCH_LIMIT_SIGNED_IN"
    else:
        key, setting = f"address:{get_remote_address()}", "TANDEM_SEARCH_LIMIT_ANONYMOUS"
    strategy = limiter().limiter
    names = (current_app.config["RATELIMIT_KEY_PREFIX"], "search", key)
    items = parse_many(current_app.config[setting])
    full = [item for item in items if not strategy.test(item, *names)]
    if full:
        reset = max(strategy.get_window_stats(item, *names).reset_time for item in full)
        raise SearchLimited(max(1, math.ceil(reset - time.time())))
    for item in items:
        strategy.hit(item, *names)
