"""Flask-Security's account forms in Tandem's words.

Each form is the library's own (its validation is kept) with Tandem's labels in sentence case
and, where the library's message for an empty field would be vague ("This field is
required."), one that says what to enter. Messages the library raises itself are configured
as SECURITY_MSG_* in `app/auth/messages.py`. The forms are handed to `Security(...)`, the
documented way to customise them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from flask_security import (
    ChangePasswordForm,
    ForgotPasswordForm,
    LoginForm,
    RegisterFormV2,
    ResetPasswordForm,
    SendConfirmationForm,
    TwoFactorRescueForm,
    TwoFactorSetupForm,
    TwoFactorVerifyCodeForm,
    current_user,
)
from flask_security.utils import get_message
from wtforms import RadioField, SelectChoice, StringField
from wtforms.validators import DataRequired, Length

from app.db import db_session
from app.services import accounts
from app.services.validation import visible_text

EMAIL = "Email address"
RETYPE = "Retype password"
NEW_PASSWORD_IF_EMPTY = "Choose a new password: at least 12 characters, e.g. four unrelated words."
CODE_IF_EMPTY = "Enter the six-digit code your authenticator app shows for Tandem, e.g. 123456."


class TandemWording:
    """Relabels a Flask-Security form's fields (`labels`) and words the message for a field
    left empty (`if_empty`), after the library has built the form."""

    labels: ClassVar[dict[str, str]] = {}
    if_empty: ClassVar[dict[str, str]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, text in self.labels.items():
            self[name].label.text = text  # type: ignore[index]
        for name, message in self.if_empty.items():
            field = self[name]  # type: ignore[index]
            # A new list for this form only: the library's validators are shared.
            field.validators = [
                DataRequired(message) if isinstance(validator, DataRequired) else validator
                for validator in field.validators
            ]


# What the library says about an account rather than about what was typed. On the pages
# anyone can use (sign-in, password reset, resend confirmation) these are never shown to
# someone who has not proved the password: the answer for an address with an account and for
# one without must be the same (SECURITY_RETURN_GENERIC_RESPONSES).
ACCOUNT_STATE_MESSAGES = (
    "USER_DOES_NOT_EXIST",
    "INVALID_PASSWORD",
    "DISABLED_ACCOUNT",
    "CONFIRMATION_REQUIRED",
    "ALREADY_CONFIRMED",
)
# Held in form-level errors while the library hides field errors, so that a form whose only
# problem is an empty or malformed address is not answered as a success.
_HELD = "tandem:held-field-errors"


class UniformAnswers:
    """Keeps the field messages that reveal nothing about accounts.

    With generic responses on, the library moves every message at the email and password
    fields into one form-level "could not sign in" message, also "Enter your email address"
    for a field left empty. This form records, as it validates, which of its messages are
    only about what was typed (empty, malformed), or come after the password was proved;
    `restore_safe_errors` puts them back at their fields just before the page is rendered.
    """

    uniform_fields: ClassVar[tuple[str, ...]] = ("email", "password")

    def validate(self, **kwargs: Any) -> bool:
        valid = super().validate(**kwargs)  # type: ignore[misc]
        account_states = {get_message(name)[0] for name in ACCOUNT_STATE_MESSAGES}
        proved = bool(getattr(self, "user_authenticated", False))
        self.safe_errors: dict[str, list[str]] = {}
        self.reveals_account = False
        for name in self.uniform_fields:
            field = getattr(self, name, None)
            for message in getattr(field, "errors", None) or []:
                if proved or message not in account_states:
                    self.safe_errors.setdefault(name, []).append(message)
                else:
                    self.reveals_account = True
        if self.safe_errors:
            self.form_errors.append(_HELD)  # type: ignore[attr-defined]
        return valid

    def restore_safe_errors(self) -> None:
        safe = getattr(self, "safe_errors", None)
        if safe is None:
            return
        for name, messages in safe.items():
            getattr(self, name).errors = list(messages)
        generic = {get_message("GENERIC_AUTHN_FAILED")[0]}
        self.form_errors[:] = [  # type: ignore[attr-defined]
            message
            for message in self.form_errors  # type: ignore[attr-defined]
            if message != _HELD and (self.reveals_account or message not in generic)
        ]


def one_line(value: str | None) -> str | None:
    """Names are one line of text: line breaks and runs of spaces become single spaces, and
    a name of invisible characters only is no name."""
    return " ".join(visible_text(value).split()) if isinstance(value, str) else value


class TandemLoginForm(UniformAnswers, TandemWording, LoginForm):
    labels: ClassVar[dict[str, str]] = {
        "email": EMAIL,
        "remember": "Keep me signed in on this device",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The library puts a "Forgot password?" link under the password field; the page
        # already offers one with the other ways out, below the form.
        self.password.description = ""


class TandemRegisterForm(TandemWording, RegisterFormV2):
    labels: ClassVar[dict[str, str]] = {"email": EMAIL, "password_confirm": RETYPE}
    if_empty: ClassVar[dict[str, str]] = {
        "password": "Choose a password: at least 12 characters, e.g. four unrelated words.",
        "password_confirm": "Type your password again.",
    }

    name = StringField(
        "Your name",
        validators=[
            DataRequired("Enter your name, e.g. Ada Lovelace."),
            Length(max=200, message="Shorten your name to at most 200 characters."),
        ],
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
        validators=[DataRequired("Choose whether you join as an academic or a company member.")],
    )
    organisation = StringField(
        "Organisation",
        validators=[
            DataRequired(
                "Enter your university, institute or company, e.g. Northbridge University."
            ),
            Length(
                min=2,
                max=200,
                message="Enter your organisation's name in 2 to 200 characters, "
                "e.g. Northbridge University.",
            ),
        ],
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


class TandemForgotPasswordForm(UniformAnswers, TandemWording, ForgotPasswordForm):
    labels: ClassVar[dict[str, str]] = {"email": EMAIL}


class TandemSendConfirmationForm(UniformAnswers, TandemWording, SendConfirmationForm):
    labels: ClassVar[dict[str, str]] = {"email": EMAIL}


class TandemResetPasswordForm(TandemWording, ResetPasswordForm):
    labels: ClassVar[dict[str, str]] = {"password": "New password", "password_confirm": RETYPE}
    if_empty: ClassVar[dict[str, str]] = {
        "password": NEW_PASSWORD_IF_EMPTY,
        "password_confirm": "Type your new password again.",
    }


class TandemChangePasswordForm(TandemWording, ChangePasswordForm):
    labels: ClassVar[dict[str, str]] = {
        "password": "Current password",
        "new_password": "New password",
        "new_password_confirm": "Retype new password",
    }
    if_empty: ClassVar[dict[str, str]] = {
        "new_password": NEW_PASSWORD_IF_EMPTY,
        "new_password_confirm": "Type your new password again.",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The library checks the current password only once the other fields pass; asking
        # for it with them shows every missing field on the first submit.
        if current_user.password:
            self.password.validators = [DataRequired("Enter your current password.")]


class TandemTwoFactorSetupForm(TandemWording, TwoFactorSetupForm):
    labels: ClassVar[dict[str, str]] = {
        "setup": "How do you want to get your codes?",
        "phone": "Mobile phone number",
    }


class TandemTwoFactorVerifyCodeForm(TandemWording, TwoFactorVerifyCodeForm):
    labels: ClassVar[dict[str, str]] = {"code": "Authentication code"}
    if_empty: ClassVar[dict[str, str]] = {"code": CODE_IF_EMPTY}


class TandemTwoFactorRescueForm(TandemWording, TwoFactorRescueForm):
    labels: ClassVar[dict[str, str]] = {"help_setup": "What would help?"}
