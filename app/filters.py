"""Jinja filters for numbers, labels and scores."""

from __future__ import annotations

from flask import Flask

from matching import strength

# Stored values that do not read well with underscores turned into spaces.
LABELS = {
    "co_authorship": "co-authorship",
    "compute+data": "compute and data",
    "company_owned": "company-owned",
    "under_resourced": "under-resourced",
    "well_resourced": "well-resourced",
    "on_premises": "on premises",
    "api": "API",
    "after_review": "after the company's review",
    "not_allowed": "not allowed",
}


def register(app: Flask) -> None:
    @app.context_processor
    def endpoints() -> dict[str, object]:
        """Lets the layout link to optional pages only when they are registered."""
        return {"url_map_endpoints": app.view_functions}

    @app.template_filter("thousands")
    def thousands(value: int | float | None) -> str:
        return "" if value is None else f"{value:,.0f}"

    @app.template_filter("label")
    def label(value: object) -> str:
        text = str(getattr(value, "value", value))
        return LABELS.get(text, text.replace("_", " "))

    @app.template_filter("strength")
    def strength_label(score: float | None) -> str:
        """A total match score in words, e.g. "Strong match" (matching.scoring.strength)."""
        return "" if score is None else strength(score)

    @app.template_filter("percent")
    def percent(score: float | None) -> str:
        """A cosine-like score in [-1, 1] shown as a 0-100 fit."""
        if score is None:
            return ""
        return f"{max(0.0, min(1.0, score)) * 100:.0f}"
