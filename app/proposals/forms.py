"""The proposal form. Limits come from the models: the service validates with
`ProposalCreate`/`ProposalUpdate`, and the HTML hints below are read from the same fields."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from annotated_types import Ge, Le, MaxLen
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    RadioField,
    SelectChoice,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Optional
from wtforms.widgets import CheckboxInput, ListWidget, TextArea

from app.fields import ValueRequired, WholeNumberField
from models import CollaborationKind, IpStance, LabResourceLevel, ProposalCreate


def _hint(limit: Any) -> int | str:
    return limit.isoformat() if isinstance(limit, date) else int(limit)


def limits(name: str) -> dict[str, int | str]:
    """HTML hints (min, max, maxlength) mirroring the model's limits on field `name`."""
    hints: dict[str, int | str] = {}
    for rule in ProposalCreate.model_fields[name].metadata:
        if isinstance(rule, Ge):
            hints["min"] = _hint(rule.ge)
        elif isinstance(rule, Le):
            hints["max"] = _hint(rule.le)
        elif isinstance(rule, MaxLen) and name != "excluded_companies":
            hints["maxlength"] = rule.max_length
    return hints


class MultiCheckboxField(SelectMultipleField):
    """Several choices as a list of checkboxes (rendered as a fieldset with a legend)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class CommaListField(StringField):
    """A list of short strings typed as one line, separated by commas (or new lines)."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        if valuelist:
            items: list[str] = []
            seen: set[str] = set()
            for item in re.split(r"[,\n]", valuelist[0] or ""):
                item = " ".join(item.split())
                if item and item.casefold() not in seen:
                    seen.add(item.casefold())
                    items.append(item)
            self.data = items

    def process_data(self, value: Any) -> None:
        self.data = list(value or [])

    def _value(self) -> str:
        if self.raw_data:
            return str(self.raw_data[0])
        # A text area shows one entry a line, as its help suggests typing them.
        separator = "\n" if isinstance(self.widget, TextArea) else ", "
        return separator.join(self.data or [])


COLLABORATION_LABELS = {
    CollaborationKind.compute: "Compute (GPU time)",
    CollaborationKind.data: "Data access",
    CollaborationKind.co_authorship: "Co-authorship with company researchers",
    CollaborationKind.internship: "Internship or visiting position",
    CollaborationKind.engineering_support: "Engineering support",
    CollaborationKind.advisory: "Advice from industry experts",
}
IP_LABELS = {
    IpStance.open: "Open: results belong to no one (public domain or open licences)",
    IpStance.joint: "Joint: the university and the company may share ownership",
    IpStance.company_owned: "Company-owned: I accept that the company owns the results",
}
LAB_LABELS = {
    LabResourceLevel.under_resourced: "Under-resourced: little or no compute of our own",
    LabResourceLevel.typical: "Typical for my field",
    LabResourceLevel.well_resourced: "Well-resourced: we have substantial compute",
}


class ProposalForm(FlaskForm):
    title = StringField(
        "Title",
        render_kw=limits("title"),
        description="One line that says what you will do, e.g. “Offline reinforcement "
        "learning for grid battery dispatch”.",
    )
    abstract = TextAreaField(
        "Abstract",
        render_kw={**limits("abstract"), "rows": 8},
        description="The research question, the method and what you will publish, in a few "
        "paragraphs (at least 20 characters). Companies and the matcher read this first, e.g. "
        "“We learn dispatch policies from five years of logged grid data and release them…”.",
    )
    research_areas = CommaListField(
        "Research areas",
        description="Separate areas with commas, e.g. “reinforcement learning, energy "
        "systems”. The first one describes you to companies before an introduction.",
    )
    gpu_hours_needed = WholeNumberField(
        "GPU hours needed",
        validators=[Optional()],
        invalid_value_message="Please enter a whole number of GPU hours, e.g. 2000.",
        render_kw=limits("gpu_hours_needed"),
        description="Total GPU hours for the whole project; leave empty or 0 if you need no "
        "compute, e.g. 2000 (about 8 GPUs for 10 days).",
    )
    gpu_memory_min_gb = WholeNumberField(
        "Minimum GPU memory (GB)",
        validators=[Optional()],
        invalid_value_message="Please enter a whole number of gigabytes, e.g. 40.",
        render_kw=limits("gpu_memory_min_gb"),
        description="Memory per GPU that your models need, in GB; leave empty if any GPU "
        "will do, e.g. 40.",
    )
    gpu_type = StringField(
        "GPU type",
        render_kw=limits("gpu_type"),
        description="Only if you need a specific accelerator; leave empty otherwise, e.g. H100.",
    )
    duration_months = WholeNumberField(
        "Duration (months)",
        validators=[ValueRequired("Please give the duration in months, e.g. 6.")],
        invalid_value_message="Please enter a whole number of months, e.g. 6.",
        default=6,
        render_kw=limits("duration_months"),
        description="How long the project runs, in whole months, e.g. 6.",
    )
    earliest_start = DateField(
        "Earliest start",
        validators=[Optional()],
        invalid_value_message="Please enter a date such as 2026-09-01.",
        render_kw=limits("earliest_start"),
        description="The first day the work can start; leave empty if it can start any time, "
        "e.g. 2026-09-01.",
    )
    data_need = TextAreaField(
        "Data needed",
        render_kw={**limits("data_need"), "rows": 4},
        description="What data you are looking for and how you would use it; leave empty if "
        "you need none, e.g. “Hourly battery telemetry from grid-scale storage sites”.",
    )
    data_domains = CommaListField(
        "Data domains",
        description="Separate domains with commas, e.g. “energy, time series”. Offers of "
        "data in these domains fit better.",
    )
    collaboration_kinds = MultiCheckboxField(
        "Collaboration wanted",
        choices=[SelectChoice(kind.value, label) for kind, label in COLLABORATION_LABELS.items()],
        invalid_choice_message="Please tick only the kinds of collaboration listed.",
        description="Tick every kind of help you would welcome, e.g. compute and co-authorship.",
    )
    requires_open_publication = BooleanField(
        "I must be free to publish the results",
        default=True,
        description="Offers that forbid publication are then never matched with this "
        "proposal. Untick only if publication after a company review is acceptable, e.g. "
        "for a thesis with an embargo.",
    )
    requires_open_source = BooleanField(
        "The code must be released as open source",
        description="Offers that do not allow code release are then never matched, e.g. "
        "tick this if you will publish your training code on GitHub.",
    )
    ip_stance = RadioField(
        "Intellectual property: the most you accept",
        choices=[SelectChoice(stance.value, label) for stance, label in IP_LABELS.items()],
        default=IpStance.open.value,
        validators=[InputRequired("Please choose the IP terms you accept.")],
        invalid_choice_message="Please choose one of the IP terms listed.",
        description="Offers asking for more than this are never matched, e.g. choose “Joint” "
        "if shared ownership with the company is fine.",
    )
    lab_resource_level = RadioField(
        "Your lab's resources",
        choices=[SelectChoice(level.value, label) for level, label in LAB_LABELS.items()],
        default=LabResourceLevel.typical.value,
        validators=[InputRequired("Please describe your lab's resources.")],
        invalid_choice_message="Please choose one of the levels listed.",
        description="Self-declared; allocation rounds may favour under-resourced labs, e.g. "
        "a small group with no GPU cluster of its own.",
    )
    excluded_companies = CommaListField(
        "Never match me with",
        widget=TextArea(),
        render_kw={"rows": 3},
        description="Companies or email domains you must not be matched with (conflicts of "
        "interest), separated by commas or one per line, e.g. “Acme AI, acme.example.com”. "
        "Companies never see this list.",
    )
    publish = SubmitField("Publish")
    save_draft = SubmitField("Save as draft")
    save = SubmitField("Save changes")

    def to_data(self) -> dict[str, Any]:
        """The typed values, keyed by the model's field names (validated by the service)."""
        return {
            "title": (self.title.data or "").strip(),
            "abstract": (self.abstract.data or "").strip(),
            "research_areas": self.research_areas.data or [],
            "gpu_hours_needed": self.gpu_hours_needed.data or 0,
            "gpu_memory_min_gb": self.gpu_memory_min_gb.data,
            "gpu_type": (self.gpu_type.data or "").strip() or None,
            "duration_months": self.duration_months.data,
            "earliest_start": self.earliest_start.data,
            "data_need": (self.data_need.data or "").strip(),
            "data_domains": self.data_domains.data or [],
            "collaboration_kinds": list(self.collaboration_kinds.data or []),
            "requires_open_publication": bool(self.requires_open_publication.data),
            "requires_open_source": bool(self.requires_open_source.data),
            "ip_stance": self.ip_stance.data,
            "lab_resource_level": self.lab_resource_level.data,
            "excluded_companies": self.excluded_companies.data or [],
        }
