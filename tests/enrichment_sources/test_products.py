from __future__ import annotations

import csv

import pytest

from enrichment.products import categorise, categorise_with_related, words_of

from .conftest import FIXTURES


def test_labelled_sample_accuracy_is_at_least_90_percent() -> None:
    with (FIXTURES / "product_categories_labelled.csv").open(encoding="utf-8") as handle:
        labelled = list(csv.DictReader(handle))
    right = sum(categorise(row["stock_code"], row["description"]).category == row["category"] for row in labelled)
    accuracy = right / len(labelled)
    print(f"categoriser accuracy on {len(labelled)} hand-labelled descriptions: {accuracy:.1%}")
    assert len(labelled) >= 100
    assert accuracy >= 0.90


def test_heart_is_not_art() -> None:
    record = categorise("85123A", "WHITE HANGING HEART T-LIGHT HOLDER")
    assert record.category == "home_garden"
    assert "ART" not in words_of("WHITE HANGING HEART T-LIGHT HOLDER")


@pytest.mark.parametrize(
    ("code", "description", "category"),
    [
        ("23534", "WALL ART STOP FOR TEA", "home_garden"),  # ART as a whole word, inside a phrase
        ("22662", "LUNCH BAG DOLLY GIRL DESIGN", "kitchen"),  # phrase beats the single word BAG
        ("85099B", "JUMBO BAG RED RETROSPOT", "fashion"),
        ("22086", "PAPER CHAIN KIT 50'S CHRISTMAS", "seasonal"),  # seasonal outranks the party phrase
        ("POST", "POSTAGE", "non_product"),  # fee codes are never products
        ("99999", None, "other"),  # missing description
        ("99998", "check", "other"),  # stock adjustment note
    ],
)
def test_category_rules(code: str, description: str | None, category: str) -> None:
    assert categorise(code, description).category == category


def test_brand_seasonal_complexity_and_tags() -> None:
    record = categorise("20725", "SET OF 6 RED RETROSPOT GLASS CHRISTMAS BAUBLES")
    assert record.brand == "Retrospot"
    assert record.is_seasonal
    assert record.complexity >= 3
    assert {"colour", "material", "seasonal"} <= set(record.tags)
    plain = categorise("21876", "POTTERING MUG")
    assert (plain.brand, plain.is_seasonal, plain.complexity) == (None, False, 1)


@pytest.mark.parametrize(
    ("description", "brand"),
    [
        ("STRAWBERRY CERAMIC TRINKET BOX", "Strawberry"),
        ("STRAWBERRY-SHAPED CANDLE", "Strawberry"),  # a hyphen ends the marker's letters
        ("SUPERSTRAWBERRY CANDLE", None),  # inside a longer run of letters
        ("STRAWBERRYS CANDLE", None),
        ("RED RETROSPOT STRAWBERRY BAG", "Retrospot"),  # the first brand in the list wins, not the first in the text
        ("CHARLIE AND LOLA TOY", "Charlie & Lola"),
    ],
)
def test_a_brand_is_its_marker_as_a_whole_run_of_letters(description: str, brand: str | None) -> None:
    assert categorise("1", description).brand == brand


def test_related_terms_give_an_uncategorised_product_a_category() -> None:
    record = categorise("23343", "NINJA RABBIT PINK")
    assert (record.category, record.head_term) == ("other", "rabbit")
    improved = categorise_with_related(record, ["bunny", "toy", "hare"])
    assert (improved.category, improved.source) == ("toys", "datamuse")
    assert categorise_with_related(record, []) == record
