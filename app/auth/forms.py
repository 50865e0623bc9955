"""Sign-up form: Flask-Security's registration plus name, role and organisation."""

from __future__ import annotations

from typing import Any

from flask_security import RegisterFormV2
from wtforms import RadioField, SelectChoice, StringField
from wtforms.validators import DataRequired, Length

from app.db import db_session
from app.services import accounts


def one_line(value: str | None) -> str | None:
    """Names are one line of text: line breaks and runs of spaces become single spaces."""
    return " ".join(value.split()) if isinstance(value, str) else value


class TandemRegisterForm(RegisterFormV2):
    name = StringField(
        "Your name",
        validators=[DataRequired("Please enter your name."), Length(max=200)],
        filters=[one_line],
        description="Shown to a company only once you have both agreed to meet.",
    )
    role = RadioField(
        "I am joining as",
        choices=[
            SelectChoice(
                "academic", "An academic: I will propose research and look for compute or data"
            ),
            SelectChoice(
                "company", "A company member: I will offer compute or data to research projects"
            ),
        ],
        validators=[DataRequired("Please choose how you are joining.")],
    )
    organisation = StringField(
        "Organisation",
        validators=[DataRequired("Please name your organisation."), Length(min=2, max=200)],
        filters=[one_line],
        description="Your university, institute or company, e.g. Northbridge University. "
        "Members with an address at the same email domain join the same organisation.",
    )

    def validate(self, **kwargs: Any) -> bool:
        valid = super().validate(**kwargs)
        if self.organisation.data and self.email.data and not self.email.errors:
            try:
                accounts.find_organisation(
                    session=db_session(),
                    name=self.organisation.data,
                    email=self.email.data,
                    role=self.role.data,
                )
            except accounts.OrganisationTaken as exc:
                self.organisation.errors = [*self.organisation.errors, str(exc)]
                valid = False
        return valid
