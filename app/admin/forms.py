"""Administration forms."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, RadioField, SelectChoice, StringField
from wtforms.validators import InputRequired, Length, NumberRange

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
    min_fit = IntegerField(
        "Minimum fit (out of 100)",
        default=30,
        validators=[
            InputRequired(message="Enter a minimum fit between 0 and 100."),
            NumberRange(min=0, max=100, message="The minimum fit must be between 0 and 100."),
        ],
        render_kw={"inputmode": "numeric", "min": 0, "max": 100},
        description="Pairs that fit less than this are never assigned, e.g. 30 (the fit "
        "shown on match cards); 0 allows any positive fit.",
    )
    include_unverified = BooleanField(
        "Include offers from unverified organisations",
        default=False,
        description="Off by default: a round promises capacity on Tandem's word, so only "
        "verified organisations' offers take part. The review lists the offers left out.",
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
