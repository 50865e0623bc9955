"""Search finds public proposals and offers by meaning and by keyword, with filters, and never
shows drafts, hidden items or who wrote a proposal."""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, func, select

from app.services.search import SearchCriteria, search
from matching import Encoder
from matching.embeddings import content_hash
from matching.stand_in import stand_in_model_name
from models import (
    Embedding,
    OfferKind,
    OfferStatus,
    Proposal,
    ProposalStatus,
    Publication,
    PublicationTerms,
    Role,
)
from tests.conftest import AuthActions

VOID = {"input", "br", "img", "meta", "link", "hr", "source", "area", "wbr", "col"}

MOLECULES = {
    "title": "GPU time for molecular structure prediction",
    "description": "We offer A100 hours for research groups predicting the three-dimensional "
    "structure of molecules and biomolecules.",
    "gpu_type": "A100",
}
SPEECH = {
    "title": "Speech recognition for call centres",
    "description": "We fund work on transcribing noisy customer phone calls in many accents.",
}


class Html(HTMLParser):
    """The parts of a page the tests read: labels (text -> control id), elements by id with
    their attributes and text, and the selected option of each select."""

    def __init__(self, html: bytes) -> None:
        super().__init__()
        self.labels: dict[str, str] = {}
        self.attrs: dict[str, dict[str, str | None]] = {}
        self.texts: dict[str, str] = defaultdict(str)
        self.selected: dict[str, str] = {}
        self._open: list[str | None] = []
        self._label: list[str] | None = None
        self._select: str | None = None
        self.feed(html.decode())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if attributes.get("id"):
            self.attrs[attributes["id"]] = {"tag": tag, **attributes}  # type: ignore[index]
        if tag == "label":
            self._label = [attributes.get("for") or "", ""]
        if tag == "select":
            self._select = attributes.get("id")
        if tag == "option" and self._select and "selected" in attributes:
            self.selected[self._select] = attributes.get("value") or ""
        if tag not in VOID:
            self._open.append(attributes.get("id"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "label" and self._label is not None:
            self.labels[" ".join(self._label[1].split())] = self._label[0]
            self._label = None
        if tag == "select":
            self._select = None
        if tag not in VOID and self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._label is not None:
            self._label[1] += data
        for element_id in self._open:
            if element_id:
                self.texts[element_id] += data

    def control(self, label: str) -> dict[str, str | None]:
        """The input or select that the label with this text names."""
        return self.attrs[self.labels[label]]

    def error_of(self, label: str) -> str:
        """The error shown next to the control with this label ('' when none)."""
        return " ".join(self.texts.get(f"{self.labels[label]}-error", "").split())


def _text(html: bytes) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html.decode()))


def _results(html: bytes) -> list[str]:
    """The result cards' links, in page order: 'proposals/ID' or 'offers/ID'."""
    return re.findall(r'<h3>\s*<a href="/((?:proposals|offers)/\d+)"', html.decode())


def _ids(*items: Any) -> set[str]:
    return {f"{'proposals' if isinstance(i, Proposal) else 'offers'}/{i.id}" for i in items}


@pytest.mark.semantic
def test_a_query_finds_an_offer_by_meaning_without_a_shared_word(
    client: FlaskClient,
    session: Session,
    encoder: Encoder,
    make_offer: Callable[..., Any],
    make_proposal: Callable[..., Any],
) -> None:
    molecules = make_offer(**MOLECULES)
    make_offer(**SPEECH)
    make_proposal()  # battery dispatch: unrelated to proteins

    response = client.get("/search/?q=protein+folding")
    assert response.status_code == 200
    assert _results(response.data) == [f"offers/{molecules.id}"]
    text = _text(response.data)
    assert "1 result for “protein folding”" in text
    assert "Why it matched: similar in meaning" in text and "matches your words" not in text
    assert re.search(r"Relevance: (Strong|Good|Possible) match", text)
    page = Html(response.data)
    assert page.control("Search proposals and offers")["value"] == "protein folding"
    assert page.control("Search proposals and offers")["type"] == "search"
    assert re.search(
        r"<details class=\"search-filters\">\s*<summary>Filters</summary>", response.data.decode()
    )
    for label in ("Research area", "GPU type", "Minimum GPU hours", "Data domain"):
        assert page.control(label)  # every filter has a visible label

    session.expire_all()  # searches leave no trace: the query's embedding is not stored
    assert content_hash("protein folding") not in set(session.exec(select(Embedding.content_hash)))

    results = search(session=session, encoder=encoder, criteria=SearchCriteria("protein folding"))
    assert [hit.item.id for hit in results.page.items] == [molecules.id]
    (hit,) = results.page.items
    assert hit.similar_in_meaning and hit.matched_words == () and hit.relevance_label


def test_keywords_rank_the_exact_phrase_first_then_all_words_then_some(
    client: FlaskClient, make_proposal: Callable[..., Any], make_offer: Callable[..., Any]
) -> None:
    phrase = make_proposal()  # "We learn battery dispatch policies ..."
    all_words = make_proposal(
        title="Fleet scheduling for electric delivery vans",
        abstract="We plan the dispatch of delivery vans so that each battery lasts the shift.",
    )
    one_word = make_proposal(
        title="Solid-state battery materials discovery",
        abstract="We screen candidate electrolytes for safer solid-state battery cells.",
    )
    make_offer(**SPEECH)

    response = client.get("/search/?q=battery+dispatch")
    assert response.status_code == 200
    assert _results(response.data) == [
        f"proposals/{phrase.id}",
        f"proposals/{all_words.id}",
        f"proposals/{one_word.id}",
    ]
    text = _text(response.data)
    assert "matches your words: battery , dispatch (the exact phrase)" in text
    assert "matches your words: battery" in text
    assert "<mark>battery</mark> <mark>dispatch</mark>" in response.data.decode()


def test_each_filter_narrows_the_results(
    client: FlaskClient,
    make_proposal: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> None:
    robots = make_proposal(
        title="Dexterous robot arms from simulation",
        abstract="We train robot arm grasping policies in simulation and transfer them.",
        research_areas=["robotics"],
        gpu_type="H100",
        gpu_hours_needed=5000,
        data_domains=["manufacturing"],
        requires_open_publication=True,
    )
    scans = make_proposal(
        title="Calibrated segmentation of knee scans",
        abstract="We segment cartilage in knee MRI scans and calibrate the uncertainty.",
        research_areas=["medical imaging"],
        gpu_type="A100",
        gpu_hours_needed=200,
        data_domains=["healthcare"],
        requires_open_publication=False,
    )
    factory = make_offer(
        kind=OfferKind.compute_data,
        title="Factory robot logs and H100 time",
        description="Grasping logs from our assembly lines, with H100 hours to learn from them.",
        dataset_description="Two years of robot grasp attempts",
        data_domains=["manufacturing"],
        gpu_type="H100",
        gpu_hours_budget=20_000,
        publication_terms=PublicationTerms.allowed,
    )
    hospital = make_offer(
        kind=OfferKind.compute_data,
        title="Hospital imaging archive with a100 hours",
        description="De-identified MRI studies and a small A100 allocation for model training.",
        dataset_description="Knee and hip MRI studies",
        data_domains=["Healthcare"],
        gpu_type="a100",
        gpu_hours_budget=300,
        max_hours_per_project=300,
        publication_terms=PublicationTerms.not_allowed,
    )

    def found(query: str) -> set[str]:
        response = client.get(f"/search/?{query}")
        assert response.status_code == 200, query
        return set(_results(response.data))

    assert found("") == _ids(robots, scans, factory, hospital)
    assert found("type=proposals") == _ids(robots, scans)
    assert found("type=offers") == _ids(factory, hospital)
    assert found("area=robotics") == _ids(robots)  # offers have no research area
    assert found("gpu_type=h100") == _ids(robots, factory)
    assert found("gpu_type=A100") == _ids(scans, hospital)
    assert found("min_hours=1000") == _ids(robots, factory)
    assert found("domain=healthcare") == _ids(scans, hospital)
    assert found("terms=not_allowed") == _ids(scans, hospital)
    assert found("terms=allowed") == _ids(robots, scans, factory)
    assert found("q=robot+grasping&type=offers") == _ids(factory)
    assert found("q=robot+grasping&gpu_type=H100&min_hours=10000") == _ids(factory)

    page = Html(client.get("/search/?type=offers&gpu_type=h100&min_hours=1000&terms=allowed").data)
    assert "checked" in page.control("Offers")
    assert page.control("GPU type")["value"] == "h100"
    assert page.control("Minimum GPU hours")["value"] == "1000"
    assert page.selected[page.labels["Publication terms"]] == "allowed"


def test_drafts_hidden_items_and_suspended_authors_never_appear(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_user: Callable[..., Any],
    make_organisation: Callable[..., Any],
    make_proposal: Callable[..., Any],
    make_offer: Callable[..., Any],
) -> None:
    words = {
        "title": "Learning tokamak plasma control",
        "abstract": "We train controllers that keep fusion plasmas stable in a tokamak.",
    }
    author = make_user(email="draft-author@example.org")
    public = make_proposal(**words)
    draft = make_proposal(**words, author_id=author.id, status=ProposalStatus.draft)
    hidden = make_proposal(**words, hidden=True)
    closed = make_proposal(**words, status=ProposalStatus.closed)
    suspended = make_proposal(**words, author_id=make_user(active=False).id)
    offer_words = {"title": "Tokamak plasma control compute", "description": words["abstract"]}
    draft_offer = make_offer(**offer_words, status=OfferStatus.draft)
    hidden_offer = make_offer(**offer_words, hidden=True)
    closed_offer = make_offer(**offer_words, status=OfferStatus.closed)
    company = make_organisation(name="Helion Compute", email_domains=["helion.example.com"])
    member = make_user(role=Role.company, organisation_id=company.id, email="m@helion.example.com")

    private = (draft, hidden, closed, suspended, draft_offer, hidden_offer, closed_offer)
    for who in (None, member.email, author.email):  # anonymous, a company, the draft's author
        if who:
            auth.login(who)
        for query in ("/search/?q=tokamak+plasma+control", "/search/", "/search/?type=proposals"):
            response = client.get(query)
            assert response.status_code == 200
            assert set(_results(response.data)) == _ids(public), (who, query)
            assert all(f'/{link}"' not in response.data.decode() for link in _ids(*private))
        auth.logout()

    session.expire_all()
    assert session.get(Proposal, draft.id).status == ProposalStatus.draft  # type: ignore[union-attr]

    response = client.get("/search/?q=tokamak&gpu_type=TPU")
    assert response.status_code == 200
    text = _text(response.data)
    assert "0 results for “tokamak”" in text
    assert "No proposals or offers match “tokamak” with these filters" in text
    assert "Search again without filters" in text and "Suggestions" in text


def test_proposals_are_anonymous_and_authors_cannot_be_searched_for(
    client: FlaskClient,
    session: Session,
    make_user: Callable[..., Any],
    make_proposal: Callable[..., Any],
) -> None:
    author = make_user(name="Ottoline Quarrington", email="o.quarrington@example.org")
    session.add(
        Publication(
            author_id=author.id, title="Quarrington stability bounds for tokamaks", year=2023
        )
    )
    session.commit()
    proposal = make_proposal(
        author_id=author.id,
        title="Learning tokamak plasma control",
        abstract="We train controllers that keep fusion plasmas stable in a tokamak.",
        research_areas=["fusion energy"],
    )

    response = client.get("/search/?q=tokamak")
    assert _results(response.data) == [f"proposals/{proposal.id}"]
    text = _text(response.data)
    assert "A researcher in fusion energy at a university" in text
    for secret in ("Ottoline", "Quarrington", "o.quarrington", "stability bounds"):
        assert secret not in text

    for query in ("Quarrington", "Ottoline Quarrington", "o.quarrington@example.org"):
        response = client.get("/search/", query_string={"q": query})
        assert response.status_code == 200
        assert _results(response.data) == [], query


def test_the_form_as_the_page_submits_it_finds_results(
    client: FlaskClient, make_offer: Callable[..., Any], make_proposal: Callable[..., Any]
) -> None:
    """The page's one form sends every control, empty filters included: an empty or blank
    number is no filter, never an error."""
    molecules = make_offer(**MOLECULES)
    make_proposal()
    empty = "type=all&area=&gpu_type=&min_hours=&domain=&terms="
    for query in (f"q=protein+structure&{empty}", "q=protein+structure&min_hours=+++&page="):
        response = client.get(f"/search/?{query}")
        assert response.status_code == 200, query
        assert _results(response.data)[0] == f"offers/{molecules.id}"
        assert "Please correct" not in _text(response.data)
        html = response.data.decode()
        # No filter set: the filters stay folded and the page has one submit button.
        assert '<details class="search-filters">' in html
        assert len(re.findall(r'<button[^>]*type="submit"', html)) == 1

    response = client.get("/search/?q=protein+structure&type=offers&min_hours=1,000&gpu_type=a100")
    assert response.status_code == 200
    assert _results(response.data) == [f"offers/{molecules.id}"]
    html = response.data.decode()
    assert '<details class="search-filters" open>' in html  # a filter set stays in view
    assert "Filters (2 active)" in _text(response.data)
    assert Html(response.data).control("Minimum GPU hours")["value"] == "1,000"

    # A refused filter unfolds the filters too, so its message is in view.
    response = client.get("/search/?q=protein&min_hours=lots")
    assert response.status_code == 422
    assert '<details class="search-filters" open>' in response.data.decode()


def test_pages_of_results_keep_the_search_and_filters(
    client: FlaskClient, make_offer: Callable[..., Any], make_proposal: Callable[..., Any]
) -> None:
    offers = [
        make_offer(
            title=f"GPU hours for climate models {number}",
            description="Compute for groups running regional climate model ensembles.",
        )
        for number in range(12)
    ]
    make_proposal(title="Climate-aware crop planning", abstract="Crop plans under climate risk.")

    first = client.get("/search/?q=climate&type=offers")
    second = client.get("/search/?q=climate&type=offers&page=2")
    assert first.status_code == second.status_code == 200
    assert len(_results(first.data)) == 10 and len(_results(second.data)) == 2
    assert set(_results(first.data)) | set(_results(second.data)) == _ids(*offers)
    assert "12 results for “climate”" in _text(first.data)
    next_link = re.search(r'<a rel="next" href="([^"]+)"', first.data.decode())
    assert next_link is not None
    assert "q=climate" in next_link.group(1) and "type=offers" in next_link.group(1)
    assert "page=2" in next_link.group(1)

    browse = client.get("/search/?type=offers")
    newest_first = [f"offers/{o.id}" for o in reversed(offers)]
    assert _results(browse.data) == newest_first[:10]
    assert _results(client.get("/search/?type=offers&page=99").data) == newest_first[10:]


def test_bad_parameters_show_the_form_with_the_message_at_the_field(
    client: FlaskClient, session: Session, make_offer: Callable[..., Any]
) -> None:
    make_offer(**MOLECULES)
    cases = [
        ("min_hours=abc", "Minimum GPU hours", "Enter a whole number of GPU hours"),
        ("min_hours=-5", "Minimum GPU hours", "from 0 to 100,000,000"),
        ("min_hours=" + "9" * 40, "Minimum GPU hours", "from 0 to 100,000,000"),
        ("min_hours=2.5", "Minimum GPU hours", "Enter a whole number of GPU hours"),
        ("page=-3", "Page", "Pages start at 1."),
        ("page=two", "Page", "Enter a page number"),
        ("area=astrology", "Research area", "Choose a research area from the list."),
        ("domain=nowhere", "Data domain", "Choose a data domain from the list."),
        ("terms=sometimes", "Publication terms", "Choose publication terms from the list."),
        ("gpu_type=" + "H" * 101, "GPU type", "Field cannot be longer than 100 characters."),
        ("gpu_type=H100%3Bdrop", "GPU type", "Use letters, digits, spaces"),
    ]
    for query, label, message in cases:
        response = client.get(f"/search/?q=protein+folding&{query}")
        assert response.status_code == 422, query
        page = Html(response.data)
        assert message in page.error_of(label), query
        assert page.control(label)["aria-invalid"] == "true", query
        assert page.control("Search proposals and offers")["value"] == "protein folding"
        assert _results(response.data) == []

    # NUL and the other control characters are refused before any page runs (app/web.py).
    assert client.get("/search/?q=protein+folding&gpu_type=H100%00").status_code == 400

    response = client.get("/search/?q=protein&type=xyz&min_hours=abc")
    assert response.status_code == 422
    html = response.data.decode()
    assert re.search(r'id="type-field".*?Choose all, proposals or offers', html, re.S)
    assert Html(response.data).control("Minimum GPU hours")["value"] == "abc"
    assert "Please correct the 2 fields marked below" in _text(response.data)
    session.expire_all()
    assert session.exec(select(func.count()).select_from(Embedding)).one() == 0


@pytest.mark.semantic
def test_demo_searches_find_the_topic_and_hide_the_unrelated(
    client: FlaskClient, demo_loaded: str
) -> None:
    chest = _text(client.get("/search/?q=chest+CT").data)
    assert "De-identified chest CT" in chest.split("Why it matched")[0]  # the first result
    unrelated = client.get("/search/?q=poetry+about+cats")
    assert unrelated.status_code == 200
    assert _results(unrelated.data) == []
    assert "No proposals or offers match “poetry about cats”" in _text(unrelated.data)


def test_new_searches_are_limited_per_person_and_repeats_cost_nothing(
    app: Any, make_user: Callable[..., Any], make_proposal: Callable[..., Any]
) -> None:
    """Each new query is embedded on the CPU that serves every page: one client may run only
    so many; a query searched again, browsing and another person are not held back."""
    from app import create_app

    limited = create_app(
        {
            **app.config,
            "TANDEM_SEARCH_LIMIT_ANONYMOUS": "3 per minute",
            "TANDEM_SEARCH_LIMIT_SIGNED_IN": "5 per minute",
        }
    )
    limited.extensions["tandem.encoder"] = app.extensions["tandem.encoder"]
    make_proposal()  # something to search, so that each new query is embedded
    run = uuid.uuid4().hex[:8]
    anonymous = limited.test_client()
    for n in range(3):
        assert anonymous.get(f"/search/?q=graph+networks+{run}+{n}").status_code == 200
    response = anonymous.get(f"/search/?q=protein+folding+{run}")
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    page = response.get_data(as_text=True)
    assert "You have run many new searches in a short time" in page
    assert f'value="protein folding {run}"' in page, "the query typed is kept"
    assert anonymous.get(f"/search/?q=graph+networks+{run}+0").status_code == 200
    assert anonymous.get(f"/search/?q=graph+networks+{run}+0&page=2").status_code in (200, 422)
    assert anonymous.get("/search/?type=offers").status_code == 200

    other = limited.test_client()
    other.environ_base["REMOTE_ADDR"] = "192.0.2.10"
    assert other.get(f"/search/?q=protein+folding+{run}").status_code == 200

    signed_in = limited.test_client()
    AuthActions(signed_in).login(make_user().email)
    codes = [signed_in.get(f"/search/?q=climate+{run}+{n}").status_code for n in range(6)]
    assert codes == [200] * 5 + [429]
    limited.extensions["tandem.engine"].dispose()


def test_a_search_that_embeds_nothing_is_never_counted(app: Any) -> None:
    """The limit guards the model: with nothing public to search the words are never
    embedded, so however many searches a visitor runs, none is refused."""
    from app import create_app

    limited = create_app({**app.config, "TANDEM_SEARCH_LIMIT_ANONYMOUS": "2 per minute"})
    limited.extensions["tandem.encoder"] = app.extensions["tandem.encoder"]
    run = uuid.uuid4().hex[:8]
    visitor = limited.test_client()
    codes = [visitor.get(f"/search/?q=graph+networks+{run}+{n}").status_code for n in range(5)]
    assert codes == [200] * 5
    limited.extensions["tandem.engine"].dispose()


def test_tandem_model_stand_in_searches_with_the_stand_in_encoder(
    app: Flask, client: FlaskClient, session: Session, make_offer: Callable[..., Any]
) -> None:
    """`TANDEM_MODEL=stand-in` (load benchmarks only) ranks searches with the hashing
    stand-in, so a catalogue generated with `--encoder stand-in` is searched against the
    vectors it was stored with: the item vectors a search keeps are the stand-in's."""
    app.extensions.pop("tandem.encoder")
    app.config["TANDEM_MODEL"] = "stand-in"
    molecules = make_offer(**MOLECULES)
    make_offer(**SPEECH)

    response = client.get("/search/?q=molecular+structure+prediction")
    assert response.status_code == 200
    assert _results(response.data) == [f"offers/{molecules.id}"]
    session.expire_all()
    assert set(session.exec(select(Embedding.model_name))) == {stand_in_model_name()}
