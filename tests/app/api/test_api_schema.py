"""The partner API against its own OpenAPI document, with Schemathesis and every check it has
(what `schemathesis run --checks all` runs): no server error; status codes, content types,
headers and bodies as documented; every request the document allows is accepted and every
one it forbids is refused; auth enforced; a deleted webhook stays gone. All phases run:
the document's examples, the coverage phase's boundary values, random fuzzing (valid and
invalid data), and stateful sequences along the document's links, as a partner with a real
token holding every scope, on a database with a record of every kind."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from sqlmodel import Session

from app.services import partners
from models import (
    AgreementKind,
    AllocationAssignment,
    AllocationRound,
    AllocationRoundStatus,
    Collaboration,
    CollaborationStage,
    Match,
    MatchStatus,
    utcnow,
)

# Random requests per operation in the fuzzing phase (the examples and coverage phases add
# their own, a fixed set), and scenarios of up to 6 calls in the stateful phase. The same
# requests on every run (derandomize), so CI does not flip; raise these locally to explore.
MAX_EXAMPLES = 25
STATEFUL_SCENARIOS = 30
SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def partner_token(app: Flask, session: Session, pair: dict[str, Any]) -> str:
    """A token with every scope, on data where every resource has a public record: an
    introduced match with its collaboration and a published allocation round besides the
    pair's records."""
    app.config["TANDEM_API_SETTLE_SECONDS"] = 0
    app.config["TANDEM_API_RATE_LIMIT"] = "100000 per minute"
    match = session.get(Match, pair["match"].id)
    match.status, match.introduced_at = MatchStatus.introduced, utcnow()
    allocation_round = AllocationRound(
        status=AllocationRoundStatus.published, published_at=utcnow(), objective=match.score
    )
    session.add_all([match, allocation_round])
    session.flush()
    session.add(
        AllocationAssignment(
            round_id=allocation_round.id,
            proposal_id=match.proposal_id,
            offer_id=match.offer_id,
            score=match.score,
            gpu_hours=100,
        )
    )
    session.add(
        Collaboration(
            match_id=match.id,
            stage=CollaborationStage.started,
            agreement_kind=AgreementKind.collaboration,
            agreement_signed_on=utcnow().date(),
            gpu_hours_granted=100,
            gpu_hours_used=10,
        )
    )
    token = partners.create_token(session=session, name="Schema", scopes=partners.SCOPES)
    session.commit()
    return token.secret


def _schema(app: Flask, token: str) -> schemathesis.BaseSchema:
    config = schemathesis.Config.from_dict({"headers": {"Authorization": f"Bearer {token}"}})
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=config)


@pytest.fixture
def production_api(app: Flask, partner_token: str) -> schemathesis.BaseSchema:
    """The API as production serves it: webhooks only to https:// host names."""
    app.config["TANDEM_WEBHOOKS_ALLOW_PRIVATE"] = False
    return _schema(app, partner_token)


@pytest.fixture
def development_api(app: Flask, partner_token: str) -> schemathesis.BaseSchema:
    """In development webhooks may go to http:// and to addresses (a local receiver)."""
    app.config["TANDEM_WEBHOOKS_ALLOW_PRIVATE"] = True
    return _schema(app, partner_token)


def ndjson_lines_conform(
    ctx: Any, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """Each line of an NDJSON answer fits the schema the document gives for a line
    (Schemathesis validates JSON bodies itself, but has no reader for NDJSON)."""
    if response.headers.get("content-type", [""])[0].split(";")[0] != "application/x-ndjson":
        return
    documented = case.operation.definition.raw["responses"][str(response.status_code)]
    validator = jsonschema_rs.validator_for(documented["content"]["application/x-ndjson"]["schema"])
    lines = response.text.splitlines()
    assert lines and "cursors" in json.loads(lines[-1]), "the last line has the cursors"
    for line in lines:
        validator.validate(json.loads(line))


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """Schemathesis 4.32's `from_fixture` renames the running test through
    `request.node._nodeid`, which pytest 9 no longer has."""
    request.node._nodeid = request.node.nodeid


@pytest.fixture
def answered(production_api: schemathesis.BaseSchema) -> Iterator[set[str]]:
    """The operations that answered a success at least once: every one must have, or the
    checks above saw only refusals (a token without a scope, an empty database)."""
    succeeded: set[str] = set()
    yield succeeded
    everything = {result.ok().label for result in production_api.get_all_operations()}
    assert len(everything) == 17 and succeeded == everything, everything - succeeded


production = schemathesis.pytest.from_fixture("production_api")
development = schemathesis.pytest.from_fixture("development_api").include(
    method="POST", path="/api/v1/webhooks"
)


@production.parametrize()
@SETTINGS
def test_every_operation_keeps_the_documented_contract(
    case: schemathesis.Case, answered: set[str]
) -> None:
    response = case.call_and_validate(additional_checks=[ndjson_lines_conform])
    if 200 <= response.status_code < 300:
        answered.add(case.operation.label)


@development.parametrize()
@SETTINGS
def test_webhooks_keep_the_development_contract(case: schemathesis.Case) -> None:
    case.call_and_validate()


def test_operations_chained_by_their_links_keep_the_contract(
    production_api: schemathesis.BaseSchema,
) -> None:
    machine = production_api.as_state_machine()
    machine.run(settings=settings(SETTINGS, max_examples=STATEFUL_SCENARIOS, stateful_step_count=6))
