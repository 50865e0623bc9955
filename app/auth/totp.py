"""Authenticator codes that work once.

Flask-Security's `Totp` leaves replay protection to the application (its `last_counter`
hooks). Here the time step of the last accepted code is kept on the user row and claimed with
one conditional UPDATE, so a code seen by someone looking over a shoulder, or sent twice at
the same moment, opens the account once: the second request finds the step already taken
(on PostgreSQL it waits for the first one's row lock, then sees the new value).
"""

from __future__ import annotations

import sqlalchemy as sa
from flask_security import Totp, UserMixin
from passlib.exc import TokenError

from app.db import db_session
from models import User


class OneTimeTotp(Totp):
    def verify_totp(self, token: str, totp_secret: str, user: UserMixin, window: int = 0) -> bool:
        try:
            match = self._totp.verify(
                token,
                totp_secret,
                window=window,
                last_counter=getattr(user, "tf_totp_last_counter", None),
            )
        except TokenError:
            return False
        return claim_step(user_id=user.id, counter=match.counter)


def claim_step(*, user_id: int, counter: int) -> bool:
    """Record `counter` as the user's last accepted step unless it (or a later one) was
    accepted already; True when this call took it. Flushes in the request's transaction."""
    table = User.__table__
    last = table.c.tf_totp_last_counter
    result = db_session().execute(
        sa.update(table)
        .where(table.c.id == user_id, sa.or_(last.is_(None), last < counter))
        .values(tf_totp_last_counter=counter)
    )
    return result.rowcount == 1
