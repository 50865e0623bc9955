"""An academic's publications: added by hand or pasted as BibTeX."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import StringField, SubmitField, TextAreaField
from wtforms.validators import InputRequired, Length

from app.fields import ValueRequired, WholeNumberField
from app.services.publications import MAX_ENTRIES_PER_PASTE, MAX_PUBLICATIONS_PER_PROFILE

# A request this size is about 500 entries; the service takes at most MAX_ENTRIES_PER_PASTE.
BIBTEX_MAX_CHARS = 200_000


class PublicationForm(FlaskForm):
    title = StringField(
        "Title",
        render_kw={"maxlength": 500},
        description="As published, e.g. “Offline reinforcement learning for battery dispatch”.",
    )
    year = WholeNumberField(
        "Year",
        validators=[ValueRequired("Please give the year of publication, e.g. 2023.")],
        invalid_value_message="Please give the year as four digits, e.g. 2023.",
        render_kw={"min": 1900, "max": 2100},
        description="The year it appeared, e.g. 2023.",
    )
    venue = StringField(
        "Venue",
        render_kw={"maxlength": 200},
        description="Journal, conference or preprint server; optional, e.g. NeurIPS or arXiv.",
    )
    abstract = TextAreaField(
        "Abstract",
        render_kw={"maxlength": 10_000, "rows": 5},
        description="Optional, but the matcher reads it: paste the paper's abstract, e.g. "
        "“We learn dispatch policies from logged grid data…”.",
    )
    submit = SubmitField("Add publication")

    def to_data(self) -> dict[str, Any]:
        return {
            "title": " ".join((self.title.data or "").split()),
            "year": self.year.data,
            "venue": (self.venue.data or "").strip(),
            "abstract": (self.abstract.data or "").strip(),
        }


class BibtexForm(FlaskForm):
    text = TextAreaField(
        "BibTeX",
        validators=[
            InputRequired("Please paste at least one BibTeX entry."),
            Length(
                max=BIBTEX_MAX_CHARS,
                message=f"Please paste at most {BIBTEX_MAX_CHARS:,} characters at a time.",
            ),
        ],
        render_kw={"rows": 10, "spellcheck": "false"},
        description="Paste entries exported from Google Scholar, DBLP, Zotero or your .bib "
        "file, e.g. @inproceedings{doe2023, title = {Learning to Dispatch}, year = {2023}, "
        "booktitle = {NeurIPS}}. We keep the title, year, venue and abstract; entries without "
        "a title or year, and titles already listed, are skipped. Up to "
        f"{MAX_ENTRIES_PER_PASTE} entries at a time, {MAX_PUBLICATIONS_PER_PROFILE} on a profile.",
    )
    submit = SubmitField("Import BibTeX")
