"""The account page's form."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, RadioField, SelectChoice
from wtforms.validators import InputRequired, NumberRange

from app.fields import ValueRequired, WholeNumberField
from matching.scoring import STRENGTH_BANDS
from models import NotificationPreference

# "Strong match from 50, Good match from 38, …": what the score's words mean.
BANDS = ", ".join(f"{label} from {round(lowest * 100)}" for lowest, label in STRENGTH_BANDS[:-1])
PREFERENCE_CHOICES = [
    SelectChoice(NotificationPreference.instant.value, "Right away, as things happen"),
    SelectChoice(NotificationPreference.daily.value, "A daily digest"),
    SelectChoice(NotificationPreference.weekly.value, "A weekly digest"),
    SelectChoice(NotificationPreference.off.value, "No match emails"),
]


class NotificationForm(FlaskForm):
    """How often and about what the user hears of matches."""

    notification_preference = RadioField(
        "Match emails",
        choices=PREFERENCE_CHOICES,
        validators=[InputRequired("Please choose how often we may email you about matches.")],
        description="New matches and interest from the other side. Introductions and account "
        "emails (confirmation, password reset) are always sent. Every email has a one-click "
        "unsubscribe link.",
    )
    min_fit = WholeNumberField(
        "Lowest match score worth an email (0 to 100)",
        validators=[
            ValueRequired("Please give a score between 0 and 100, e.g. 30."),
            NumberRange(0, 100, "Please give a score between 0 and 100, e.g. 30."),
        ],
        invalid_value_message="Please give a score between 0 and 100, e.g. 30.",
        description="We email you about a new match only when its score (shown on each match "
        f"out of 100) is at least this, e.g. 30. {BANDS}. Interest from the other side is "
        "always emailed. At most 4 emails an hour: more events than that arrive together.",
    )
    collaboration_reminders = BooleanField(
        "Remind me of collaborations that have not moved",
        description="One email at most per reminder period (two weeks unless the site sets "
        "another), listing your collaboration records that have stayed at one stage that long.",
    )
