"""The account page's form."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import IntegerField, RadioField, SelectChoice
from wtforms.validators import InputRequired, NumberRange

from models import NotificationPreference

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
    min_fit = IntegerField(
        "Lowest fit worth an email (%)",
        validators=[
            InputRequired("Please give a fit between 0 and 100."),
            NumberRange(0, 100, "Please give a fit between 0 and 100."),
        ],
        description="We email you about a new match only when its fit (the score on your "
        "dashboard) is at least this, e.g. 30. Interest from the other side is always "
        "emailed. At most 4 emails an hour: more events than that arrive together.",
        render_kw={"inputmode": "numeric", "min": 0, "max": 100},
    )
