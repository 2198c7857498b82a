"""The stable movie key: the same movie gets the same key in every extract and every engine.

The rule is written twice on purpose, once for Python and once as a Spark SQL expression, and a test
holds the two to the same answers.
"""

from __future__ import annotations

import hashlib
import re

_NOT_ALPHANUMERIC = re.compile(r"[\W_]+")
DOTTED_CAPITAL_I, FINAL_SIGMA, SIGMA = "\u0130", "\u03c2", "\u03c3"


def normalise_title(title: str) -> str:
    """Lower-case, every run of non-alphanumeric characters folded to one space, trimmed.

    Two letters lower-case differently from engine to engine, so they are settled first: U+0130 (capital
    I with a dot) is taken as 'I' (DuckDB lowers it to 'i', Java and Python to 'i' plus a combining dot),
    and the final sigma U+03C2 as the sigma U+03C3 (DuckDB has no final-sigma rule).
    """
    settled = title.replace(DOTTED_CAPITAL_I, "I").lower().replace(FINAL_SIGMA, SIGMA)
    return _NOT_ALPHANUMERIC.sub(" ", settled).strip()


def movie_key(title: str, year: int) -> str:
    """First 16 hex digits of sha256 over ``normalised title|year``."""
    return hashlib.sha256(f"{normalise_title(title)}|{year}".encode()).hexdigest()[:16]


def movie_key_sql(title: str = "title", year: str = "year") -> str:
    """The same rule as a Spark SQL expression over the given columns."""
    lowered = f"replace(lower(replace({title}, '{DOTTED_CAPITAL_I}', 'I')), '{FINAL_SIGMA}', '{SIGMA}')"
    normalised = f"trim(regexp_replace({lowered}, '[^\\\\p{{L}}\\\\p{{N}}]+', ' '))"
    return f"substring(sha2(concat_ws('|', {normalised}, cast({year} as string)), 256), 1, 16)"
