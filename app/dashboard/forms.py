"""The account page's form."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import RadioField, SelectChoice
from wtforms.validators import InputRequired

from models import NotificationPreference

PREFERENCE_CHOICES = [
    SelectChoice(NotificationPreference.instant.value, "Right away: one email per event"),
    SelectChoice(NotificationPreference.daily.value, "A daily digest"),
    SelectChoice(NotificationPreference.weekly.value, "A weekly digest"),
    SelectChoice(NotificationPreference.off.value, "No match emails"),
]


class NotificationForm(FlaskForm):
    notification_preference = RadioField(
        "Match emails",
        choices=PREFERENCE_CHOICES,
        validators=[InputRequired("Please choose how often we may email you about matches.")],
        description="New matches and interest from the other side. Introductions and account "
        "emails (confirmation, password reset) are always sent. Every email has a one-click "
        "unsubscribe link.",
    )
