"""Administration forms."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import FloatField, RadioField, SelectChoice, StringField
from wtforms.validators import InputRequired, Length, NumberRange
from wtforms.widgets import NumberInput

from app.proposals.forms import MultiCheckboxField
from app.services.partners import SCOPES


class RoundForm(FlaskForm):
    """The options of a new allocation round (solved and stored as a draft on submit)."""

    equity = RadioField(
        "Equity option",
        choices=[
            SelectChoice("none", "None: maximise the total score"),
            SelectChoice("priority", "Priority: favour self-declared under-resourced labs"),
            SelectChoice("maxmin", "Max-min: raise the lowest score among assigned proposals"),
        ],
        default="none",
        validators=[InputRequired(message="Choose an equity option.")],
        description="How to trade total score for fairness, e.g. Priority to give small labs "
        "a better chance at scarce GPU hours.",
    )
    min_score = FloatField(
        "Minimum score",
        default=0.3,
        widget=NumberInput(step="0.01", min=0, max=1),
        validators=[
            InputRequired(message="Enter a minimum score between 0 and 1."),
            NumberRange(min=0, max=1, message="The minimum score must be between 0 and 1."),
        ],
        description="Pairs scoring below this are never assigned, e.g. 0.3; 0 allows any "
        "positive score.",
    )


class ModerationForm(FlaskForm):
    """Hiding or showing a proposal or offer, with an optional reason for the log."""

    reason = StringField(
        "Reason (optional)",
        validators=[Length(max=500, message="Keep the reason under 500 characters.")],
        description="Recorded in the log, e.g. Duplicate of proposal 12.",
    )


class TokenForm(FlaskForm):
    """A new partner API token: who holds it and what it may read."""

    name = StringField(
        "Partner",
        validators=[
            InputRequired(message="Give the partner's name."),
            Length(max=200, message="Keep the name under 200 characters."),
        ],
        description="Who will hold the token, e.g. Northern Research Council.",
    )
    scopes = MultiCheckboxField(
        "What it may read",
        choices=[SelectChoice(scope, f"{scope}: {what}") for scope, what in SCOPES.items()],
        default=[scope for scope in SCOPES if scope != "contacts"],
        validators=[InputRequired(message="Choose at least one scope.")],
        description="Contacts shares the names and emails of introduced people: give it only "
        "to partners who need them.",
    )
