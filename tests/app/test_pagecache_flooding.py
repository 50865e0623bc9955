"""The page cache keeps a page per address: if any made-up query parameter made a new
entry, one visitor could fill Redis (shared with the job queue and the rate limits) with
copies of the same page, 300 s each, as fast as the server renders. Only the parameters a
page reads, once each, with whole numbers written plainly, make a page that is kept."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from app.pagecache import RedisPages
from models import Role
from tests.conftest import needs_redis

CACHE = "X-Tandem-Page-Cache"


@pytest.fixture
def ids(
    make_user: Callable[..., Any], make_proposal: Callable[..., Any], make_offer: Callable[..., Any]
) -> dict[str, int]:
    author = make_user(role=Role.academic)
    return {
        "proposal": make_proposal(author_id=author.id).id,
        "offer": make_offer().id,
    }


def _twice(app: Flask, path: str) -> tuple[Any, Any]:
    return app.test_client().get(path), app.test_client().get(path)


@pytest.mark.parametrize(
    "path",
    [
        "/?utm_source={junk}",
        "/proposals/?page=1&x={junk}",
        "/proposals/{proposal}?ref={junk}",
        "/offers/{offer}?{junk}=1",
        "/offers/?page=0001",
        "/offers/?page=1&page=2",
        "/search/?q=rivers&nonsense={junk}",
    ],
)
def test_made_up_or_repeated_parameters_are_answered_but_never_kept(
    app: Flask, ids: dict[str, int], path: str
) -> None:
    address = path.format(junk=uuid.uuid4().hex, **ids)
    first, second = _twice(app, address)
    assert (first.status_code, second.status_code) == (200, 200), address
    assert second.headers.get(CACHE) != "hit", address
    assert first.get_data() == second.get_data()


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/proposals/?page=1",
        "/proposals/?area=vision",
        "/offers/?kind=compute&page=1",
        "/proposals/{proposal}",
        "/search/?q=rivers&type=proposals&page=1",
    ],
)
def test_the_addresses_the_pages_link_to_are_still_kept(
    app: Flask, ids: dict[str, int], path: str
) -> None:
    address = path.format(**ids)
    first, second = _twice(app, address)
    assert (first.headers[CACHE], second.headers[CACHE]) == ("miss", "hit"), address


@needs_redis
def test_redis_keeps_at_most_its_share_of_new_pages_per_window(page_namespace: str) -> None:
    """Free-text parameters (a search's words) make endless addresses: past `entries` new
    pages in a page's lifetime, Redis keeps no more of them (the process still does)."""
    pages = RedisPages(os.environ["REDIS_URL"], entries=3, namespace=page_namespace)
    keys = [f"{page_namespace}:{n}" for n in range(10)]
    for key in keys:
        pages.put(key, b"<html>page</html>", 300)
    kept = [key for key in keys if pages.client.exists(key)]
    assert len(kept) == 3
    # Past the share, the process still serves the pages it kept itself (its own LRU).
    assert all(pages.get(key) == b"<html>page</html>" for key in keys[-3:])
