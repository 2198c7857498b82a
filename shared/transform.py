"""The transform, defined once: how a movie row is normalised, typed, judged, keyed and deduplicated.

The rules are data here (missing markers, spellings, number and boolean forms) plus the field
definitions of ``shared.schema`` (kind, required, range, allowed values); from them this module
generates the row-level logic as SQL text in Spark's dialect. The Spark job runs that SQL through Spark
SQL; the DuckDB engine runs the very same text, transpiled by sqlglot (``to_duckdb``). No engine writes a
rule of its own.

The relations, each a query over the one before (names given by the caller):

- raw: one string column per record field, ``_corrupt_record`` (the line of a row that did not parse,
  else null) and ``_row`` (the row's position in ``movies.csv``), read by the engine.
- checked (``checked_query``): every field normalised and typed, the row's first failure (reason,
  field, detail) or null, and what the row looked like as it arrived.
- ranked (``ranked_query``): valid rows keyed by ``movie_key`` and ranked within their key; 1 is kept.
  An engine that keeps a table's rows in place may instead rank every valid row 1
  (``first_ranked_query``) and then only the rows whose key repeats (``repeated_ranks_query``): the
  same ranks, from the same key and order.
- clean rows, rejects and counts: ``clean_query`` (the kept rows, enriched by ``enrichment_sql``:
  genres, primary genre, decade, runtime and budget bands, weighted rating), ``rejects_query``,
  ``COUNTS``.

Normalisation, before anything is judged:

- every value is trimmed of spaces; ``NA`` and the empty string are missing (null);
- string values have each run of whitespace collapsed to one space (a title keeps its case; the movie
  key is taken from the normalised title, see ``shared.keys``);
- numbers may carry thousands separators (``1,000,000``); whole numbers may be written ``120.0`` or
  ``1e+03``;
- booleans are ``true/false/yes/no/1/0`` in any case;
- a field with spellings (MPAA) is looked up by its letters and digits in upper case (``pg13``,
  ``PG-13``, ``PG 13`` are ``PG-13``); a spelling that means "no MPAA rating" (``Not Rated``,
  ``Unrated``, ``NR``, ``Approved`` …) becomes null; the value as given is kept in ``mpaa_original``.

Duplicates within a batch: among valid rows sharing a movie key the one with the most votes is kept,
then the highest rating, then the smallest value of every other field in record order (nulls last),
then the earliest row; the others are counted as duplicates. The survivor depends on content, not on
the order rows arrived in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from shared.keys import movie_key_sql
from shared.rejects import Reason
from shared.schema import (
    CLEAN_MOVIE_FIELDS,
    ENRICHED_FIELDS,
    GENRES,
    MOVIE_FIELDS,
    MPAA_ORIGINAL,
    PRIMARY_GENRES,
    REJECT_FIELDS,
    Field,
    field_names,
)

ROW = "_row"
"""The row's position in ``movies.csv``; output follows input order."""
CORRUPT_RECORD = "_corrupt_record"
"""The line of a row that does not parse into the record's columns; null for a row that does."""
RANK = "_rank"
FAILURE = "_failure"

DEFAULT_YEAR_HORIZON = 3
"""Years after the extract's own year that a release year may lie (announced films)."""
DEFAULT_MIN_VOTES = 1000
"""``m`` of the weighted rating: the votes a movie needs before its own rating outweighs the mean."""

MISSING_MARKERS = ("NA", "N/A", "")
BOOLEANS = {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False}
"""Spellings of a boolean, compared in lower case."""

NO_MPAA_RATING = (
    "NOTRATED",
    "UNRATED",
    "NR",
    "APPROVED",
    "PASSED",
    # Ratings the MPAA no longer gives, and TV ratings: not one of today's five.
    "X",
    "M",
    "GP",
    "MPG",
    "TVG",
    "TVPG",
    "TV14",
    "TVMA",
    "TVY",
    "TVY7",
)
"""Spellings (letters and digits, upper case) meaning the movie has none of the MPAA's current ratings."""

ORIGINALS = {"mpaa": MPAA_ORIGINAL.name}
"""Fields whose value as given is kept beside the normalised one, by the column that keeps it."""

# Regular expressions, as Java (Spark) and RE2 (DuckDB) both read them.
_WHITESPACE = "[ \\t\\n\\f\\r]+"
_IRREGULAR_WHITESPACE = "[\\t\\n\\f\\r]| {2}"
"""What collapsing whitespace would change: a text without it is spared the replacement."""
_GROUPED = "^[+-]?[0-9]{1,3}(,[0-9]{3})+(\\.[0-9]+)?$"
_INTEGER = "^[+-]?[0-9]+$"
_DECIMAL = "^[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][+-]?[0-9]+)?$"
_NOT_ALPHANUMERIC = "[^A-Za-z0-9]+"
_LARGEST_DOUBLE = "1.7976931348623157E308"
_TWO_TO_63 = "9.223372036854775807E18"


def spelling_key(value: str) -> str:
    """The form a spelling is looked up by: letters and digits only, upper case (as the SQL does it)."""
    return "".join(ch for ch in value if ch.isascii() and ch.isalnum()).upper()


def spellings(field: Field) -> dict[str, str | None]:
    """Every accepted spelling of an enumerated field (as ``spelling_key``), with its canonical value."""
    found: dict[str, str | None] = {spelling_key(value): value for value in field.enum or ()}
    if field.name == "mpaa":
        found.update(dict.fromkeys(NO_MPAA_RATING))
    return found


@dataclass(frozen=True)
class BatchRules:
    """What the rules need to know of one batch: its extract and the latest release year it accepts."""

    extract_id: str
    extract_year: int
    year_horizon: int = DEFAULT_YEAR_HORIZON
    min_votes: int = DEFAULT_MIN_VOTES
    """``m`` of the weighted rating."""
    mean_rating: float | None = None
    """``C`` of the weighted rating: a configured global mean, or None for the batch's own mean."""

    def __post_init__(self) -> None:
        if self.min_votes < 0:
            raise ValueError(f"min_votes is {self.min_votes}; it must be 0 or more")
        if self.mean_rating is not None and not 1 <= self.mean_rating <= 10:
            raise ValueError(f"mean_rating is {self.mean_rating}; it must lie between 1 and 10")

    @property
    def latest_year(self) -> int:
        return self.extract_year + self.year_horizon

    @classmethod
    def of(
        cls,
        extract_id: str,
        extracted_at: str | None,
        year_horizon: int = DEFAULT_YEAR_HORIZON,
        *,
        min_votes: int = DEFAULT_MIN_VOTES,
        mean_rating: float | None = None,
    ):
        """Rules for an extract taken at ``extracted_at`` (ISO 8601; now when not known)."""
        when = datetime.fromisoformat(extracted_at) if extracted_at else datetime.now(UTC)
        return cls(
            extract_id=extract_id,
            extract_year=when.year,
            year_horizon=year_horizon,
            min_votes=min_votes,
            mean_rating=mean_rating,
        )


# -- SQL helpers ----------------------------------------------------------------------------------


def literal(value: str | None) -> str:
    """A Spark SQL string literal (backslashes and quotes escaped), or NULL."""
    if value is None:
        return "CAST(NULL AS STRING)"
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _column(name: str, step: str) -> str:
    """The working column of a field at one step: ``raw``, ``trimmed``, ``present``, ``text``, ``key``,
    ``number`` or ``value``."""
    return f"{name}__{step}"


def _in(expression: str, values: tuple[str, ...] | list[str]) -> str:
    return f"{expression} IN ({', '.join(literal(value) for value in values)})"


def _double(text: str) -> str:
    return f"CASE WHEN {text} RLIKE {literal(_DECIMAL)} THEN try_cast({text} AS DOUBLE) END"


def _finite(number: str) -> str:
    return f"{number} BETWEEN -{_LARGEST_DOUBLE} AND {_LARGEST_DOUBLE}"


# -- normalising and typing -------------------------------------------------------------------------


def trimmed_sql(field: Field) -> str:
    """The field's value trimmed of spaces; a string's every run of whitespace one space."""
    raw = _column(field.name, "raw")
    if field.kind == "string":
        # Only a text with a tab, a line break or two spaces in a row changes: the test is cheaper.
        collapsed = (
            f"CASE WHEN {raw} RLIKE {literal(_IRREGULAR_WHITESPACE)} "
            f"THEN regexp_replace({raw}, {literal(_WHITESPACE)}, ' ') ELSE {raw} END"
        )
        return f"trim({collapsed})"
    return f"trim({raw})"


def present_sql(field: Field) -> str:
    """The trimmed value without the unit or currency its field allows ("142 min", "$28,767,189"), null
    where it is a missing marker."""
    trimmed = _column(field.name, "trimmed")
    bare = trimmed
    # Only a text ending in a letter or a dot can carry a unit, only one starting with $ or U a currency:
    # the tests spare the others the replacement.
    if field.units:
        unit = f"(?i)[ ]*({'|'.join(_pattern_text(word) for word in field.units)})[.]?$"
        bare = _replaced_when(bare, "[A-Za-z.]$", unit)
    if field.prefixes:
        sign = f"(?i)^({'|'.join(_pattern_text(word) for word in field.prefixes)})[ ]*"
        bare = _replaced_when(bare, "^[$Uu]", sign)
    return f"CASE WHEN NOT {_in(trimmed, MISSING_MARKERS)} THEN {bare} END"


def text_sql(field: Field) -> str:
    """The field's text as it is judged: its present value, normalised by kind."""
    present = _column(field.name, "present")
    if field.kind in ("integer", "number"):
        # Thousands separators only in their proper places: "1,5" stays a text that is not a number.
        # Only a text with a comma can be grouped; the test for one spares the others the expression.
        grouped = f"{present} LIKE '%,%' AND {present} RLIKE {literal(_GROUPED)}"
        return f"CASE WHEN {grouped} THEN replace({present}, ',', '') ELSE {present} END"
    return present


def _replaced_when(text: str, may_match: str, pattern: str) -> str:
    """``text`` without what ``pattern`` matches, tried only where the cheaper ``may_match`` matches."""
    return (
        f"CASE WHEN {text} RLIKE {literal(may_match)} "
        f"THEN regexp_replace({text}, {literal(pattern)}, '') ELSE {text} END"
    )


def _pattern_text(word: str) -> str:
    """``word`` as a regular expression that matches it literally (its $ in a class, not escaped)."""
    return "".join(f"[{ch}]" if ch in "$." else ch for ch in word)


def value_sql(field: Field) -> str:
    """The field's value in its own type: null when its text is missing or does not convert."""
    text = _column(field.name, "text")
    if field.kind == "integer":
        number = _column(field.name, "number")
        whole = f"{_finite(number)} AND abs({number}) < {_TWO_TO_63} AND {number} = floor({number})"
        # Plain integers convert exactly; "1e+06" or "120.0" go through a double.
        exact = f"CASE WHEN {text} RLIKE {literal(_INTEGER)} THEN try_cast({text} AS BIGINT) END"
        return f"coalesce({exact}, CASE WHEN {whole} THEN CAST({number} AS BIGINT) END)"
    if field.kind == "number":
        number = _column(field.name, "number")
        return f"CASE WHEN {_finite(number)} THEN {number} END"
    if field.kind == "boolean":
        lowered = f"lower({text})"
        truthy = [word for word, meaning in BOOLEANS.items() if meaning]
        falsy = [word for word, meaning in BOOLEANS.items() if not meaning]
        return f"CASE WHEN {_in(lowered, truthy)} THEN true WHEN {_in(lowered, falsy)} THEN false END"
    if field.enum is not None:
        cases = " ".join(
            f"WHEN {literal(key)} THEN {literal(value)}" for key, value in spellings(field).items() if value
        )
        return f"CASE {_column(field.name, 'key')} {cases} END"
    return text


def _spelling_key_sql(field: Field) -> str:
    return f"upper(regexp_replace({_column(field.name, 'text')}, {literal(_NOT_ALPHANUMERIC)}, ''))"


# -- judging ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One way a row fails: when ``condition`` holds, it is rejected with ``reason`` on ``field``."""

    condition: str
    reason: Reason
    field: str | None
    detail: str
    """SQL for the sentence a person reads."""


def _quoted(field: Field, complaint: str) -> str:
    """The sentence naming the value as it was given (trimmed), and what is wrong with it."""
    before, after = literal(f"{field.name} '"), literal(f"' {complaint}")
    return f"concat({before}, {_column(field.name, 'trimmed')}, {after})"


def field_rules(field: Field, rules: BatchRules) -> list[Rule]:
    """The field's rules, in the order they are reported."""
    name, text, value = field.name, _column(field.name, "text"), _column(field.name, "value")
    found: list[Rule] = []
    if field.required:
        found.append(Rule(f"{text} IS NULL", Reason.MISSING_VALUE, name, literal(f"{name} is missing")))
    unconverted = f"{text} IS NOT NULL AND {value} IS NULL"
    if field.kind == "integer":
        number = _column(name, "number")
        detail = (
            f"CASE WHEN NOT coalesce({_finite(number)}, false) THEN {_quoted(field, 'is not a number')} "
            f"WHEN abs({number}) >= {_TWO_TO_63} THEN {_quoted(field, 'is too large for a whole number')} "
            f"ELSE {_quoted(field, 'is not a whole number')} END"
        )
        found.append(Rule(unconverted, Reason.NOT_A_NUMBER, name, detail))
    elif field.kind == "number":
        found.append(Rule(unconverted, Reason.NOT_A_NUMBER, name, _quoted(field, "is not a number")))
    elif field.kind == "boolean":
        complaint = f"is not one of {', '.join(BOOLEANS)}"
        found.append(Rule(unconverted, Reason.NOT_ALLOWED, name, _quoted(field, complaint)))
    if field.minimum is not None:
        complaint = f"is below the minimum {field.minimum:g}"
        found.append(
            Rule(f"{value} < {field.minimum:g}", Reason.OUT_OF_RANGE, name, _quoted(field, complaint))
        )
    if field.maximum is not None:
        complaint = f"is above the maximum {field.maximum:g}"
        found.append(
            Rule(f"{value} > {field.maximum:g}", Reason.OUT_OF_RANGE, name, _quoted(field, complaint))
        )
    if field.not_after_extract:
        complaint = f"is after {rules.latest_year} (the extract's year plus {rules.year_horizon})"
        found.append(
            Rule(f"{value} > {rules.latest_year}", Reason.OUT_OF_RANGE, name, _quoted(field, complaint))
        )
    if field.enum is not None:
        known = list(spellings(field))
        complaint = f"is not one of {', '.join(field.enum)} (or a spelling of one)"
        outside = f"{text} IS NOT NULL AND NOT {_in(_column(name, 'key'), known)}"
        found.append(Rule(outside, Reason.NOT_ALLOWED, name, _quoted(field, complaint)))
    return found


def row_rules(rules: BatchRules) -> list[Rule]:
    """Every rule a row is judged by, in the order they are reported: the first that fails is its reason."""
    malformed = Rule(
        f"{CORRUPT_RECORD} IS NOT NULL",
        Reason.MALFORMED_ROW,
        None,
        literal(f"row does not parse into the {len(MOVIE_FIELDS)} columns (wrong column count or quotes)"),
    )
    return [malformed, *(rule for field in MOVIE_FIELDS for rule in field_rules(field, rules))]


# -- the queries ------------------------------------------------------------------------------------


def _select(columns: list[str], source: str) -> str:
    return "SELECT\n  " + ",\n  ".join(columns) + f"\nFROM {source}"


def checked_query(raw: str, rules: BatchRules, row: str = ROW) -> str:
    """Each row of ``raw`` normalised, typed and judged: the record's fields typed, ``mpaa_original``,
    ``_failure`` (index of the first failing rule, null if none), ``reason``, ``field``, ``detail``,
    ``record`` (the row as it arrived, as JSON), ``_row``.

    ``row`` is the SQL giving a row its position: ``raw``'s own ``_row`` column unless the engine numbers
    rows as it reads them.
    """
    names = field_names()
    renamed = _select(
        [
            *([ROW] if row == ROW else []),
            CORRUPT_RECORD,
            *(f"{name} AS {_column(name, 'raw')}" for name in names),
        ],
        raw,
    )
    # A level for each step of a value's text, each referring to the one before by column: written out
    # again inside each other, the same expressions cost DuckDB time to parse, bind and plan each batch.
    trimmed = _select(
        ["*", *(f"{trimmed_sql(field)} AS {_column(field.name, 'trimmed')}" for field in MOVIE_FIELDS)],
        f"({renamed}) renamed",
    )
    present = _select(
        ["*", *(f"{present_sql(field)} AS {_column(field.name, 'present')}" for field in MOVIE_FIELDS)],
        f"({trimmed}) trimmed",
    )
    texts = _select(
        ["*", *(f"{text_sql(field)} AS {_column(field.name, 'text')}" for field in MOVIE_FIELDS)],
        f"({present}) present",
    )
    # Each field's number and spelling key once, for its value and its rules to read.
    keyed = _select(
        [
            "*",
            *(
                f"{_spelling_key_sql(field)} AS {_column(field.name, 'key')}"
                for field in MOVIE_FIELDS
                if field.enum
            ),
            *(
                f"{_double(_column(field.name, 'text'))} AS {_column(field.name, 'number')}"
                for field in MOVIE_FIELDS
                if field.kind in ("integer", "number")
            ),
        ],
        f"({texts}) texts",
    )
    typed = _select(
        ["*", *(f"{value_sql(field)} AS {_column(field.name, 'value')}" for field in MOVIE_FIELDS)],
        f"({keyed}) keyed",
    )
    every = row_rules(rules)
    failure = "CASE " + " ".join(f"WHEN {rule.condition} THEN {n}" for n, rule in enumerate(every)) + " END"
    judged = _select(["*", f"{failure} AS {FAILURE}"], f"({typed}) typed")

    def by_failure(pick) -> str:
        return (
            f"CASE {FAILURE} "
            + " ".join(f"WHEN {n} THEN {pick(rule)}" for n, rule in enumerate(every))
            + " END"
        )

    as_arrived = ", ".join(f"{literal(name)}, {_column(name, 'raw')}" for name in names)
    record = (
        f"CASE WHEN {CORRUPT_RECORD} IS NOT NULL THEN to_json(map('_line', {CORRUPT_RECORD})) "
        f"ELSE to_json(map({as_arrived})) END"
    )
    return _select(
        [
            f"{row} AS {ROW}",
            *(f"{_column(name, 'value')} AS {name}" for name in names),
            *(f"{_column(field, 'text')} AS {original}" for field, original in ORIGINALS.items()),
            FAILURE,
            f"{by_failure(lambda rule: literal(rule.reason.value))} AS reason",
            f"{by_failure(lambda rule: literal(rule.field))} AS field",
            f"{by_failure(lambda rule: rule.detail)} AS detail",
            f"CASE WHEN {FAILURE} IS NOT NULL THEN {record} END AS record",
        ],
        f"({judged}) judged",
    )


def dedupe_order() -> list[str]:
    """Most votes first, then the highest rating, then every other field; the earliest row last."""
    order = ["votes DESC NULLS LAST", "rating DESC NULLS LAST"]
    names = [*field_names(), *ORIGINALS.values()]
    order += [f"{name} ASC NULLS LAST" for name in names if name not in ("votes", "rating")]
    return [*order, f"{ROW} ASC"]


def rank_in_key() -> str:
    """A valid row's place among the valid rows of its movie key, by ``dedupe_order`` (1 is kept)."""
    return f"row_number() OVER (PARTITION BY movie_key ORDER BY {', '.join(dedupe_order())})"


def keyed_query(checked: str) -> str:
    """Every checked row with its ``movie_key`` (null for a reject)."""
    key = movie_key_sql("title", "year")
    return _select(["*", f"CASE WHEN {FAILURE} IS NULL THEN {key} END AS movie_key"], checked)


def ranked_query(checked: str) -> str:
    """Valid rows keyed and ranked within their movie key (1 is kept); rejects with no key and no rank."""
    return _keyed_and_ranked(checked, rank_in_key())


def first_ranked_query(checked: str) -> str:
    """``ranked_query`` with every valid row ranked 1, which is its rank wherever no other valid row has
    its key; ``repeated_ranks_query`` gives the rest. An engine that keeps rows in place can rank this
    way without sorting every row (in a batch nearly every key is unique)."""
    return _keyed_and_ranked(checked, "1")


def _keyed_and_ranked(checked: str, rank: str) -> str:
    keyed = f"({keyed_query(checked)}) keyed"
    return _select(["*", f"CASE WHEN {FAILURE} IS NULL THEN {rank} END AS {RANK}"], keyed)


def repeated_ranks_query(keyed: str) -> str:
    """``_row`` and ``_rank`` (as ``ranked_query`` ranks) of each valid row whose key another valid row
    shares; ``keyed`` holds ``movie_key``."""
    repeated = (
        f"SELECT movie_key FROM {keyed} WHERE movie_key IS NOT NULL GROUP BY movie_key HAVING count(1) > 1"
    )
    return f"SELECT {ROW}, {rank_in_key()} AS {RANK}\nFROM {keyed}\nWHERE movie_key IN ({repeated})"


def clean_query(ranked: str, rules: BatchRules) -> str:
    """The kept rows in the columns of ``CLEAN_MOVIE_FIELDS`` (and ``_row``), enriched."""
    enriched = enrichment_sql(rules)
    columns = [
        f"{literal(rules.extract_id)} AS extract_id"
        if name == "extract_id"
        else f"{enriched[name]} AS {name}"
        if name in enriched
        else name
        for name in field_names(CLEAN_MOVIE_FIELDS)
    ]
    # The batch's mean rating is a window over the kept rows: WHERE is applied before it.
    return _select([ROW, *columns], ranked) + f"\nWHERE {RANK} = 1"


def rejects_query(checked: str, extract_id: str) -> str:
    """The refused rows in the columns of ``REJECT_FIELDS`` (and ``_row``)."""
    columns = [
        f"{literal(extract_id)} AS extract_id" if name == "extract_id" else name
        for name in field_names(REJECT_FIELDS)
    ]
    return _select([ROW, *columns], checked) + f"\nWHERE {FAILURE} IS NOT NULL"


# -- enrichment -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Band:
    """A label for values below ``below`` (and above the band before it); ``below`` None: the rest."""

    label: str
    below: int | None = None


RUNTIME_BANDS = (
    Band("40 min or less", 41),
    Band("41-90 min", 91),
    Band("91-120 min", 121),
    Band("121-150 min", 151),
    Band("over 150 min"),
)
"""Running time bands (``length``, whole minutes); 40 minutes or less is a short by the Academy's rule."""
BUDGET_BANDS = (
    Band("under $1M", 1_000_000),
    Band("$1M-$10M", 10_000_000),
    Band("$10M-$50M", 50_000_000),
    Band("$50M-$100M", 100_000_000),
    Band("$100M or more"),
)
"""Budget bands, US dollars."""
GENRE_SEPARATOR = "|"
WEIGHTED_RATING_DECIMALS = 3

_RATING_SCALE = 10_000
"""Ratings are summed as whole ten-thousandths, so the batch mean is exact and the same on every engine
(a sum of doubles depends on the order it is taken in)."""


def _double_constant(value: float) -> str:
    return f"CAST({value!r} AS DOUBLE)"


def _band_sql(value: str, bands: tuple[Band, ...]) -> str:
    cases = " ".join(
        f"WHEN {value} < {band.below} THEN {literal(band.label)}" for band in bands if band.below is not None
    )
    return f"CASE WHEN {value} IS NULL THEN NULL {cases} ELSE {literal(bands[-1].label)} END"


def _round_half_up(number: str, decimals: int) -> str:
    """``number`` to ``decimals`` places, half up, as a DECIMAL: written alike by every engine."""
    scale = _double_constant(float(10**decimals))
    return f"CAST(floor({number} * {scale} + {_double_constant(0.5)}) / {scale} AS DECIMAL(9,{decimals}))"


def mean_rating_sql(rules: BatchRules) -> str:
    """``C``: the configured mean, or the mean rating of the batch's kept, rated movies (a window)."""
    if rules.mean_rating is not None:
        return _double_constant(float(rules.mean_rating))
    rated = "rating IS NOT NULL AND votes IS NOT NULL"
    scale = _double_constant(float(_RATING_SCALE))
    scaled = f"CAST(floor(rating * {scale} + {_double_constant(0.5)}) AS BIGINT)"
    total = f"CAST(sum(CASE WHEN {rated} THEN {scaled} END) OVER () AS DOUBLE)"
    count = f"CAST(count(CASE WHEN {rated} THEN 1 END) OVER () AS DOUBLE)"
    return f"{total} / {scale} / {count}"


def enrichment_sql(rules: BatchRules) -> dict[str, str]:
    """SQL for each column of ``ENRICHED_FIELDS``, over a kept row's typed fields.

    - ``genres``: the genres flagged true, ``|``-separated in the order of ``GENRES``; null for none.
    - ``primary_genre``: the first of them in ``PRIMARY_GENRES``.
    - ``decade``: 1990 for 1990 to 1999.
    - ``runtime_band``, ``budget_band``: ``RUNTIME_BANDS``, ``BUDGET_BANDS``; null when not known.
    - ``weighted_rating``: IMDb's Bayesian average (v·R + m·C) / (v + m), v the movie's votes, R its
      rating, m ``rules.min_votes``, C ``mean_rating_sql``; null when the rating or votes are missing.
    """
    listed = ", ".join(f"CASE WHEN {genre} THEN {literal(genre)} END" for genre in GENRES)
    primary = " ".join(f"WHEN {genre} THEN {literal(genre)}" for genre in PRIMARY_GENRES)
    votes, m = "CAST(votes AS DOUBLE)", _double_constant(float(rules.min_votes))
    weighted = f"({votes} * rating + {m} * ({mean_rating_sql(rules)})) / ({votes} + {m})"
    found = {
        "genres": f"nullif(concat_ws({literal(GENRE_SEPARATOR)}, {listed}), '')",
        "primary_genre": f"CASE {primary} END",
        "decade": "CAST(floor(year / 10) * 10 AS BIGINT)",
        "runtime_band": _band_sql("length", RUNTIME_BANDS),
        "budget_band": _band_sql("budget", BUDGET_BANDS),
        "weighted_rating": (
            f"CASE WHEN rating IS NOT NULL AND votes IS NOT NULL AND {votes} + {m} > 0 "
            f"THEN {_round_half_up(weighted, WEIGHTED_RATING_DECIMALS)} END"
        ),
    }
    assert tuple(found) == tuple(field.name for field in ENRICHED_FIELDS)
    return found


COUNTS: dict[str, str] = {
    "extracted": "count(1)",
    "clean": f"count(CASE WHEN {RANK} = 1 THEN 1 END)",
    "rejected": f"count(CASE WHEN {RANK} IS NULL THEN 1 END)",
    "duplicates": f"count(CASE WHEN {RANK} > 1 THEN 1 END)",
}
"""Aggregates over the ranked rows: where each row went (``TransformCounts``)."""


@lru_cache(maxsize=256)
def to_duckdb(sql: str) -> str:
    """The Spark SQL text in DuckDB's dialect."""
    import sqlglot

    return sqlglot.transpile(sql, read="spark", write="duckdb")[0]
