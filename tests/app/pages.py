"""Reading the portal's pages in client tests the way a person reads them: form controls found
by their visible label, and a page's visible text."""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser
from typing import Any


class FormPage(HTMLParser):
    """A page's form controls, found the way a person finds them: by label (or legend) text.

    `value`, `checked` and `error` take the visible label text of a control."""

    def __init__(self, html: bytes | str) -> None:
        super().__init__(convert_charrefs=True)
        self.controls: dict[str, dict[str, Any]] = {}
        self.labels: dict[str, str] = {}
        self.legends: dict[str, str] = {}
        self.texts: dict[str, str] = {}
        self._label: dict[str, Any] | None = None
        self._legend: list[str] | None = None
        self._fieldset: list[str] = []
        self._capturing: list[tuple[str, str, int, list[str]]] = []
        self._depth: dict[str, int] = {}
        self._textarea: str | None = None
        self.feed(html.decode() if isinstance(html, bytes) else html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {key: value or "" for key, value in attrs}
        self._depth[tag] = self._depth.get(tag, 0) + 1
        if a.get("id", "").endswith(("-help", "-error")):
            self._capturing.append((a["id"], tag, self._depth[tag], []))
        if tag == "fieldset":
            self._fieldset.append(a.get("id", "").removesuffix("-field"))
        elif tag == "legend":
            self._legend = []
        elif tag == "label":
            self._label = {"for": a.get("for"), "text": [], "control": None}
        elif tag in {"input", "textarea", "select"} and a.get("id"):
            self.controls[a["id"]] = {**a, "tag": tag, "text": ""}
            if self._label is not None and not self._label["for"]:
                self._label["control"] = a["id"]
            if tag == "textarea":
                self._textarea = a["id"]

    def handle_endtag(self, tag: str) -> None:
        for entry in list(self._capturing):
            if entry[1] == tag and entry[2] == self._depth.get(tag):
                self.texts[entry[0]] = " ".join("".join(entry[3]).split())
                self._capturing.remove(entry)
        self._depth[tag] = self._depth.get(tag, 1) - 1
        if tag == "label" and self._label is not None:
            text = " ".join("".join(self._label["text"]).split())
            self.labels[text] = self._label["for"] or self._label["control"]
            self._label = None
        elif tag == "legend" and self._legend is not None:
            self.legends[" ".join("".join(self._legend).split())] = self._fieldset[-1]
            self._legend = None
        elif tag == "fieldset":
            self._fieldset.pop()
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._label is not None:
            self._label["text"].append(data)
        if self._legend is not None:
            self._legend.append(data)
        if self._textarea is not None:
            self.controls[self._textarea]["text"] += data
        for entry in self._capturing:
            entry[3].append(data)

    def control_id(self, label: str) -> str:
        if label in self.labels:
            return self.labels[label]
        if label in self.legends:
            return self.legends[label]
        raise AssertionError(f"no control labelled {label!r}; labels: {sorted(self.labels)}")

    def control(self, label: str) -> dict[str, Any]:
        """The control's attributes (and `tag`, and a textarea's `text`)."""
        return self.controls[self.control_id(label)]

    def value(self, label: str) -> str:
        control = self.controls[self.control_id(label)]
        return (
            control["text"].strip()
            if "text" in control and control["text"]
            else control.get("value", "")
        )

    def checked(self, label: str) -> bool:
        return "checked" in self.controls[self.control_id(label)]

    def error(self, label: str) -> str:
        return self.texts.get(f"{self.control_id(label)}-error", "")

    def help(self, label: str) -> str:
        return self.texts.get(f"{self.control_id(label)}-help", "")


def text_of(html: bytes) -> str:
    """The page's visible text, whitespace collapsed, entities decoded."""
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html.decode())))


# A proposal with every field filled in, as the proposal form posts it.
FULL = {
    "title": "Offline reinforcement learning for grid batteries",
    "abstract": "We learn battery dispatch policies from five years of logged grid data.",
    "research_areas": "reinforcement learning, energy systems",
    "gpu_hours_needed": "2000",
    "gpu_memory_min_gb": "40",
    "gpu_type": "H100",
    "duration_months": "9",
    "earliest_start": "2026-09-01",
    "data_need": "Hourly telemetry from grid-scale battery sites",
    "data_domains": "energy, time series",
    "collaboration_kinds": ["compute", "co_authorship"],
    "requires_open_publication": "y",
    "ip_stance": "joint",
    "lab_resource_level": "under_resourced",
    "excluded_companies": "Acme AI\nacme.example.com, acme ai",
}
