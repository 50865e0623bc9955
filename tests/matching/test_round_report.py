"""Why a proposal got no offer in a round, and what the equity option changed: the sentences
an administrator reads on the review page, computed from the pass's arrays."""

from __future__ import annotations

import numpy as np
import pytest

from matching.eligibility import CONSTRAINTS
from matching.round_report import (
    REASON_HEADINGS,
    equity_effect,
    explain_unassigned,
    fit_out_of_100,
)


def _no_failures(rows: int, offers: int) -> dict[str, np.ndarray]:
    return {name: np.zeros((rows, offers), dtype=bool) for name in CONSTRAINTS}


def _explain(scores, *, failures=None, hours=None, budget=None, caps=None, **options):
    scores = np.asarray(scores, dtype=np.float64)
    rows, offers = scores.shape
    return explain_unassigned(
        scores,
        failures if failures is not None else _no_failures(rows, offers),
        np.asarray(hours if hours is not None else [100.0] * rows),
        np.asarray(budget if budget is not None else [1000.0] * offers),
        np.asarray(caps if caps is not None else [1] * offers),
        **options,
    )


def test_no_offer_of_the_kind() -> None:
    [reason] = _explain(np.zeros((1, 0)), failures={})
    assert reason.code == "no_offers"
    assert reason.text == "No offer of this kind took part in the round."
    assert reason.heading == "No offer of this kind took part"


def test_more_hours_than_any_offer_gives_one_project_names_the_largest_limit() -> None:
    failures = _no_failures(1, 2)
    failures["hours_per_project"][:] = True
    failures["gpu_memory"][0, 0] = True
    [reason] = _explain(
        [[0.6, 0.5]],
        failures=failures,
        hours=[50_000],
        max_hours_per_project=np.array([5_000.0, 8_000.0]),
    )
    assert reason.code == "per_project_limit"
    assert reason.text == (
        "It needs 50,000 GPU hours, more than any offer gives one project "
        "(the largest limit is 8,000)."
    )


def test_no_eligible_offer_counts_the_commonest_failures_in_words() -> None:
    failures = _no_failures(1, 3)
    failures["publication_terms"][0, :2] = True
    failures["gpu_memory"][0, 2] = True
    [reason] = _explain([[0.5, 0.5, 0.5]], failures=failures)
    assert reason.code == "not_eligible"
    assert reason.text == (
        "No eligible offer: 2 of 3 do not allow the open publication it requires; "
        "1 of 3 has less GPU memory than it needs."
    )
    every = _no_failures(1, 2)
    every["excluded_by_proposal"][:] = True
    [reason] = _explain([[0.5, 0.5]], failures=every)
    assert (
        reason.text == "No eligible offer: all 2 offers belong to companies the academic excluded."
    )


def test_offers_the_round_set_aside_are_named() -> None:
    unverified = np.array([[True, False]])
    dismissed = np.array([[False, True]])
    [only_unverified] = _explain([[0.6, 0.5]], left_out={"unverified": np.array([[True, True]])})
    assert only_unverified.code == "unverified"
    assert only_unverified.text == (
        "The 2 offers it is eligible for are from unverified organisations, "
        "which this round leaves out."
    )
    [mixed] = _explain([[0.6, 0.5]], left_out={"unverified": unverified, "dismissed": dismissed})
    assert mixed.code == "left_out"
    assert mixed.text == (
        "Every offer it is eligible for (2) was left out: 1 from unverified organisations, "
        "which this round leaves out; 1 dismissed by one side."
    )
    # An ineligible offer does not count among those set aside.
    failures = _no_failures(1, 2)
    failures["ip_terms"][0, 1] = True
    [one] = _explain(
        [[0.6, 0.5]], failures=failures, left_out={"dismissed": np.array([[True, False]])}
    )
    assert one.code == "dismissed"
    assert one.text == "One side dismissed the match with every offer it is eligible for."


def test_below_the_minimum_fit_never_reads_as_reaching_it() -> None:
    [reason] = _explain([[0.2999, 0.1]], min_score=0.3)
    assert reason.code == "below_min_score"
    assert reason.best_offer == 0 and reason.best_fit == 29
    assert (
        reason.text == "Its best eligible offer fits 29/100, below the round's minimum of 30/100."
    )
    [negative] = _explain([[-0.1]])
    assert negative.text == "Its best eligible offer fits 0/100: too poor a fit to assign."


def test_full_offers_and_offers_filled_by_higher_scores() -> None:
    [full] = _explain([[0.6, 0.5]], caps=[0, 0])
    assert full.code == "no_capacity"
    assert full.text == "Every offer it fits has no project places left (its best fit: 60/100)."
    [short] = _explain([[0.6, 0.5]], hours=[900], budget=[500, 800])
    assert short.text == (
        "Every offer it fits has fewer than the 900 GPU hours it needs left (its best fit: 60/100)."
    )
    [outscored] = _explain([[0.41, 0.55]], min_score=0.3)
    assert outscored.code == "outscored" and outscored.best_offer == 1
    assert outscored.text == (
        "All 2 offers it fits were filled by proposals with higher scores (its best fit: 55/100)."
    )
    [fair] = _explain([[0.41, 0.1]], min_score=0.3, equity=True)
    assert fair.text == (
        "The one offer it fits was filled by proposals the round preferred (higher scores or "
        "the equity option) (its best fit: 41/100)."
    )


def test_every_reason_code_has_a_heading_and_rows_are_independent() -> None:
    failures = _no_failures(3, 1)
    failures["offer_open"][1, 0] = True
    reasons = _explain([[0.5], [0.5], [0.1]], failures=failures, min_score=0.3)
    assert [r.code for r in reasons] == ["outscored", "not_eligible", "below_min_score"]
    assert all(r.heading == REASON_HEADINGS[r.code] for r in reasons)
    assert reasons[1].text == "No eligible offer: the only offer is closed or expired."


@pytest.mark.parametrize(
    ("score", "expected"), [(0.5, 50), (0.559, 55), (1.3, 100), (-0.2, 0), (float("nan"), 0)]
)
def test_fit_out_of_100_rounds_down_and_clips(score: float, expected: int) -> None:
    assert fit_out_of_100(score) == expected


def test_equity_effect_compares_with_the_plain_allocation() -> None:
    scores = np.array([[0.8, 0.0], [0.7, 0.0], [0.0, 0.3]])
    plain = np.array([0, -1, 1])
    fair = np.array([-1, 0, 1])
    effect = equity_effect(fair, plain, scores, priority=np.array([False, True, False]))
    assert (effect.assigned, effect.assigned_plain) == (2, 2)
    assert (effect.priority_assigned, effect.priority_assigned_plain) == (1, 0)
    assert (effect.lowest_fit, effect.lowest_fit_plain) == (30, 30)
    assert effect.total_change == pytest.approx((1.0 - 1.1) / 1.1)
    nothing = equity_effect(np.array([-1]), np.array([-1]), np.zeros((1, 1)))
    assert nothing.lowest_fit is None and nothing.total_change == 0.0
    assert nothing.priority_assigned is None
