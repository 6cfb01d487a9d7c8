import datasets
import pytest

from ggt_dataset.schema import (
    CATEGORIES,
    CATEGORY_ALIASES,
    COLUMNS,
    FEATURES,
    normalize_category,
    normalize_role,
    normalize_split,
)


def test_six_categories_in_paper_order():
    assert CATEGORIES == ("mixed", "rain", "haze", "snow", "low_light", "old_photo")
    assert set(CATEGORY_ALIASES.values()) == set(CATEGORIES)


@pytest.mark.parametrize("raw,canon", [
    ("general", "mixed"), ("Lowlight", "low_light"), ("low-light", "low_light"), ("LOW_LIGHT", "low_light"),
    ("oldphoto", "old_photo"), ("Old-Photo", "old_photo"), ("rainy", "rain"), ("Haze", "haze"),
    ("snow", "snow"), ("fog", "haze")])
def test_category_spellings(raw, canon):
    assert normalize_category(raw) == canon


def test_unknown_names_are_none():
    assert normalize_category("sunny") is None
    assert normalize_split("val") is None
    assert normalize_role("train") is None
    assert normalize_role("GT") == "hq" and normalize_role("Input") == "lq"


def test_no_name_is_two_kinds():
    # A folder name must not be read as both a role and a category (or split).
    for name in set(CATEGORY_ALIASES):
        assert normalize_role(name) is None and normalize_split(name) is None, name


def test_arrow_schema_round_trips_the_features():
    schema = FEATURES.arrow_schema
    assert b"huggingface" in schema.metadata
    assert datasets.Features.from_arrow_schema(schema) == FEATURES
    assert isinstance(FEATURES["lq"], datasets.Image) and isinstance(FEATURES["hq"], datasets.Image)
    assert COLUMNS[:4] == ("id", "lq", "hq", "category")
