"""SQLModel tables and their Create/Update/Public schemas. No Flask, no matching."""

from models._base import utcnow
from models.allocation import AllocationAssignment, AllocationRound, AllocationRoundPublic
from models.collaboration import Collaboration, CollaborationEvent, CollaborationPublic
from models.eligibility import EligibilityCount
from models.embedding import Embedding
from models.enums import (
    AccessMode,
    AgreementKind,
    AllocationRoundStatus,
    CollaborationKind,
    CollaborationStage,
    DeclineReason,
    IpStance,
    LabResourceLevel,
    MatchStatus,
    NotificationPreference,
    NotificationStatus,
    OfferKind,
    OfferStatus,
    OrganisationKind,
    ProposalStatus,
    PublicationTerms,
    Role,
)
from models.match import Match, MatchCreate, MatchPublic, MatchUpdate
from models.notification import DomainEvent, MatchEvent, Notification
from models.offer import Offer, OfferCreate, OfferPublic, OfferUpdate
from models.organisation import (
    Organisation,
    OrganisationCreate,
    OrganisationPublic,
    OrganisationUpdate,
)
from models.partner import PartnerToken, Webhook, WebhookDelivery
from models.proposal import Proposal, ProposalCreate, ProposalPublic, ProposalUpdate
from models.publication import Publication, PublicationCreate, PublicationPublic, PublicationUpdate
from models.ranking_model import RankingModel
from models.user import User, UserCreate, UserPublic, UserUpdate

__all__ = [
    "AccessMode",
    "AgreementKind",
    "AllocationAssignment",
    "AllocationRound",
    "AllocationRoundPublic",
    "AllocationRoundStatus",
    "Collaboration",
    "CollaborationEvent",
    "CollaborationKind",
    "CollaborationPublic",
    "CollaborationStage",
    "DeclineReason",
    "DomainEvent",
    "EligibilityCount",
    "Embedding",
    "IpStance",
    "LabResourceLevel",
    "Match",
    "MatchEvent",
    "MatchCreate",
    "MatchPublic",
    "MatchStatus",
    "MatchUpdate",
    "Notification",
    "NotificationPreference",
    "NotificationStatus",
    "Offer",
    "OfferCreate",
    "OfferKind",
    "OfferPublic",
    "OfferStatus",
    "OfferUpdate",
    "Organisation",
    "OrganisationCreate",
    "OrganisationKind",
    "OrganisationPublic",
    "OrganisationUpdate",
    "PartnerToken",
    "Proposal",
    "ProposalCreate",
    "ProposalPublic",
    "ProposalStatus",
    "ProposalUpdate",
    "Publication",
    "PublicationCreate",
    "PublicationPublic",
    "PublicationUpdate",
    "PublicationTerms",
    "RankingModel",
    "Role",
    "User",
    "Webhook",
    "WebhookDelivery",
    "UserCreate",
    "UserPublic",
    "UserUpdate",
    "utcnow",
]
