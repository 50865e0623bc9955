"""The partner API's request and response schemas. The same classes serialise the responses
and generate the OpenAPI document (APIFlask reads them), so the two cannot drift apart."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    create_model,
)

from app.services import feed, webhooks
from models import (
    AccessMode,
    AgreementKind,
    AllocationRoundStatus,
    CollaborationStage,
    DeclineReason,
    IpStance,
    LabResourceLevel,
    MatchStatus,
    OfferKind,
    OfferStatus,
    OrganisationKind,
    ProposalStatus,
    PublicationTerms,
)

STAMP = "2026-11-28T09:30:00Z"


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


# RFC 3339 `date-time`, what the OpenAPI format `date-time` means: seconds and a zone required.
RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _iso_text(value: object) -> object:
    """Only RFC 3339 text: pydantic would otherwise read `0` or `1.5` as Unix times, and
    `09:30Z` or `+0500`, which the document's `date-time` does not allow."""
    if isinstance(value, str) and RFC3339.fullmatch(value):
        return value
    if isinstance(value, datetime):
        return value
    raise ValueError("give an RFC 3339 time with a time zone, e.g. 2026-11-28T09:30:00Z")


def _in_utc(value: datetime) -> datetime:
    """In UTC. A valid time whose UTC reading falls outside years 1-9999 (`0001-01-01T00:00:00
    +05:00`) is read as the earliest or latest time there is: it still means "everything" or
    "nothing yet"."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        extreme = datetime.max if value.year == datetime.max.year else datetime.min
        return extreme.replace(tzinfo=UTC)


# A time as query text: RFC 3339 with a time zone, nothing else; given in UTC.
IsoTime = Annotated[AwareDatetime, BeforeValidator(_iso_text), AfterValidator(_in_utc)]


class ListQuery(Schema):
    """Query parameters of every list endpoint. Unknown parameters are refused."""

    cursor: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="`next_cursor` from the previous page; omit it for the first page. "
        "(Cursors given out before December 2026, base64 text, are still accepted.)",
        # The documented form only: every text of this form is a cursor the server accepts.
        json_schema_extra={"pattern": feed.CURSOR_PATTERN, "examples": ["1795858200000000.12"]},
    )
    updated_since: IsoTime | None = Field(
        default=None,
        description="Only records changed at or after this time (RFC 3339: ISO 8601 with seconds "
        "and a time zone). "
        "Ignored when `cursor` is given.",
        json_schema_extra={"examples": [STAMP]},
    )
    limit: int = Field(default=100, ge=1, le=500, description="Records per page.")


class Deleted(Schema):
    """A record that is no longer public (or no longer exists): remove your copy."""

    id: int
    updated_at: datetime


class ProposalOut(Schema):
    id: int
    title: str
    abstract: str
    researcher: str = Field(
        description="Who proposes it, without naming them: field and institution type.",
        json_schema_extra={"examples": ["A researcher in computational biology at a university"]},
    )
    research_areas: list[str]
    gpu_hours_needed: int
    gpu_memory_min_gb: int | None
    gpu_type: str | None
    duration_months: int
    earliest_start: date | None
    data_need: str
    data_domains: list[str]
    collaboration_kinds: list[str]
    requires_open_publication: bool
    requires_open_source: bool
    ip_stance: IpStance
    lab_resource_level: LabResourceLevel
    status: ProposalStatus
    created_at: datetime
    updated_at: datetime

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": 12,
                    "title": "Learning protein structure from sparse cryo-EM maps",
                    "abstract": "We will train structure prediction networks that use sparse "
                    "cryo-EM density maps as extra evidence.",
                    "researcher": "A researcher in computational biology at a university",
                    "research_areas": ["computational biology", "structure prediction"],
                    "gpu_hours_needed": 3000,
                    "gpu_memory_min_gb": 40,
                    "gpu_type": "H100",
                    "duration_months": 6,
                    "earliest_start": "2027-01-01",
                    "data_need": "",
                    "data_domains": [],
                    "collaboration_kinds": ["compute"],
                    "requires_open_publication": True,
                    "requires_open_source": False,
                    "ip_stance": "open",
                    "lab_resource_level": "under_resourced",
                    "status": "open",
                    "created_at": STAMP,
                    "updated_at": STAMP,
                }
            ]
        },
    )


class OfferOut(Schema):
    id: int
    kind: OfferKind
    title: str
    description: str
    organisation_id: int
    organisation: str = Field(json_schema_extra={"examples": ["Helios Compute"]})
    gpu_type: str | None
    gpu_memory_gb: int | None
    gpu_hours_budget: int
    max_hours_per_project: int
    max_projects: int
    dataset_description: str
    data_domains: list[str]
    access_mode: AccessMode
    publication_terms: PublicationTerms
    ip_stance: IpStance
    nda_required: bool
    code_release_allowed: bool
    deadline: date | None
    available_until: date | None
    status: OfferStatus
    created_at: datetime
    updated_at: datetime


class OrganisationOut(Schema):
    id: int
    name: str = Field(json_schema_extra={"examples": ["Northbridge University"]})
    kind: OrganisationKind
    email_domains: list[str] = Field(json_schema_extra={"examples": [["nb.example.org"]]})
    verified: bool = Field(description="An administrator checked that it is who it says")
    created_at: datetime
    updated_at: datetime


class ContactOut(Schema):
    name: str
    email: str
    organisation: str


class MatchOut(Schema):
    """An introduced match: both sides said they are interested."""

    id: int
    proposal_id: int
    offer_id: int
    score: float = Field(description="Weighted total; higher is a better fit")
    components: dict[str, float] = Field(
        json_schema_extra={
            "examples": [{"proposal": 0.61, "publications": 0.48, "lexical": 0.2, "fit": 1.0}]
        }
    )
    explanation: dict[str, Any] = Field(
        description="Why the pair scored as it did: shared terms, closest publications, "
        "resource fit."
    )
    algorithm_version: str
    status: MatchStatus
    introduced_at: datetime | None
    allocation_round_id: int | None
    academic: ContactOut | None = Field(
        default=None, description="Only for tokens with the `contacts` scope"
    )
    company: ContactOut | None = Field(
        default=None, description="Only for tokens with the `contacts` scope"
    )
    created_at: datetime
    updated_at: datetime


class AssignmentOut(Schema):
    proposal_id: int
    offer_id: int
    score: float
    gpu_hours: int


class AllocationRoundOut(Schema):
    id: int
    status: AllocationRoundStatus
    equity: str = Field(description="none, priority or maxmin")
    min_score: float
    objective: float = Field(description="Total score of the assignment")
    published_at: datetime | None
    assignments: list[AssignmentOut]
    created_at: datetime
    updated_at: datetime


class CollaborationOut(Schema):
    """What followed an introduction of a public pair. The free-text reason for ending stays
    between the two sides; the reason's code is shown."""

    id: int
    match_id: int
    proposal_id: int
    offer_id: int
    stage: CollaborationStage
    agreement_kind: AgreementKind | None
    agreement_signed_on: date | None
    gpu_hours_granted: int | None = Field(ge=0)
    gpu_hours_used: int | None = Field(ge=0)
    outcome_link: str | None = Field(description="DOI or link of the published result")
    end_reason: DeclineReason | None = Field(description="Why it ended without a result")
    stage_changed_at: datetime
    created_at: datetime
    updated_at: datetime


class FunnelStepOut(Schema):
    step: str = Field(json_schema_extra={"examples": ["agreement_signed"]})
    label: str
    count: int = Field(ge=0, description="Pairs that reached this step or a later one")


class ProgrammeGroupOut(Schema):
    """Collaborations of one research field or lab resource level, by furthest stage."""

    group: str
    introduced: int = Field(ge=0)
    agreement_signed: int = Field(ge=0)
    started: int = Field(ge=0)
    completed: int = Field(ge=0)
    published: int = Field(ge=0)
    ended_without_result: int = Field(ge=0)
    gpu_hours_granted: int = Field(ge=0)
    gpu_hours_used: int = Field(ge=0)


class ProgrammeOut(Schema):
    """The programme report over public pairs only (both proposal and offer public)."""

    funnel: list[FunnelStepOut]
    gpu_hours_granted: int = Field(ge=0)
    gpu_hours_used: int = Field(ge=0)
    days_to_agreement_median: float | None = Field(
        description="Median days from the introduction to a signed agreement"
    )
    agreements_timed: int = Field(ge=0)
    by_field: list[ProgrammeGroupOut]
    by_lab: list[ProgrammeGroupOut] = Field(description="By the lab's resource level")


def _page(name: str, item: type[Schema]) -> type[Schema]:
    fields = {
        "items": (list[item], Field(description="Public records changed, oldest change first")),
        "deleted": (list[Deleted], Field(description="Records to remove from your copy")),
        "next_cursor": (
            str | None,
            Field(description="Pass as `cursor` for the next page; keep it to sync later."),
        ),
        "has_more": (bool, Field(description="Whether another page is ready now")),
    }
    return create_model(name, __base__=Schema, **fields)  # type: ignore[call-overload]


ProposalPage = _page("ProposalPage", ProposalOut)
OfferPage = _page("OfferPage", OfferOut)
OrganisationPage = _page("OrganisationPage", OrganisationOut)
MatchPage = _page("MatchPage", MatchOut)
AllocationRoundPage = _page("AllocationRoundPage", AllocationRoundOut)
CollaborationPage = _page("CollaborationPage", CollaborationOut)


class Problem(Schema):
    """An error, as RFC 9457 problem details (`application/problem+json`)."""

    type: str = Field(
        description="A URI naming the kind of error; stable across versions",
        json_schema_extra={"examples": ["https://tandem.example.org/api/problems/unauthorized"]},
    )
    title: str
    status: int
    detail: str
    errors: dict[str, list[str]] | None = Field(
        default=None, description="For invalid requests: the messages per parameter"
    )


class ExportQuery(Schema):
    since: IsoTime | None = Field(
        default=None,
        description="Only records changed at or after this time (RFC 3339: ISO 8601 with seconds "
        "and a time zone); "
        "records that stopped being public since then come as `deleted` lines.",
        json_schema_extra={"examples": [STAMP]},
    )


class ExportLine(Schema):
    """One line of the NDJSON export: a record, a tombstone, or (last) the cursors."""

    resource: str | None = Field(default=None, json_schema_extra={"examples": ["proposals"]})
    record: dict[str, Any] | None = Field(
        default=None, description="As the resource's detail endpoint shows it"
    )
    deleted: dict[str, Any] | None = Field(
        default=None, description="`{id, updated_at}` of a record to remove"
    )
    cursors: dict[str, str | None] | None = Field(
        default=None,
        description="Last line only: per resource, the cursor its list endpoint continues from",
    )


class WebhookIn(Schema):
    """A webhook to register. Strict: unknown fields and wrong types are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)

    url: str = Field(
        min_length=1,
        max_length=2000,
        # Checked by `webhooks.register`, with a message a person can act on; outside
        # development the document gives the stricter `webhooks.PUBLIC_URL_PATTERN`.
        json_schema_extra={
            "pattern": webhooks.URL_PATTERN,
            "examples": ["https://funder.example.org/tandem/hooks"],
        },
        description="Where to POST notifications (http and IP addresses only in development)",
    )
    events: list[Literal["match.introduced", "round.published"]] = Field(
        min_length=1,
        max_length=10,
        description="Which events: match.introduced (scope matches), round.published (scope "
        "allocations)",
        json_schema_extra={"examples": [["match.introduced", "round.published"]]},
    )


class WebhookOut(Schema):
    id: int
    url: str
    events: list[str]
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="Verifies our `Tandem-Signature` header: HMAC-SHA256 of `<t>.<body>`. "
        "Shown once."
    )


class WebhookList(Schema):
    items: list[WebhookOut]
