"""Quality measured on the rows as received: counts on tiny frames, scores from counts."""

from __future__ import annotations

import pytest
from test_silver import bronze, transformed

from medallion.quality import QualityCounts, quality_scores

WEIGHTS = {"completeness": 0.3, "validity": 0.3, "uniqueness": 0.2, "consistency": 0.2}


def test_counts_see_the_dirt_cleaning_would_hide() -> None:
    rows = bronze(
        ("536365", "85123A", "HEART", "6", "12/1/2010 8:26", "2.55", "17850", "France"),
        # a guest order: one empty cell of eight
        ("536368", "71053", "LANTERN", "6", "12/1/2010 8:26", "3.39", "NA", "France"),
        # the same line again
        ("536365", "85123A", "HEART", "6", "12/1/2010 8:26", "2.55", "17850", "France"),
        # a sale with a negative quantity: a valid value, but inconsistent with a sale invoice
        ("536366", "22633", "WARMER", "-2", "12/1/2010 8:28", "1.85", "17850", "France"),
        # an untyped quantity: invalid, and not checked for consistency
        ("536367", "22632", "WARMER", "two", "12/1/2010 8:28", "1.85", "17850", "France"),
    )
    counts = transformed(rows).counts
    assert counts == QualityCounts(
        rows=5, cells=40, filled_cells=39, valid_rows=4, unique_rows=4, checked_rows=4, consistent_rows=3
    )


def test_an_invoice_with_two_customers_is_inconsistent() -> None:
    rows = bronze(
        ("536365", "85123A", "HEART", "6", "12/1/2010 8:26", "2.55", "17850", "France"),
        ("536365", "71053", "LANTERN", "6", "12/1/2010 8:26", "3.39", "12583", "France"),
    )
    counts = transformed(rows).counts
    assert (counts.checked_rows, counts.consistent_rows) == (2, 0)


def test_an_invoice_with_a_guest_line_and_a_customer_line_is_inconsistent() -> None:
    rows = bronze(
        ("536365", "85123A", "HEART", "6", "12/1/2010 8:26", "2.55", "17850", "France"),
        ("536365", "71053", "LANTERN", "6", "12/1/2010 8:26", "3.39", "NA", "France"),
        ("536366", "71053", "LANTERN", "6", "12/1/2010 8:26", "3.39", "NA", "France"),
    )
    assert transformed(rows).counts.consistent_rows == 1


def test_scores_weight_the_four_dimensions() -> None:
    counts = QualityCounts(
        rows=100, cells=800, filled_cells=760, valid_rows=90, unique_rows=100, checked_rows=80, consistent_rows=40
    )
    scores = quality_scores(counts, WEIGHTS)
    assert (scores.completeness, scores.validity, scores.uniqueness, scores.consistency) == (95.0, 90.0, 100.0, 50.0)
    assert scores.score == pytest.approx(0.3 * 95 + 0.3 * 90 + 0.2 * 100 + 0.2 * 50, abs=0.005)
    assert quality_scores(counts, {**WEIGHTS, "consistency": 0.0}).score == pytest.approx(
        (0.3 * 95 + 0.3 * 90 + 0.2 * 100) / 0.8, abs=0.005
    )


def test_counts_add_up_across_files() -> None:
    one = QualityCounts(rows=1, cells=8, filled_cells=8, valid_rows=1, unique_rows=1, checked_rows=1, consistent_rows=1)
    two = QualityCounts(
        rows=2, cells=16, filled_cells=15, valid_rows=1, unique_rows=2, checked_rows=2, consistent_rows=2
    )
    assert one + two == QualityCounts(
        rows=3, cells=24, filled_cells=23, valid_rows=2, unique_rows=3, checked_rows=3, consistent_rows=3
    )
