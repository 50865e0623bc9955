"""Resource fit: coverage of hours, memory, timeline and data domains."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from matching.fit import FitInputs, resource_fit

TODAY = date(2026, 11, 28)
NAT = np.datetime64("NaT", "D")


def inputs(**overrides) -> FitInputs:
    fields = dict(
        hours_needed=np.array([1000.0, 0.0]),
        memory_needed_gb=np.array([80.0, np.nan]),
        needs_data=np.array([False, True]),
        proposal_domains=[frozenset(), frozenset({"healthcare", "medical imaging"})],
        start=np.array([NAT, NAT]),
        duration_months=np.array([12.0, 6.0]),
        has_compute=np.array([True, False]),
        has_data=np.array([False, True]),
        max_hours_per_project=np.array([500.0, 0.0]),
        memory_gb=np.array([40.0, np.nan]),
        offer_domains=[frozenset(), frozenset({"medical imaging"})],
        available_until=np.array([np.datetime64("2027-05-28"), NAT]),
    )
    fields.update(overrides)
    return FitInputs(**fields)


def test_parts_measure_coverage() -> None:
    result = resource_fit(inputs(), today=TODAY)
    assert result.parts["hours"][0, 0] == pytest.approx(0.5)
    assert result.parts["memory"][0, 0] == pytest.approx(0.5)
    assert result.parts["timeline"][0, 0] == pytest.approx(181 / 365, abs=0.02)
    assert result.parts["domains"][1, 1] == pytest.approx(0.5)
    assert not result.applies["hours"][1, 1] and not result.applies["domains"][0, 0]
    np.testing.assert_allclose(
        result.fit[0, 0],
        np.mean([0.5, 0.5, result.parts["timeline"][0, 0]]),
        rtol=1e-5,
    )
    assert result.fit[1, 1] == pytest.approx(0.5)


def test_full_coverage_scores_one_and_nothing_to_cover_is_neutral() -> None:
    result = resource_fit(
        inputs(
            max_hours_per_project=np.array([5000.0, 0.0]),
            memory_gb=np.array([80.0, np.nan]),
            available_until=np.array([NAT, NAT]),
        ),
        today=TODAY,
    )
    assert result.fit[0, 0] == pytest.approx(1.0)
    assert result.fit[0, 1] == pytest.approx(1.0)  # compute need, data offer: nothing applies
    assert result.fit.shape == (2, 2) and result.fit.dtype == np.float32


def test_a_proposal_starting_after_the_offer_ends_has_no_timeline_fit() -> None:
    late = inputs(start=np.array([np.datetime64("2027-09-01"), NAT]))
    assert resource_fit(late, today=TODAY).parts["timeline"][0, 0] == 0.0


def test_zero_memory_minimum_is_no_requirement_and_never_nan() -> None:
    result = resource_fit(
        inputs(memory_needed_gb=np.array([0.0, np.nan]), memory_gb=np.array([0.0, np.nan])),
        today=TODAY,
    )
    assert not np.isnan(result.fit).any()
    assert not result.applies["memory"][0, 0]


def test_a_start_date_in_the_past_counts_from_today() -> None:
    past = inputs(
        start=np.array([np.datetime64("2026-06-28"), NAT]),
        duration_months=np.array([6.0, 6.0]),
        available_until=np.array([np.datetime64("2027-06-28"), NAT]),
    )
    assert resource_fit(past, today=TODAY).parts["timeline"][0, 0] == pytest.approx(1.0)


def test_a_compute_only_offer_is_judged_on_compute_alone() -> None:
    """A proposal needing 1,000 GPU hours and healthcare data: the compute-only offer covering
    every hour fits fully (the data must come from a data offer, as in an allocation round),
    and the data-only offer is judged on its domains alone."""
    result = resource_fit(
        inputs(
            hours_needed=np.array([1000.0]),
            memory_needed_gb=np.array([np.nan]),
            needs_data=np.array([True]),
            proposal_domains=[frozenset({"healthcare"})],
            start=np.array([NAT]),
            duration_months=np.array([6.0]),
            max_hours_per_project=np.array([1000.0, 0.0]),
            memory_gb=np.array([np.nan, np.nan]),
            offer_domains=[frozenset(), frozenset({"healthcare"})],
            available_until=np.array([NAT, NAT]),
        ),
        today=TODAY,
    )
    assert not result.applies["domains"][0, 0] and not result.applies["hours"][0, 1]
    assert result.fit[0, 0] == pytest.approx(1.0)
    assert result.fit[0, 1] == pytest.approx(1.0)


def test_the_recompute_fit_equals_resource_fit_for_every_kind_of_pair() -> None:
    """`FitIndex` (a recompute's fit, block by block) against `resource_fit`: proposals with
    and without compute, a memory minimum and wanted domains, offers with and without
    compute, memory, data and an end date, including pairs where no part applies (1.0)."""
    from matching.scoring import FitIndex

    rng = np.random.default_rng(5)
    n, m = 64, 40
    labels = ["health", "climate", "vision"]

    def domains(count: int) -> list[frozenset[str]]:
        return [
            frozenset(rng.choice(labels, size=rng.integers(0, 3), replace=False))
            for _ in range(count)
        ]

    nat = np.datetime64("NaT", "D")
    today = np.datetime64(TODAY, "D")
    fit_inputs = FitInputs(
        hours_needed=rng.choice([0.0, 100.0, 3_000.0], size=n),
        memory_needed_gb=rng.choice([np.nan, 0.0, 40.0, 80.0], size=n),
        needs_data=rng.random(n) < 0.5,
        proposal_domains=domains(n),
        start=np.where(rng.random(n) < 0.5, nat, today + rng.integers(-30, 90, n)),
        duration_months=rng.choice([1.0, 6.0, 12.0], size=n),
        has_compute=rng.random(m) < 0.6,
        has_data=rng.random(m) < 0.5,
        max_hours_per_project=rng.choice([0.0, 500.0, 5_000.0], size=m),
        memory_gb=rng.choice([np.nan, 24.0, 80.0], size=m),
        offer_domains=domains(m),
        available_until=np.where(rng.random(m) < 0.5, nat, today + rng.integers(-10, 400, m)),
    )
    expected = resource_fit(fit_inputs, today=TODAY).fit
    rows, columns = np.arange(n), np.arange(m)
    index = FitIndex(fit_inputs, rows, columns, today=TODAY)
    np.testing.assert_allclose(index.fit(rows), expected, atol=1e-6)
    np.testing.assert_allclose(index.fit(rows[7:30]), expected[7:30], atol=1e-6)
    assert (expected == 1.0).any() and (expected < 1.0).any()
