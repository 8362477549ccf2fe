"""Item strings for text encoders, built from an item table with a template.

A template names text fields in braces, e.g. the default
``"{title}. {description} Genres: {genres}. Tags: {tags}."``. Each field owns the literal
text around it, so an empty field disappears together with its label and punctuation:
an item with no genres reads ``"Dune. A desert planet. Tags: classic."``, never
``"Genres: ."``. The rule, for the literal text between two fields: up to its first space
it closes the previous field (``"."``), the rest opens the next one (``" Genres: "``).
Text before the first field opens the first field; text after the last closes it.
"""

from __future__ import annotations

import math
import re
import string
from dataclasses import dataclass
from typing import Mapping

import pandas as pd

from ..data import TEXT_FIELDS

#: The template used when none is configured.
DEFAULT_TEMPLATE = "{title}. {description} Genres: {genres}. Tags: {tags}."

#: Values that mean "no text": pandas writes a missing value as ``"nan"`` after
#: ``astype(str)``.
_MISSING = {"", "nan", "None", "NaN", "<NA>"}


@dataclass(frozen=True)
class _Piece:
    prefix: str
    field: str
    suffix: str


def parse_template(template: str) -> list[_Piece]:
    """Split ``template`` into fields, each with the literal text it owns.

    Raises:
        ValueError: no field, a positional or empty ``{}`` field, a format spec, or bad
            braces; the message quotes the template.
    """
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as e:
        raise ValueError(f"bad item text template {template!r}: {e}") from None
    literals, fields = [], []
    for literal, name, spec, conv in parts:
        literals.append(literal)
        if name is None:
            continue
        if not name.isidentifier() or spec or conv:
            raise ValueError(f"item text template {template!r}: field {{{name}}} must be a plain "
                             "column name such as {title}, without format spec or conversion")
        fields.append(name)
    if not fields:
        raise ValueError(f"item text template {template!r} names no field; e.g. {DEFAULT_TEMPLATE!r}")
    literals += [""] * (len(fields) + 1 - len(literals))  # no literal after the last field
    pieces = []
    for k, name in enumerate(fields):
        prefix = literals[k] if k == 0 else _split_between(literals[k])[1]
        suffix = literals[k + 1] if k == len(fields) - 1 else _split_between(literals[k + 1])[0]
        pieces.append(_Piece(prefix, name, suffix))
    return pieces


def _split_between(literal: str) -> tuple[str, str]:
    """(closing part of the previous field, opening part of the next field)."""
    m = re.match(r"\S*", literal)
    return literal[: m.end()], literal[m.end():]


def _clean(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    text = " ".join(str(value).split())  # newlines and runs of spaces become one space
    return "" if text in _MISSING else text


def render(fields: Mapping[str, object], template: str | list[_Piece] = DEFAULT_TEMPLATE) -> str:
    """One item's string: the template with empty or missing fields dropped cleanly.

    A field ending in ``.``, ``!`` or ``?`` does not get a second full stop from the
    template. All fields empty gives ``""``.
    """
    pieces = parse_template(template) if isinstance(template, str) else template
    out = []
    for p in pieces:
        value = _clean(fields.get(p.field))
        if not value:
            continue
        suffix = p.suffix[1:] if p.suffix.startswith(".") and value[-1] in ".!?" else p.suffix
        out.append(p.prefix + value + suffix)
    return " ".join("".join(out).split())


def item_strings(table, template: str = DEFAULT_TEMPLATE) -> list[str]:
    """Strings of every item of ``table``, in its row (item index) order.

    Args:
        table: a :class:`pandas.DataFrame` with one row per item (e.g.
            ``Interactions.item_table``), or an :class:`~hybridrec.data.Interactions`.
        template: fields in braces; see the module docstring.

    Raises:
        ValueError: the data has no item table, or the template names a column that the
            table does not have (the message lists the columns). A standard text field
            (:data:`~hybridrec.data.TEXT_FIELDS`) that the table lacks is simply empty.
    """
    name = "item table"
    if not isinstance(table, pd.DataFrame):
        name = f"data set {getattr(table, 'name', '?')!r}"
        table = getattr(table, "item_table", None)
        if table is None:
            raise ValueError(f"{name} has no item text (no item table); content models need "
                             "item titles/descriptions, or precomputed item embeddings")
    pieces = parse_template(template)
    missing = sorted({p.field for p in pieces} - set(table.columns) - set(TEXT_FIELDS))
    if missing:
        raise ValueError(f"item text template {template!r} names column(s) {missing} that the "
                         f"{name} lacks; its columns: {list(table.columns)}")
    columns = [c for c in dict.fromkeys(p.field for p in pieces) if c in table.columns]
    records = table[columns].to_dict("records")
    return [render(r, pieces) for r in records]
