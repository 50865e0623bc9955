"""Jinja filters for numbers, labels and scores."""

from __future__ import annotations

from flask import Flask


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
        text = getattr(value, "value", value)
        return str(text).replace("_", " ").replace("+", " + ")

    @app.template_filter("percent")
    def percent(score: float | None) -> str:
        """A cosine-like score in [-1, 1] shown as a 0-100 fit."""
        if score is None:
            return ""
        return f"{max(0.0, min(1.0, score)) * 100:.0f}"
