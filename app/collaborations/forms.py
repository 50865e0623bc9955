"""The form that moves a collaboration on, and the reason list shared with dismissals."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import DateField, RadioField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import Optional

from app.fields import WholeNumberField
from app.services import collaborations
from app.services.collaborations import AGREEMENT_LABELS, REASON_LABELS, STAGE_HELP, STAGE_LABELS
from models import CollaborationStage

REASON_CHOICES = [SelectChoice("", "Choose a reason…")] + [
    SelectChoice(reason.value, label) for reason, label in REASON_LABELS.items()
]
HOURS_MESSAGE = "Please give a whole number of GPU hours, e.g. 2000."


class AdvanceForm(FlaskForm):
    """Where the collaboration is now, with what that stage takes. The choices are the
    stages open from the current one (`for_stage`)."""

    stage = RadioField("Where is it now?", choices=[], validate_choice=False)
    agreement_kind = RadioField(
        "Kind of agreement",
        choices=[SelectChoice(kind.value, label) for kind, label in AGREEMENT_LABELS.items()],
        validate_choice=False,
        description="Needed for “Agreement signed”.",
    )
    agreement_signed_on = DateField(
        "Date the agreement was signed",
        validators=[Optional()],
        description="Today or earlier, e.g. 2026-11-30. Needed for “Agreement signed”.",
    )
    gpu_hours_granted = WholeNumberField(
        "GPU hours granted",
        invalid_value_message=HOURS_MESSAGE,
        description="The hours actually granted (0 if no compute). Needed for “Started”.",
    )
    gpu_hours_used = WholeNumberField(
        "GPU hours used so far (optional)", invalid_value_message=HOURS_MESSAGE
    )
    outcome_link = StringField(
        "DOI or link of the result",
        description="A DOI such as 10.1234/abcd.5678, or a link starting with https://. "
        "Needed for “Published”.",
        render_kw={"maxlength": collaborations.LINK_LIMIT},
    )
    end_reason = SelectField(
        "Why it ended",
        choices=REASON_CHOICES,
        validate_choice=False,
        description="Needed for “Ended without result”.",
    )
    end_reason_text = TextAreaField(
        "More about why (optional)",
        description="Required when the reason is “Something else”. Both sides and Tandem's "
        "administrators see it.",
        render_kw={"maxlength": collaborations.TEXT_LIMIT, "rows": 3},
    )

    def for_stage(self, stage: CollaborationStage) -> AdvanceForm:
        self.stage.choices = [
            SelectChoice(s.value, f"{STAGE_LABELS[s]}: {STAGE_HELP[s]}")
            for s in collaborations.next_stages(stage)
        ]
        return self

    def change(self) -> collaborations.Change:
        data: dict[str, Any] = self.data
        return collaborations.Change(
            stage=data["stage"] or "",
            agreement_kind=data["agreement_kind"] or None,
            agreement_signed_on=data["agreement_signed_on"],
            gpu_hours_granted=data["gpu_hours_granted"],
            gpu_hours_used=data["gpu_hours_used"],
            outcome_link=data["outcome_link"] or "",
            end_reason=data["end_reason"] or None,
            end_reason_text=data["end_reason_text"] or "",
        )
