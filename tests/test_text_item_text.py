"""Item strings from item tables: templates, and empty fields dropped cleanly."""

import pandas as pd
import pytest

from hybridrec.data import generate_synthetic
from hybridrec.text import DEFAULT_TEMPLATE, item_strings, render

FULL = {"title": "Dune", "description": "A desert planet.", "genres": "Sci-Fi", "tags": "classic, sand"}


def test_default_template_full_item():
    assert render(FULL) == "Dune. A desert planet. Genres: Sci-Fi. Tags: classic, sand."


@pytest.mark.parametrize("drop, expected", [
    ("genres", "Dune. A desert planet. Tags: classic, sand."),
    ("tags", "Dune. A desert planet. Genres: Sci-Fi."),
    ("title", "A desert planet. Genres: Sci-Fi. Tags: classic, sand."),
    ("description", "Dune. Genres: Sci-Fi. Tags: classic, sand."),
])
def test_an_empty_field_takes_its_label_and_punctuation(drop, expected):
    assert render({**FULL, drop: ""}) == expected
    assert render({**FULL, drop: float("nan")}) == expected
    assert render({k: v for k, v in FULL.items() if k != drop}) == expected


def test_only_one_field_and_no_field():
    assert render({"genres": "Drama"}) == "Genres: Drama."
    assert render({"title": "", "description": " ", "genres": "nan", "tags": None}) == ""


def test_no_double_full_stop_and_whitespace_collapsed():
    assert render({"title": "Why?", "description": "Line one\n\n  line two."}) == "Why? Line one line two."


def test_custom_template():
    t = "Movie: {title} ({genres})"
    assert render(FULL, t) == "Movie: Dune (Sci-Fi)"
    assert render({"title": "Dune"}, t) == "Movie: Dune"


@pytest.mark.parametrize("bad", ["no fields", "{title:>10}", "{0}", "{title"])
def test_bad_templates_are_errors(bad):
    with pytest.raises(ValueError, match="template"):
        render(FULL, bad)


def test_item_strings_follow_item_index_order():
    data = generate_synthetic(20, 30, seed=1)
    texts = item_strings(data)
    assert len(texts) == data.n_items
    for i in (0, 7, 29):
        row = data.item_table.iloc[i]
        assert texts[i].startswith(row["title"] + ".") and f"Genres: {row['genres']}." in texts[i]


def test_item_strings_table_checks():
    table = pd.DataFrame({"title": ["A", ""], "genres": ["x", ""]})  # no description/tags columns
    assert item_strings(table) == ["A. Genres: x.", ""]
    with pytest.raises(ValueError, match=r"column\(s\) \['plot'\].*columns: \['title', 'genres'\]"):
        item_strings(table, "{title}: {plot}")
    data = generate_synthetic(20, 30, seed=1)
    data.item_table = None
    with pytest.raises(ValueError, match="has no item text"):
        item_strings(data, DEFAULT_TEMPLATE)
