"""Eligibility: each hard constraint fails for the right pairs, with a readable reason."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pytest

from matching.eligibility import (
    CONSTRAINTS,
    EligibilityIndex,
    OfferFacts,
    ProposalFacts,
    check_eligibility,
    identity_tokens,
    with_parent_domains,
)

TODAY = date(2026, 11, 28)


def proposal(**overrides: Any) -> dict[str, Any]:
    return {
        "gpu_hours_needed": 2_000,
        "gpu_memory_min_gb": 40,
        "gpu_type": "A100",
        "needs_data": False,
        "requires_open_publication": True,
        "requires_open_source": False,
        "ip_stance": "joint",
        "identities": ["University of Northbridge", "northbridge.example.org"],
        "excluded": [],
        **overrides,
    }


def offer(**overrides: Any) -> dict[str, Any]:
    return {
        "kind": "compute",
        "is_open": True,
        "deadline": date(2027, 3, 31),
        "gpu_memory_gb": 80,
        "gpu_type": "H100",
        "max_hours_per_project": 5_000,
        "hours_left": 20_000,
        "projects_left": 3,
        "publication_terms": "allowed",
        "code_release_allowed": True,
        "ip_stance": "open",
        "identities": ["Voltaic Cloud", "voltaic-cloud.example.com"],
        "excluded": [],
        **overrides,
    }


def check(p: dict[str, Any], o: dict[str, Any]):
    return check_eligibility(
        ProposalFacts.from_records([p]), OfferFacts.from_records([o]), today=TODAY
    )


def test_a_compatible_pair_is_eligible_and_every_check_passes() -> None:
    result = check(proposal(), offer())
    assert result.mask.tolist() == [[True]]
    assert result.reasons(0, 0) == []
    checks = result.checks(0, 0)
    assert all(c.passed for c in checks)
    names = {c.name for c in checks}
    assert {"hours_per_project", "gpu_memory", "gpu_type", "ip_terms"} <= names


@pytest.mark.parametrize(
    ("p", "o", "constraint", "phrase"),
    [
        ({}, {"is_open": False}, "offer_open", "closed or its deadline has passed"),
        ({}, {"deadline": date(2026, 11, 1)}, "offer_open", "deadline has passed"),
        ({}, {"kind": "data"}, "provides_need", "only data"),
        ({"gpu_hours_needed": 0, "needs_data": True}, {}, "provides_need", "only compute"),
        ({}, {"publication_terms": "not_allowed"}, "publication_terms", "does not allow"),
        (
            {"requires_open_source": True},
            {"code_release_allowed": False},
            "code_release",
            "open-source code",
        ),
        ({"ip_stance": "open"}, {"ip_stance": "joint"}, "ip_terms", "accepts at most open"),
        ({"gpu_hours_needed": 9_000}, {}, "hours_per_project", "limit of 5,000 per project"),
        ({"gpu_memory_min_gb": 141}, {}, "gpu_memory", "at least 141 GB"),
        ({"gpu_type": "H200", "gpu_memory_min_gb": None}, {}, "gpu_type", "less capable"),
        ({}, {"projects_left": 0}, "capacity_left", "no project places left"),
        (
            {"gpu_hours_needed": 4_000},
            {"hours_left": 3_000},
            "capacity_left",
            "only 3,000 GPU hours left",
        ),
        ({"identities": ["Voltaic Cloud"]}, {}, "same_organisation", "Conflict of interest"),
        (
            {"identities": ["lab.voltaic-cloud.example.com"]},
            {},
            "same_organisation",
            "Conflict of interest",
        ),
        ({}, {"excluded": ["northbridge.example.org"]}, "excluded_by_offer", "excluded"),
        ({"excluded": ["Voltaic Cloud"]}, {}, "excluded_by_proposal", "excluded this company"),
    ],
)
def test_each_constraint_fails_with_its_reason(
    p: dict[str, Any], o: dict[str, Any], constraint: str, phrase: str
) -> None:
    result = check(proposal(**p), offer(**o))
    assert result.mask.tolist() == [[False]]
    assert result.failed_constraints(0, 0) == [constraint]
    (reason,) = result.reasons(0, 0)
    assert phrase in reason
    failed = [c for c in result.checks(0, 0) if not c.passed]
    assert [c.name for c in failed] == [constraint]


def test_publication_after_review_is_compatible_with_open_publication() -> None:
    assert check(proposal(), offer(publication_terms="after_review")).mask[0, 0]


def test_data_pairs_skip_the_compute_checks() -> None:
    data_need = proposal(gpu_hours_needed=0, needs_data=True, gpu_memory_min_gb=200)
    result = check(data_need, offer(kind="data", max_hours_per_project=0, hours_left=0))
    assert result.mask[0, 0]
    assert "gpu_memory" not in {c.name for c in result.checks(0, 0)}


def test_vectorised_result_equals_pair_by_pair() -> None:
    rng = np.random.default_rng(7)
    proposals = [
        proposal(
            gpu_hours_needed=int(rng.choice([0, 500, 3_000, 12_000])),
            gpu_memory_min_gb=rng.choice([None, 24, 80]),
            needs_data=bool(rng.random() < 0.4),
            ip_stance=str(rng.choice(["open", "joint", "company_owned"])),
            identities=[f"uni{rng.integers(3)}.example.org"],
        )
        for _ in range(12)
    ]
    offers = [
        offer(
            kind=str(rng.choice(["compute", "data", "compute+data"])),
            ip_stance=str(rng.choice(["open", "joint", "company_owned"])),
            max_hours_per_project=int(rng.choice([1_000, 5_000, 20_000])),
            identities=[f"uni{rng.integers(5)}.example.org"],
        )
        for _ in range(7)
    ]
    whole = check_eligibility(
        ProposalFacts.from_records(proposals), OfferFacts.from_records(offers), today=TODAY
    )
    for i, p in enumerate(proposals):
        for j, o in enumerate(offers):
            single = check(p, o)
            assert whole.mask[i, j] == single.mask[0, 0]
            assert whole.failed_constraints(i, j) == single.failed_constraints(0, 0)
    chunk = whole.proposals.take(slice(3, 8))
    part = check_eligibility(chunk, whole.offers, today=TODAY)
    np.testing.assert_array_equal(part.mask, whole.mask[3:8])
    assert set(whole.failures) == set(CONSTRAINTS)


def test_subdomains_are_covered_but_sibling_domains_do_not_conflict() -> None:
    tokens = with_parent_domains(identity_tokens(["CS.Northbridge.example.org", "Voltaic Cloud"]))
    assert {"cs.northbridge.example.org", "northbridge.example.org", "voltaic cloud"} <= tokens
    assert "org" not in tokens
    sibling = check(
        proposal(identities=["northbridge.example.org"]), offer(identities=["voltaic.example.org"])
    )
    assert sibling.mask[0, 0]
    excluded_parent = check(
        proposal(identities=["cs.northbridge.example.org"]),
        offer(excluded=["northbridge.example.org"]),
    )
    assert excluded_parent.failed_constraints(0, 0) == ["excluded_by_offer"]


def test_the_recompute_index_rules_out_exactly_what_check_eligibility_does() -> None:
    """Every flag combination, unstated limits (memory, GPU type, hours per project), an
    overdrawn offer and proposals needing nothing: the per-kind rows and per-offer thresholds
    of `EligibilityIndex` agree with the plain checks pair by pair."""
    rng = np.random.default_rng(11)
    proposals = [
        proposal(
            gpu_hours_needed=float(rng.choice([0, 500, 3_000, 12_000])),
            gpu_memory_min_gb=rng.choice([None, 0, 24, 80]),
            gpu_type=rng.choice([None, "a10g", "h100", "unknown"]),
            needs_data=bool(rng.random() < 0.4),
            requires_open_publication=bool(rng.random() < 0.5),
            requires_open_source=bool(rng.random() < 0.5),
            ip_stance=str(rng.choice(["open", "joint", "company_owned"])),
            identities=[f"uni{rng.integers(4)}.example.org"],
            excluded=[f"company{rng.integers(6)}.example.com"] if rng.random() < 0.3 else [],
        )
        for _ in range(80)
    ]
    offers = [
        offer(
            kind=str(rng.choice(["compute", "data", "compute+data"])),
            deadline=rng.choice([None, date(2026, 11, 1), date(2027, 1, 1)]),
            is_open=bool(rng.random() < 0.9),
            gpu_memory_gb=rng.choice([None, 24, 141]),
            gpu_type=rng.choice([None, "l40s", "h200"]),
            max_hours_per_project=rng.choice([None, 1_000, 5_000]),
            hours_left=float(rng.choice([-10, 0, 2_000, 50_000])),
            projects_left=int(rng.choice([0, 1, 3])),
            publication_terms=str(rng.choice(["allowed", "after_review", "not_allowed"])),
            code_release_allowed=bool(rng.random() < 0.6),
            ip_stance=str(rng.choice(["open", "joint", "company_owned"])),
            identities=[f"company{j}.example.com"]
            + ([f"uni{rng.integers(4)}.example.org"] if rng.random() < 0.1 else []),
        )
        for j in range(30)
    ]
    facts = ProposalFacts.from_records(proposals), OfferFacts.from_records(offers)
    expected = check_eligibility(*facts, today=TODAY).mask
    index = EligibilityIndex(*facts, today=TODAY)
    rows = np.arange(len(proposals))
    np.testing.assert_array_equal(index.mask(rows), expected)
    np.testing.assert_array_equal(index.mask(rows[5:17]), expected[5:17])
    assert 0.01 < expected.mean() < 0.5  # some eligible pairs, most ruled out
