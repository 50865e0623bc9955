"""The partner API's done-means: the mirroring script printed on the API page, run as a
partner would run it (its own process, over HTTP, standard library only), copies all public
data and then keeps the copy in sync from its last cursors."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

from sqlmodel import select

from app.services import partners
from models import (
    Offer,
    OfferKind,
    OfferStatus,
    Organisation,
    OrganisationKind,
    Proposal,
    ProposalStatus,
    Role,
    User,
)
from tests.e2e.conftest import LiveServer

READ_SCOPES = ("proposals", "offers", "organisations", "matches", "allocations", "outcomes")


def _seed(server: LiveServer) -> None:
    with server.session() as session:
        university = Organisation(name="Northbridge University", kind=OrganisationKind.university)
        company = Organisation(name="Helios Compute", kind=OrganisationKind.company)
        session.add_all([university, company])
        session.flush()
        author = User(
            email="ada@nb.example.org",
            name="Ada Okafor",
            role=Role.academic,
            password_hash="x",
            organisation_id=university.id,
        )
        session.add(author)
        session.flush()
        for number in range(3):
            session.add(
                Proposal(
                    title=f"Learning from sparse signals, part {number}",
                    abstract="We study how to learn from sparse and noisy signals at scale.",
                    author_id=author.id,
                    status=ProposalStatus.open,
                )
            )
        session.add(
            Proposal(
                title="A draft nobody else sees",
                abstract="Drafts stay with their author until they are published.",
                author_id=author.id,
            )
        )
        session.add(
            Offer(
                kind=OfferKind.compute,
                title="H100 hours for open research",
                description="Up to 5,000 H100 hours for academic projects that publish.",
                organisation_id=company.id,
                gpu_hours_budget=20_000,
                status=OfferStatus.open,
            )
        )
        session.commit()


def _public(server: LiveServer) -> dict[str, dict[str, str]]:
    with server.session() as session:
        proposals = session.exec(
            select(Proposal).where(
                Proposal.status != ProposalStatus.draft,
                Proposal.hidden == False,  # noqa: E712
            )
        ).all()
        offers = session.exec(select(Offer)).all()
        organisations = session.exec(select(Organisation)).all()
        return {
            "proposals": {str(p.id): p.title for p in proposals},
            "offers": {str(o.id): o.title for o in offers},
            "organisations": {str(o.id): o.name for o in organisations},
        }


def _run(script: Path, token: str) -> dict[str, dict[str, str]]:
    result = subprocess.run(
        [sys.executable, script.name],
        cwd=script.parent,
        env={**os.environ, "TANDEM_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    state = json.loads((script.parent / "state.json").read_text())
    titles = {"proposals": "title", "offers": "title", "organisations": "name"}
    return {
        name: {i: record[field] for i, record in state["data"][name].items()}
        for name, field in titles.items()
    }


def test_the_documented_script_mirrors_and_then_syncs(
    live_server: LiveServer, tmp_path: Path
) -> None:
    live_server.app.config["TANDEM_API_SETTLE_SECONDS"] = 0
    _seed(live_server)
    with live_server.session() as session:
        token = partners.create_token(session=session, name="Funder", scopes=READ_SCOPES).secret
        session.commit()

    page = urllib.request.urlopen(live_server.url + "/api/").read().decode()
    code = re.search(r'<pre id="sync-script"><code>(.*?)</code></pre>', page, re.S)
    assert code is not None, "the API page shows the script"
    script = html.unescape(code.group(1))
    assert len(script.strip().splitlines()) <= 20
    (tmp_path / "sync.py").write_text(script)

    first = _run(tmp_path / "sync.py", token)
    assert first == _public(live_server)
    assert len(first["proposals"]) == 3, "the draft is not exported"

    with live_server.session() as session:
        edited, hidden = session.exec(
            select(Proposal).where(Proposal.status == ProposalStatus.open).limit(2)
        ).all()
        edited.title = "Learning from sparse signals, revised"
        hidden.hidden = True
        session.add_all([edited, hidden])
        session.commit()
        edited_id, hidden_id = str(edited.id), str(hidden.id)

    second = _run(tmp_path / "sync.py", token)
    assert second == _public(live_server)
    assert second["proposals"][edited_id] == "Learning from sparse signals, revised"
    assert hidden_id not in second["proposals"]
