"""The domain's closed vocabularies. Values are what the database stores and the API shows."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    academic = "academic"
    company = "company"
    admin = "admin"


class NotificationPreference(enum.StrEnum):
    instant = "instant"
    daily = "daily"
    weekly = "weekly"
    off = "off"


class OrganisationKind(enum.StrEnum):
    university = "university"
    company = "company"
    other = "other"


class IpStance(enum.StrEnum):
    """Who owns results. On a proposal: the most the academic accepts; on an offer: what the
    company asks for. Ordered from most open to most restrictive."""

    open = "open"
    joint = "joint"
    company_owned = "company_owned"


class LabResourceLevel(enum.StrEnum):
    under_resourced = "under_resourced"
    typical = "typical"
    well_resourced = "well_resourced"


class ProposalStatus(enum.StrEnum):
    draft = "draft"
    open = "open"
    matched = "matched"
    closed = "closed"


class OfferKind(enum.StrEnum):
    compute = "compute"
    data = "data"
    compute_data = "compute+data"

    @property
    def offers_compute(self) -> bool:
        return self in (OfferKind.compute, OfferKind.compute_data)

    @property
    def offers_data(self) -> bool:
        return self in (OfferKind.data, OfferKind.compute_data)


class AccessMode(enum.StrEnum):
    remote = "remote"
    on_premises = "on_premises"
    api = "api"


class PublicationTerms(enum.StrEnum):
    allowed = "allowed"
    after_review = "after_review"
    not_allowed = "not_allowed"


class OfferStatus(enum.StrEnum):
    draft = "draft"
    open = "open"
    closed = "closed"


class MatchStatus(enum.StrEnum):
    suggested = "suggested"
    interested_academic = "interested_academic"
    interested_company = "interested_company"
    introduced = "introduced"
    declined = "declined"
    withdrawn = "withdrawn"


class CollaborationKind(enum.StrEnum):
    compute = "compute"
    data = "data"
    co_authorship = "co_authorship"
    internship = "internship"
    engineering_support = "engineering_support"
    advisory = "advisory"


class AllocationRoundStatus(enum.StrEnum):
    draft = "draft"
    published = "published"


class NotificationStatus(enum.StrEnum):
    """An outbox row's life: pending (due at `next_attempt_at`) -> sending (claimed by one
    sender) -> sent | failed (permanent, with the reason)."""

    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"


class CollaborationStage(enum.StrEnum):
    """Where an introduced pair stands. Moves forward only:
    introduced -> talking -> agreement_signed -> started -> completed | published;
    ended_without_result may follow any stage before an outcome."""

    introduced = "introduced"
    talking = "talking"
    agreement_signed = "agreement_signed"
    started = "started"
    completed = "completed"
    published = "published"
    ended_without_result = "ended_without_result"

    @property
    def is_outcome(self) -> bool:
        return self in (
            CollaborationStage.completed,
            CollaborationStage.published,
            CollaborationStage.ended_without_result,
        )


class AgreementKind(enum.StrEnum):
    nda = "nda"
    data_use = "data_use"
    collaboration = "collaboration"


class DeclineReason(enum.StrEnum):
    """Why someone said no: dismissing a match or ending a collaboration."""

    topic = "topic"
    terms = "terms"
    capacity = "capacity"
    timing = "timing"
    other = "other"
