"""The search form: a GET form, so every search is a link."""

from __future__ import annotations

from typing import Any, cast

from flask_wtf import FlaskForm
from wtforms import (
    Field,
    RadioField,
    SearchField,
    SelectChoice,
    SelectField,
    StringField,
)
from wtforms.validators import Length, NumberRange, Optional, Regexp

from app.fields import WholeNumberField
from app.services.search import FilterOptions, SearchCriteria, SearchKind
from models import PublicationTerms

TERMS_LABELS = {
    PublicationTerms.allowed: "Publication allowed",
    PublicationTerms.after_review: "Publication after the company's review",
    PublicationTerms.not_allowed: "No publication",
}


class SearchForm(FlaskForm):
    class Meta:
        csrf = False  # a GET form that changes nothing; its URL is the search's link

    q = SearchField(
        "Search proposals and offers",
        validators=[Optional(), Length(max=200)],
        description="Words or a description of the work, e.g. protein structure prediction",
    )
    type = RadioField(
        "Show",
        choices=[
            SelectChoice("all", "All"),
            SelectChoice("proposals", "Proposals"),
            SelectChoice("offers", "Offers"),
        ],
        default="all",
        invalid_choice_message="Choose all, proposals or offers.",
    )
    area = SelectField(
        "Research area",
        default="",
        description="Proposals only: offers have no research area",
        invalid_choice_message="Choose a research area from the list.",
    )
    gpu_type = StringField(
        "GPU type",
        validators=[
            Optional(),
            Length(max=100),
            Regexp(
                r"^[\w .+/()-]*\Z",
                message="Use letters, digits, spaces and . + - / ( ) only, e.g. RTX 6000 Ada.",
            ),
        ],
        description="Offered or asked for, in any letter case, e.g. H100",
    )
    min_hours = WholeNumberField(
        "Minimum GPU hours",
        validators=[
            Optional(),
            NumberRange(
                min=0,
                max=100_000_000,
                message="Enter a number of GPU hours from 0 to 100,000,000, e.g. 500.",
            ),
        ],
        invalid_value_message="Enter a whole number of GPU hours, e.g. 500.",
        description="Offers with at least this budget, proposals needing at least this many, "
        "e.g. 500",
    )
    domain = SelectField(
        "Data domain",
        default="",
        description="Data offered or needed, e.g. healthcare",
        invalid_choice_message="Choose a data domain from the list.",
    )
    terms = SelectField(
        "Publication terms",
        choices=[
            SelectChoice("", "Any terms"),
            *(SelectChoice(terms.value, label) for terms, label in TERMS_LABELS.items()),
        ],
        default="",
        description="Offers with these terms and proposals that accept them",
        invalid_choice_message="Choose publication terms from the list.",
    )
    page = WholeNumberField(
        "Page",
        validators=[Optional(), NumberRange(min=1, message="Pages start at 1.")],
        invalid_value_message="Enter a page number, e.g. 2.",
        description="Which page of results, e.g. 2",
    )

    def __init__(self, *args: Any, options: FilterOptions, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.area.choices = [
            SelectChoice("", "Any area"),
            *(SelectChoice(area) for area in options.areas),
        ]
        self.domain.choices = [
            SelectChoice("", "Any domain"),
            *(SelectChoice(domain) for domain in options.domains),
        ]
        self.gpu_types = options.gpu_types

    def filters(self) -> tuple[Field, ...]:
        """The fields folded under "Filters" (the search words and "Show" stay in view)."""
        return (self.area, self.gpu_type, self.min_hours, self.domain, self.terms)

    def active_filters(self) -> int:
        """How many filters hold something, valid or not: what the folded "Filters" counts."""
        return sum(1 for f in self.filters() if str(f.raw_data[0] if f.raw_data else "").strip())

    def filters_open(self) -> bool:
        """Show the filters unfolded when one is set or refused, so it is never out of sight."""
        return bool(self.active_filters() or any(f.errors for f in self.filters()))

    def criteria(self) -> SearchCriteria:
        return SearchCriteria(
            text=(self.q.data or "").strip(),
            kind=cast(SearchKind, self.type.data),
            area=self.area.data or None,
            gpu_type=(self.gpu_type.data or "").strip() or None,
            min_hours=self.min_hours.data,
            domain=self.domain.data or None,
            terms=PublicationTerms(self.terms.data) if self.terms.data else None,
        )

    def link_args(self) -> dict[str, str]:
        """The search's parameters (without the page), for links to its other pages."""
        fields = (self.q, self.type, self.area, self.gpu_type, self.min_hours, self.domain)
        args = {f.name: str(f.data).strip() for f in (*fields, self.terms) if f.data}
        if args.get("type") == "all":
            del args["type"]
        return args
