"""Guards every route shares: local redirects only, bounded ids, no control characters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from pydantic import ValidationError
from sqlmodel import Session, select

from app.web import local_path
from models import ProposalCreate, Publication, User
from tests.conftest import AuthActions


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example.com/",
        "//evil.example.com/x",
        "/\t/evil.example.com",
        "/\n/evil.example.com",
        "/\\evil.example.com",
        " /proposals/mine",
        "proposals/mine",
        "",
        None,
    ],
)
def test_only_paths_on_this_site_are_followed(target: str | None) -> None:
    assert local_path(target) is None


def test_a_local_path_is_kept() -> None:
    assert local_path("/proposals/mine?page=2#p-3") == "/proposals/mine?page=2#p-3"


def test_a_crafted_next_never_leaves_the_site_or_fails(
    client: FlaskClient, auth: AuthActions, make_user: Callable[..., Any], make_proposal: Any
) -> None:
    user = make_user()
    proposal = make_proposal(author_id=user.id)
    auth.login(user.email)
    for target in ("/\t/evil.example.com", "/\nx", "//evil.example.com"):
        response = client.post(f"/proposals/{proposal.id}/close", data={"next": target})
        assert response.status_code in (302, 303)
        assert not response.headers["Location"].startswith("//")
        assert "evil" not in response.headers["Location"]


@pytest.mark.parametrize(
    "path", ["/proposals/99999999999999999999999", "/offers/2147483648", "/proposals/-1"]
)
def test_out_of_range_ids_are_not_found(client: FlaskClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_out_of_range_ids_in_actions_are_not_found(
    client: FlaskClient, auth: AuthActions, make_user: Callable[..., Any]
) -> None:
    auth.login(make_user().email)
    assert client.post("/matches/2147483648/interest").status_code == 404
    assert client.post("/publications/99999999999999/delete").status_code == 404


def test_control_characters_are_refused_and_nothing_is_written(
    client: FlaskClient, auth: AuthActions, session: Session, make_user: Callable[..., Any]
) -> None:
    user = make_user()
    auth.login(user.email)
    response = client.post(
        "/publications/", data={"title": "A\x00B", "year": "2024", "abstract": "", "venue": ""}
    )
    assert response.status_code == 400
    assert "control characters" in response.get_data(as_text=True)
    response = client.get("/search/?q=protein\x00folding")
    assert response.status_code == 400
    assert session.exec(select(Publication)).all() == []


def test_deeply_nested_bibtex_braces_do_not_fail(
    client: FlaskClient, auth: AuthActions, make_user: Callable[..., Any]
) -> None:
    auth.login(make_user().email)
    pasted = "@article{deep, title={" + "{" * 1500 + "Deep" + "}" * 1500 + "}, year={2024}}"
    response = client.post("/publications/import", data={"bibtex-text": pasted})
    assert response.status_code in (200, 422)


def test_research_areas_and_domains_are_bounded() -> None:
    base = {"title": "A proposal title", "abstract": "An abstract that is long enough here."}
    ProposalCreate.model_validate({**base, "research_areas": ["nlp"] * 20})
    with pytest.raises(ValidationError):
        ProposalCreate.model_validate({**base, "research_areas": ["nlp"] * 21})
    with pytest.raises(ValidationError):
        ProposalCreate.model_validate({**base, "data_domains": ["x" * 101]})


def test_a_company_account_cannot_join_a_university(
    client: FlaskClient, session: Session, make_organisation: Callable[..., Any]
) -> None:
    make_organisation(name="University of Northbridge", email_domains=["northbridge.example.org"])
    response = client.post(
        "/register",
        data={
            "name": "Mallory",
            "email": "mallory@northbridge.example.org",
            "role": "company",
            "organisation": "Mallory Compute",
            "password": "orchid-tractor-meadow-91",
            "password_confirm": "orchid-tractor-meadow-91",
        },
    )
    assert response.status_code == 422
    assert "a university" in response.get_data(as_text=True)
    assert (
        session.exec(select(User).where(User.email == "mallory@northbridge.example.org")).all()
        == []
    )
