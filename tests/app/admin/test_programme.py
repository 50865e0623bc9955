"""The programme report: the funnel from suggestion to outcome, hours, time to agreement,
outcomes by field and lab, on the admin page and as CSV, for administrators only."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from html import unescape
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlmodel import Session

from app.services.programme import programme_report


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def test_the_report_follows_each_pair_to_its_furthest_step(
    session: Session, programme: dict[str, Any]
) -> None:
    report = programme_report(session=session)
    assert {key: count for key, _, count in report.funnel} == {
        "suggested": 7,
        "interested": 5,
        "introduced": 4,
        "talking": 4,
        "agreement_signed": 3,
        "started": 2,
        "outcome": 3,
        "published": 1,
    }
    assert (report.gpu_hours_granted, report.gpu_hours_used) == (1700, 1100)
    assert report.days_to_agreement_median == 20.0 and report.agreements_timed == 3
    labs = {row.group: row for row in report.by_lab}
    under = labs["Under-resourced labs"]
    assert (under.introduced, under.agreement_signed, under.published) == (3, 2, 1)
    assert (under.gpu_hours_granted, under.gpu_hours_used) == (1200, 1000)
    assert labs["Typical labs"].ended_without_result == 1
    assert labs["Well-resourced labs"].introduced == 0
    fields = {row.group: row for row in report.by_field}
    assert (fields["energy"].introduced, fields["vision"].introduced) == (3, 2)


def test_partners_see_only_public_pairs(session: Session, programme: dict[str, Any]) -> None:
    report = programme_report(session=session, public_only=True)
    funnel = {key: count for key, _, count in report.funnel}
    assert (funnel["suggested"], funnel["introduced"], funnel["outcome"]) == (6, 3, 2)
    assert (report.gpu_hours_granted, report.gpu_hours_used) == (1500, 900)
    assert report.days_to_agreement_median == 20.0 and report.agreements_timed == 2


def test_an_administrator_reads_the_page_and_downloads_the_table(
    client: FlaskClient,
    auth: Any,
    make_admin: Callable[..., Any],
    programme: dict[str, Any],
) -> None:
    admin = make_admin(email="root@example.org")
    auth.login(admin.email)
    page = client.get("/admin/programme")
    assert page.status_code == 200
    text = _text(page.get_data(as_text=True))
    assert "Agreement signed 3" in text and "Published 1" in text
    assert "GPU hours granted 1,700" in text and "GPU hours used 1,100" in text
    assert "median 20.0 days from the introduction (3 agreements)" in text
    assert "Under-resourced labs 3 2 2 1 1 0 1,200 1,000" in text
    assert "No model fitted yet: today's fixed weights rank" in text
    download = client.get("/admin/programme.csv")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert "attachment" in download.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(download.get_data(as_text=True))))
    under = next(r for r in rows if r["grouping"] == "lab" and r["group"].startswith("Under"))
    assert (under["introduced"], under["published"], under["gpu_hours_used"]) == ("3", "1", "1000")
    assert {r["group"] for r in rows if r["grouping"] == "field"} == {"energy", "vision"}


@pytest.mark.parametrize("path", ["/admin/programme", "/admin/programme.csv"])
def test_others_are_refused(
    client: FlaskClient,
    auth: Any,
    make_user: Callable[..., Any],
    programme: dict[str, Any],
    path: str,
) -> None:
    anonymous = client.get(path)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    auth.login(make_user(email="someone@example.org").email)
    refused = client.get(path)
    assert refused.status_code == 403
    assert "1,700" not in refused.get_data(as_text=True)
