"""The text of each record that the matcher reads."""

from __future__ import annotations

from models import Offer, Proposal, Publication


def proposal_text(proposal: Proposal) -> str:
    parts = [proposal.title, proposal.abstract]
    if proposal.data_need:
        parts.append(f"Data needed: {proposal.data_need}")
    return "\n".join(parts)


def offer_text(offer: Offer) -> str:
    parts = [offer.title, offer.description]
    if offer.dataset_description:
        parts.append(f"Dataset: {offer.dataset_description}")
    return "\n".join(parts)


def publication_text(publication: Publication) -> str:
    """Title and abstract, the form the expertise benchmark scores."""
    return f"{publication.title}\n{publication.abstract}"
