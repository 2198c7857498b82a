"""The stable movie key: the same movie gets the same key in every extract and every engine.

The rule is written twice on purpose, once for Python and once as a Spark SQL expression, and a test
holds the two to the same answers.
"""

from __future__ import annotations

import hashlib
import re

_NOT_ALPHANUMERIC = re.compile(r"[\W_]+")


def normalise_title(title: str) -> str:
    """Lower-case, every run of non-alphanumeric characters folded to one space, trimmed.

    Two letters lower-case differently from engine to engine, so they are settled first: 'İ' (dotted
    capital I) is taken as 'I' (DuckDB lowers it to 'i', Java and Python to 'i' plus a combining dot),
    and the final sigma 'ς' as 'σ' (DuckDB has no final-sigma rule).
    """
    return _NOT_ALPHANUMERIC.sub(" ", title.replace("İ", "I").lower().replace("ς", "σ")).strip()


def movie_key(title: str, year: int) -> str:
    """First 16 hex digits of sha256 over ``normalised title|year``."""
    return hashlib.sha256(f"{normalise_title(title)}|{year}".encode()).hexdigest()[:16]


def movie_key_sql(title: str = "title", year: str = "year") -> str:
    """The same rule as a Spark SQL expression over the given columns."""
    lowered = f"replace(lower(replace({title}, 'İ', 'I')), 'ς', 'σ')"
    normalised = f"trim(regexp_replace({lowered}, '[^\\\\p{{L}}\\\\p{{N}}]+', ' '))"
    return f"substring(sha2(concat_ws('|', {normalised}, cast({year} as string)), 256), 1, 16)"
