"""Forms for a company's offers and its exclusion list.

The forms only turn text into typed values; the limits and the rules between fields are the
service's (app/services/offers.py), which reuses the models' pydantic validation. Its errors
come back per field and are shown by `app.transaction.show_errors`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from annotated_types import Ge, Le
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    Field,
    RadioField,
    SelectChoice,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import Optional

from app.fields import ValueRequired, WholeNumberField
from models import AccessMode, IpStance, OfferCreate, OfferKind, PublicationTerms

KIND_CHOICES = [
    SelectChoice(OfferKind.compute.value, "Compute: GPU hours on our hardware"),
    SelectChoice(OfferKind.data.value, "Data: access to a dataset"),
    SelectChoice(OfferKind.compute_data.value, "Compute and data together"),
]
ACCESS_CHOICES = [
    SelectChoice(
        AccessMode.remote.value, "Remote: researchers log in to our machines or cloud account"
    ),
    SelectChoice(AccessMode.on_premises.value, "On premises: researchers work at our site"),
    SelectChoice(AccessMode.api.value, "Through an API"),
]
PUBLICATION_CHOICES = [
    SelectChoice(PublicationTerms.allowed.value, "Researchers may publish freely"),
    SelectChoice(
        PublicationTerms.after_review.value, "They may publish after we review the manuscript"
    ),
    SelectChoice(PublicationTerms.not_allowed.value, "Results may not be published"),
]
IP_CHOICES = [
    SelectChoice(IpStance.open.value, "Open: results belong to the researchers and the public"),
    SelectChoice(IpStance.joint.value, "Joint: we own the results together"),
    SelectChoice(IpStance.company_owned.value, "Company-owned: we own the results"),
]

COMPUTE_KINDS = frozenset(kind.value for kind in OfferKind if kind.offers_compute)
DATA_KINDS = frozenset(kind.value for kind in OfferKind if kind.offers_data)
COMPUTE_FIELDS = ("gpu_type", "gpu_memory_gb", "gpu_hours_budget", "max_hours_per_project")
DATA_FIELDS = ("dataset_description", "data_domains")

EXCLUSIONS_HELP = (
    "One per line: an institution's name as it is registered on Tandem (capitals do not "
    "matter), or an email domain, which also covers its subdomains. For example: "
    "Northbridge University, or uni.example.edu (which also covers cs.uni.example.edu)."
)


def date_limits(name: str) -> dict[str, str]:
    """The date picker's min and max: the range `OfferCreate` accepts for field `name`."""
    hints: dict[str, str] = {}
    for rule in OfferCreate.model_fields[name].metadata:
        if isinstance(rule, Ge):
            hints["min"] = rule.ge.isoformat()  # type: ignore[attr-defined]
        elif isinstance(rule, Le):
            hints["max"] = rule.le.isoformat()  # type: ignore[attr-defined]
    return hints


def lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def comma_list(text: str | None) -> list[str]:
    seen: list[str] = []
    for item in (text or "").split(","):
        item = " ".join(item.split())
        if item and item.casefold() not in {s.casefold() for s in seen}:
            seen.append(item)
    return seen


class OfferForm(FlaskForm):
    kind = RadioField(
        "Kind of offer",
        choices=KIND_CHOICES,
        default=OfferKind.compute.value,
        description="Compute is GPU time; data is access to a dataset. For example, a "
        "medical-imaging archive with GPUs to train on it is compute and data.",
    )
    title = StringField(
        "Title",
        description="5 to 300 characters that say what you offer, e.g. “H100 hours for open "
        "research in climate modelling”.",
    )
    description = TextAreaField(
        "Description",
        description="At least 20 characters: what you offer, to whom, and what you hope for. "
        "For example: “Up to 5,000 H100 hours per project for academic work on weather and "
        "climate models that publishes openly.” Proposals are matched on this text.",
    )
    gpu_type = StringField(
        "GPU type",
        validators=[Optional()],
        description="The hardware, e.g. H100, A100 or L40S.",
    )
    gpu_memory_gb = WholeNumberField(
        "GPU memory (GB per GPU)",
        invalid_value_message="Enter the memory of one GPU as a whole number of GB, e.g. 80.",
        description="Memory of one GPU in gigabytes, e.g. 80 for an H100. Optional.",
    )
    gpu_hours_budget = WholeNumberField(
        "GPU-hour budget (total)",
        invalid_value_message="Enter the budget as a whole number of GPU hours, e.g. 20000.",
        description="All the GPU hours you offer, across every project, e.g. 20000.",
    )
    max_hours_per_project = WholeNumberField(
        "Most GPU hours for one project",
        invalid_value_message="Enter the limit as a whole number of GPU hours, e.g. 5000.",
        description="The largest share one project can get, at most the total budget, e.g. 5000.",
    )
    max_projects = WholeNumberField(
        "Most projects",
        default=1,
        validators=[ValueRequired("Please enter how many projects you can take, e.g. 4.")],
        invalid_value_message="Enter how many projects as a whole number, e.g. 4.",
        description="How many projects you can back at the same time, at least 1, e.g. 4.",
    )
    dataset_description = TextAreaField(
        "The dataset",
        description="What it contains, its size, licence and conditions, e.g. “2 million "
        "de-identified chest X-rays with reports, 2015–2023, "
        "research licence.”",
    )
    data_domains = StringField(
        "Data domains",
        description="Comma-separated topics of the data, used for matching, e.g. medical "
        "imaging, radiology.",
    )
    access_mode = RadioField(
        "How researchers get access",
        choices=ACCESS_CHOICES,
        default=AccessMode.remote.value,
        description="Where the work runs, e.g. remote access to a cloud account.",
    )
    publication_terms = RadioField(
        "Publication of results",
        choices=PUBLICATION_CHOICES,
        default=PublicationTerms.allowed.value,
        description="Proposals that require open publication are never matched with an offer "
        "that forbids it. For example, “after review” suits most industrial labs.",
    )
    ip_stance = RadioField(
        "Intellectual property",
        choices=IP_CHOICES,
        default=IpStance.open.value,
        description="Who owns the results. Researchers say the most they accept, e.g. a "
        "proposal that accepts only open results never meets a company-owned offer.",
    )
    nda_required = BooleanField(
        "Researchers must sign a non-disclosure agreement",
        description="Tick if access needs an NDA, e.g. for confidential data.",
    )
    code_release_allowed = BooleanField(
        "Code written in the project may be released as open source",
        default=True,
        description="Untick if the code must stay private, e.g. because it embeds your "
        "internal tools. Proposals that require open-source code then do not match.",
    )
    deadline = DateField(
        "Deadline for projects",
        validators=[Optional()],
        render_kw=date_limits("deadline"),
        description="The last day the offer takes projects, e.g. 2030-06-30. Leave empty for "
        "no deadline.",
    )
    available_until = DateField(
        "Available until",
        validators=[Optional()],
        render_kw=date_limits("available_until"),
        description="The last day the compute or data can be used, e.g. 2030-12-31. Leave "
        "empty if open-ended.",
    )
    excluded_institutions = TextAreaField(
        "Institutions and email domains never to be matched",
        description=EXCLUSIONS_HELP,
    )
    save = SubmitField("Save as draft")
    publish = SubmitField("Publish offer")

    def ignored_fields(self) -> tuple[str, ...]:
        """The fields of a section that does not apply to the chosen kind of offer (compute
        for a data offer, data for a compute offer). The page hides that section; whatever it
        still holds is neither checked nor saved, so nothing out of sight can block a submit.
        With no valid kind chosen, every field counts."""
        kind = self.kind.data
        if kind not in COMPUTE_KINDS | DATA_KINDS:
            return ()
        ignored: tuple[str, ...] = ()
        if kind not in COMPUTE_KINDS:
            ignored += COMPUTE_FIELDS
        if kind not in DATA_KINDS:
            ignored += DATA_FIELDS
        return ignored

    def validate(self, extra_validators: Mapping[str, Any] | None = None) -> bool:
        super().validate(extra_validators)
        for name in self.ignored_fields():
            self[name].errors = []
        return not self.errors

    def refused_fields(self) -> dict[str, Field]:
        """The fields this form itself refused (e.g. text where a number belongs)."""
        return {name: field for name, field in self._fields.items() if field.errors}

    def to_data(self) -> dict[str, Any]:
        """The typed values, named as `OfferCreate`'s fields (blank hours mean none); the
        fields of a section that does not apply to the kind are left empty."""
        data = self._typed_data()
        ignored = self.ignored_fields()
        if "gpu_hours_budget" in ignored:
            data.update(
                gpu_type=None, gpu_memory_gb=None, gpu_hours_budget=0, max_hours_per_project=0
            )
        if "dataset_description" in ignored:
            data.update(dataset_description="", data_domains=[])
        return data

    def to_checked_data(self) -> dict[str, Any]:
        """`to_data`, except that a field this form refused carries the text as typed, so
        that the service's checks skip the rules that involve it instead of reading a
        default in its place (an unreadable budget is not a budget of 0)."""
        data = self.to_data()
        for name, field in self.refused_fields().items():
            if name in data:
                data[name] = field.raw_data[0] if field.raw_data else None
        return data

    def _typed_data(self) -> dict[str, Any]:
        return {
            "kind": self.kind.data,
            "title": (self.title.data or "").strip(),
            "description": (self.description.data or "").strip(),
            "gpu_type": (self.gpu_type.data or "").strip() or None,
            "gpu_memory_gb": self.gpu_memory_gb.data,
            "gpu_hours_budget": self.gpu_hours_budget.data or 0,
            "max_hours_per_project": self.max_hours_per_project.data or 0,
            "max_projects": self.max_projects.data,
            "dataset_description": (self.dataset_description.data or "").strip(),
            "data_domains": comma_list(self.data_domains.data),
            "access_mode": self.access_mode.data,
            "publication_terms": self.publication_terms.data,
            "ip_stance": self.ip_stance.data,
            "nda_required": bool(self.nda_required.data),
            "code_release_allowed": bool(self.code_release_allowed.data),
            "deadline": self.deadline.data,
            "available_until": self.available_until.data,
            "excluded_institutions": lines(self.excluded_institutions.data),
        }

    def fill_from(self, offer: Any) -> None:
        """Show an existing offer's values (for the edit page)."""
        for name in (
            "title",
            "description",
            "gpu_type",
            "gpu_memory_gb",
            "gpu_hours_budget",
            "max_hours_per_project",
            "max_projects",
            "dataset_description",
            "nda_required",
            "code_release_allowed",
            "deadline",
            "available_until",
        ):
            getattr(self, name).data = getattr(offer, name)
        for name in ("kind", "access_mode", "publication_terms", "ip_stance"):
            getattr(self, name).data = getattr(offer, name).value
        self.data_domains.data = ", ".join(offer.data_domains)
        self.excluded_institutions.data = "\n".join(offer.excluded_institutions)


class ExclusionsForm(FlaskForm):
    excluded_institutions = TextAreaField(
        "Institutions and email domains never to be matched",
        description=EXCLUSIONS_HELP,
    )
    save = SubmitField("Save the list for all our offers")
