"""Accounts: which organisation a new member joins, and moderation of users."""

from __future__ import annotations

from sqlmodel import Session, select

from app.services.errors import Conflict, InvalidInput, NotFound
from models import NotificationPreference, Organisation, OrganisationKind, Role, User

# Addresses at these domains say nothing about where someone works.
PUBLIC_MAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "yahoo.com",
        "icloud.com",
        "proton.me",
        "protonmail.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "mail.com",
        "aol.com",
    }
)


class OrganisationTaken(Conflict):
    """The organisation exists and the address is not at one of its domains."""


def email_domain(email: str) -> str:
    return email.rsplit("@", 1)[-1].strip().lower()


def find_organisation(
    *, session: Session, name: str, email: str, role: str | None = None
) -> Organisation | None:
    """The organisation a new member with this address joins, or None for a new one.

    An address at an organisation's email domain joins it, whatever name was typed. Typing
    the name of an existing organisation from another address is refused: otherwise anyone
    could post offers in a verified company's name.
    """
    domain = email_domain(email)
    organisations = session.exec(select(Organisation)).all()
    for organisation in organisations:
        if domain in {d.lower() for d in organisation.email_domains}:
            if role == Role.company and organisation.kind == OrganisationKind.university:
                # Else a company account could post offers in a university's name.
                raise OrganisationTaken(
                    f"Addresses at {domain} belong to {organisation.name}, a university. "
                    "To offer compute or data, sign up with your company address; to propose "
                    "research, join as an academic."
                )
            return organisation
    wanted = name.strip().casefold()
    for organisation in organisations:
        if organisation.name.casefold() == wanted:
            raise OrganisationTaken(
                f"{organisation.name} is already on Tandem. Sign up with your address at "
                f"{', '.join(organisation.email_domains) or 'its email domain'}, or ask an "
                "administrator to add you."
            )
    return None


def join_organisation(*, session: Session, user_id: int, name: str) -> Organisation:
    """Attach a new member to their organisation, creating it (unverified) when new."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    organisation = find_organisation(session=session, name=name, email=user.email, role=user.role)
    if organisation is None:
        domain = email_domain(user.email)
        organisation = Organisation(
            name=name.strip(),
            kind=OrganisationKind.company
            if user.role == Role.company
            else OrganisationKind.university,
            email_domains=[] if domain in PUBLIC_MAIL_DOMAINS else [domain],
            verified=False,
        )
        session.add(organisation)
        session.flush()
    user.organisation_id = organisation.id
    session.add(user)
    session.flush()
    return organisation


def set_notification_preference(
    *,
    session: Session,
    user_id: int,
    preference: NotificationPreference,
    min_score: float | None = None,
) -> User:
    """How the user hears about matches: instant, daily or weekly digest, or off; and, with
    `min_score` (0-1), the lowest score of a new match worth an email."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    user.notification_preference = NotificationPreference(preference)
    if min_score is not None:
        if not 0.0 <= min_score <= 1.0:
            raise InvalidInput({"min_fit": ["Please give a score between 0 and 100, e.g. 30."]})
        user.notify_min_score = float(min_score)
    session.add(user)
    session.flush()
    return user
