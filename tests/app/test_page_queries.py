"""Every main page reads what it shows with a number of SQL statements that does not grow with
the catalogue: no N+1 queries, no per-view pass over every proposal or offer.

One database holds a small synthetic catalogue (a few proposals, fewer than one page or one
top-k) and then a larger one (more than a page and a top-k everywhere); each page is rendered
at both sizes, anonymously and as the academic, the company member and the administrator who
own some of the items, and the statements sent to the database are counted."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, col, select

from app.services import recommendations
from app.services.synthetic import CatalogueSize, build_catalogue
from matching import StandInEncoder
from models import Match, MatchStatus, Offer, OrganisationKind, Proposal, Role
from tests.conftest import AuthActions

K = 5
SMALL = CatalogueSize(proposals=3, offers=2, publications_per_academic=1, seed=1)
MORE = CatalogueSize(proposals=40, offers=14, publications_per_academic=3, seed=2)


@contextmanager
def counted(app: Flask) -> Iterator[list[str]]:
    """The SQL statements sent while the block runs."""
    statements: list[str] = []
    engine = app.extensions["tandem.engine"]

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def _grow(app: Flask, session: Session, encoder: StandInEncoder, size: CatalogueSize) -> None:
    build_catalogue(session=session, size=size, encoder=encoder, k=K)
    recommendations.recompute_all(session=session, encoder=encoder, k=K)
    session.commit()


def _introduce_first_matches(session: Session, proposal_ids: list[int]) -> None:
    """One introduced match per proposal of ours (contact details shown on both sides)."""
    for proposal_id in proposal_ids:
        match = session.exec(
            select(Match)
            .where(Match.proposal_id == proposal_id, col(Match.rank_for_proposal).is_not(None))
            .order_by(col(Match.rank_for_proposal))
        ).first()
        if match is not None:
            match.status = MatchStatus.introduced
            session.add(match)
    session.commit()


def _pages(session: Session, ours: dict[str, Any]) -> dict[str, tuple[str, list[str]]]:
    """Who sees which pages: role -> [paths]."""
    area = session.get(Proposal, ours["proposals"][0]).research_areas[0]
    public = [
        "/",
        "/proposals/",
        f"/proposals/?area={area}",
        "/offers/",
        f"/offers/{ours['offers'][0]}",
        f"/proposals/{ours['proposals'][0]}",
        "/search/?q=learning+models",
        "/search/?q=",
        "/search/?q=&kind=proposals&area=" + area,
    ]
    return {
        "anonymous": public,
        "academic": [
            "/proposals/mine",
            "/proposals/mine?page=2",
            f"/proposals/{ours['proposals'][0]}",
            f"/offers/{ours['offers'][0]}",
            "/search/?q=learning+models",
        ],
        "company": [
            "/offers/mine",
            "/offers/mine?page=2",
            f"/offers/{ours['offers'][0]}",
            f"/proposals/{ours['proposals'][0]}",
        ],
        "admin": [
            "/admin/",
            "/admin/organisations",
            "/admin/users",
            "/admin/content",
            "/admin/content?kind=offers",
            "/admin/rounds",
            "/admin/partners",
            "/admin/metrics",
        ],
    }


def _count_pages(
    app: Flask, client: FlaskClient, auth: AuthActions, pages: dict[str, list[str]], ours: dict
) -> dict[tuple[str, str], list[str]]:
    """The statements each page sent, by (role, path), on its second view."""
    counts: dict[tuple[str, str], list[str]] = {}
    for role, paths in pages.items():
        if role != "anonymous":
            auth.login(ours["emails"][role])
        for path in paths:
            client.get(path)  # a first view may fill caches (embeddings of searched texts)
            with counted(app) as statements:
                response = client.get(path)
            assert response.status_code == 200, (role, path, response.status_code)
            counts[(role, path)] = list(statements)
        if role != "anonymous":
            auth.logout()
    return counts


def test_main_pages_send_as_many_statements_whatever_the_catalogue_size(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_user: Callable[..., Any],
    make_admin: Callable[..., Any],
    make_proposal: Callable[..., Any],
    make_offer: Callable[..., Any],
    make_organisation: Callable[..., Any],
) -> None:
    # What rendering a page costs: the cache of anonymous pages (app/pagecache.py, tested in
    # tests/app/test_pagecache.py) would answer the second view with one statement.
    app.config["TANDEM_PAGE_CACHE_SECONDS"] = 0
    encoder = StandInEncoder()
    app.extensions["tandem.encoder"] = encoder
    academic = make_user(role=Role.academic)
    company = make_organisation(kind=OrganisationKind.company)
    member = make_user(role=Role.company, organisation_id=company.id)
    admin = make_admin()
    proposals = [
        make_proposal(
            author_id=academic.id,
            title=f"Learning models of grid batteries, part {n}",
            research_areas=["machine learning", "energy"],
            gpu_hours_needed=200,
        ).id
        for n in (1, 2)
    ]
    offers = [
        make_offer(
            organisation_id=company.id,
            title=f"GPU hours for learning models, batch {n}",
            max_projects=50,
            gpu_hours_budget=100_000,
        ).id
        for n in (1, 2)
    ]
    ours = {
        "proposals": proposals,
        "offers": offers,
        "emails": {"academic": academic.email, "company": member.email, "admin": admin.email},
    }
    pages = _pages(session, ours)

    _grow(app, session, encoder, SMALL)
    _introduce_first_matches(session, proposals)
    small = _count_pages(app, client, auth, pages, ours)
    shown_small = len(session.exec(select(Match).where(Match.offer_id == offers[0])).all())

    # The dashboards show one page of what a person owns: at the larger size the academic and
    # the company own more than a page (five), each proposal with an introduction.
    proposals += [
        make_proposal(
            author_id=academic.id,
            title=f"Learning models of grid batteries, part {n}",
            research_areas=["machine learning", "energy"],
            gpu_hours_needed=200,
        ).id
        for n in range(3, 10)
    ]
    offers += [
        make_offer(
            organisation_id=company.id,
            title=f"GPU hours for learning models, batch {n}",
            max_projects=50,
            gpu_hours_budget=100_000,
        ).id
        for n in range(3, 10)
    ]
    _grow(app, session, encoder, MORE)
    _introduce_first_matches(session, proposals)
    large = _count_pages(app, client, auth, pages, ours)
    shown_large = len(session.exec(select(Match).where(Match.offer_id == offers[0])).all())

    # The larger catalogue does show more: more matches, listings past one page.
    assert shown_large > shown_small
    assert session.exec(select(sa.func.count()).select_from(Offer)).one() > 10
    grown = {
        page: (len(small[page]), len(large[page]))
        for page in small
        if len(small[page]) != len(large[page])
    }
    statements = {page: [" ".join(st.split())[:300] for st in large[page]] for page in grown}
    assert not grown, f"statements (small, large) per page that grew: {grown}; {statements}"
