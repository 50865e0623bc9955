"""The sign-in view of a `user` row: the user model Flask-Security works with.

`models.User` stays free of Flask (the layering rule), so the sign-in behaviour lives here:
`Account` is mapped onto the same `user` table, with Flask-Security's `UserMixin`. Domain code
keeps using `models.User`; only authentication and `current_user` see an `Account`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_security import UserMixin
from sqlalchemy.orm import registry

from models import NotificationPreference, Role, User, utcnow


@dataclass(frozen=True)
class RoleName:
    """The role column seen as a Flask-Security role (it needs `.name` and permissions)."""

    name: str

    def get_permissions(self) -> set[str]:
        return set()


class Account(UserMixin):
    id: int
    email: str
    name: str
    role: Role
    organisation_id: int | None
    password: str
    active: bool

    def __init__(self, **fields: Any) -> None:
        now = utcnow()
        defaults = {
            "active": True,
            "notification_preference": NotificationPreference.instant,
            "created_at": now,
            "updated_at": now,
        }
        fields.pop("roles", None)  # the role is a column; see `roles`
        for name, value in {**defaults, **fields}.items():
            setattr(self, name, value)

    @property
    def roles(self) -> list[RoleName]:
        return [RoleName(str(self.role))] if self.role else []

    @property
    def is_admin(self) -> bool:
        return self.role == Role.admin

    def check_tf_required(
        self, tf_setup_methods: list[tuple[str, str]], tf_fresh: bool
    ) -> tuple[bool, list[tuple[str, str]]]:
        """Administrators must sign in with a second factor; everyone else may choose to."""
        required, methods = super().check_tf_required(tf_setup_methods, tf_fresh)
        return required or self.is_admin, methods


_registry = registry()
_registry.map_imperatively(
    Account, User.__table__, properties={"password": User.__table__.c.password_hash}
)
