"""The canonical movie record, defined once.

Every other shape of it is derived here: the Arrow schema of the extract, the Spark ``StructType`` the
transform reads with, the warehouse DDL and the manifest's Frictionless Table Schema. Each field also says
what it is in the star schema: an attribute of ``DIM_MOVIE`` (Type 1: a change overwrites every version;
Type 2: a change opens a new version), a measure of ``FACT_MOVIE_RATING``, or both; the loader's merge
statements are generated from that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

SCHEMA_VERSION = "1.0"


@dataclass(frozen=True)
class Field:
    """One field of the movie record, with the constraints the transform enforces."""

    name: str
    kind: str  # "string" | "integer" | "number" | "boolean"
    description: str
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    enum: tuple[str, ...] | None = None
    scd: int | None = None
    """Slowly changing dimension type of this attribute in ``DIM_MOVIE`` (1 or 2); None: not an attribute."""
    measure: bool = False
    """Whether ``FACT_MOVIE_RATING`` carries it, per movie per extract."""
    not_after_extract: bool = False
    """A year that may be at most the extract's own year plus a horizon (``shared.transform``)."""
    units: tuple[str, ...] = ()
    """Words a number may be followed by, in any case, dropped before it is judged ("142 min")."""
    prefixes: tuple[str, ...] = ()
    """Signs a number may be preceded by, in any case, dropped before it is judged ("$28,767,189")."""

    @property
    def constraints(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if self.required:
            found["required"] = True
        if self.minimum is not None:
            found["minimum"] = self.minimum
        if self.maximum is not None:
            found["maximum"] = self.maximum
        if self.enum is not None:
            found["enum"] = list(self.enum)
        return found


GENRES = ("action", "animation", "comedy", "drama", "documentary", "romance", "short")
PRIMARY_GENRES = ("animation", "documentary", "short", "action", "romance", "comedy", "drama")
"""The order a movie's primary genre is chosen in: the genres that say what form a film takes first, then
the content genres from the most specific to the broadest (drama, the most common, last)."""
MPAA_RATINGS = ("G", "PG", "PG-13", "R", "NC-17")
TYPE_1 = 1  # a change overwrites the attribute in every version of the movie
TYPE_2 = 2  # a change closes the movie's current version and opens a new one

MOVIE_FIELDS: tuple[Field, ...] = (
    # Title and year make the movie key, so a change to either that keeps the key is a correction of
    # formatting: Type 1.
    Field("title", "string", "Title as listed on IMDb", required=True, scd=TYPE_1),
    # Only what identifies a movie is required; a missing descriptive value is a null, not a reject.
    Field(
        "year",
        "integer",
        "Year of release",
        required=True,
        minimum=1888,
        not_after_extract=True,
        scd=TYPE_1,
    ),
    Field(
        "length",
        "integer",
        "Running time in minutes, when known",
        minimum=1,
        maximum=6000,
        scd=TYPE_2,
        units=("minutes", "minute", "mins", "min"),
    ),
    Field(
        "budget",
        "integer",
        "Budget in US dollars, when known",
        minimum=0,
        scd=TYPE_2,
        measure=True,
        prefixes=("US$", "USD", "$"),
    ),
    Field("rating", "number", "Average IMDb user rating, when rated", minimum=1, maximum=10, measure=True),
    Field("votes", "integer", "Number of IMDb users who rated the movie", minimum=0, measure=True),
    *(
        Field(
            f"r{n}",
            "number",
            f"Percentage of users who rated the movie {n}",
            minimum=0,
            maximum=100,
            measure=True,
        )
        for n in range(1, 11)
    ),
    Field(
        "mpaa", "string", "MPAA rating, when rated (its spellings normalised)", enum=MPAA_RATINGS, scd=TYPE_2
    ),
    *(Field(genre, "boolean", f"Whether the movie is listed as {genre}", scd=TYPE_2) for genre in GENRES),
)
"""The movie as extracted from a source: the columns of ``movies.csv`` / ``movies.parquet``."""

MOVIE_KEY = Field("movie_key", "string", "Stable movie key from normalised title and year", required=True)
EXTRACT_ID = Field("extract_id", "string", "The extract this row arrived in", required=True)
MPAA_ORIGINAL = Field("mpaa_original", "string", "The MPAA rating as the source spelled it, when given")

ENRICHED_FIELDS: tuple[Field, ...] = (
    Field("genres", "string", "The movie's genres, '|'-separated in the order of GENRES; null when none"),
    Field("primary_genre", "string", "The first of the movie's genres in PRIMARY_GENRES", enum=GENRES),
    Field("decade", "integer", "Decade of release: the year with its last digit 0"),
    Field("runtime_band", "string", "Running time band (shared.transform.RUNTIME_BANDS), when known"),
    Field("budget_band", "string", "Budget band (shared.transform.BUDGET_BANDS), when known"),
    Field(
        "weighted_rating",
        "number",
        "IMDb-style weighted rating (v·R + m·C) / (v + m), to three decimals, when rated",
        minimum=1,
        maximum=10,
    ),
)
"""Columns the transform derives from a clean movie (``shared.transform``: enrichment)."""

CLEAN_MOVIE_FIELDS: tuple[Field, ...] = (
    MOVIE_KEY,
    *MOVIE_FIELDS,
    MPAA_ORIGINAL,
    *ENRICHED_FIELDS,
    EXTRACT_ID,
)
"""A cleansed movie as the transform writes it to the archive and the loader copies it into RAW."""

REJECT_FIELDS: tuple[Field, ...] = (
    EXTRACT_ID,
    Field("reason", "string", "Reject reason code (shared.rejects.Reason)", required=True),
    Field("field", "string", "The field that failed, when one did"),
    Field("detail", "string", "What was wrong, for a person", required=True),
    Field("record", "string", "The rejected row as it arrived, as JSON", required=True),
)
"""A row the transform refused, with its reason."""

_ARROW = {"string": "string", "integer": "int64", "number": "float64", "boolean": "bool_"}
"""The Arrow type of each kind, by its pyarrow constructor (pyarrow is imported only where used: it is
large, and the unzipper never needs it for a bundle without Parquet)."""
_SNOWFLAKE = {"string": "VARCHAR", "integer": "NUMBER(38,0)", "number": "FLOAT", "boolean": "BOOLEAN"}
_SPARK = {"string": "StringType", "integer": "LongType", "number": "DoubleType", "boolean": "BooleanType"}


def field_names(fields: tuple[Field, ...] = MOVIE_FIELDS) -> list[str]:
    return [f.name for f in fields]


def type1_fields(fields: tuple[Field, ...] = MOVIE_FIELDS) -> tuple[Field, ...]:
    """``DIM_MOVIE``'s Type 1 attributes: overwritten in place in every version."""
    return tuple(f for f in fields if f.scd == TYPE_1)


def type2_fields(fields: tuple[Field, ...] = MOVIE_FIELDS) -> tuple[Field, ...]:
    """``DIM_MOVIE``'s Type 2 attributes: a change opens a new version."""
    return tuple(f for f in fields if f.scd == TYPE_2)


def measure_fields(fields: tuple[Field, ...] = MOVIE_FIELDS) -> tuple[Field, ...]:
    """``FACT_MOVIE_RATING``'s measures."""
    return tuple(f for f in fields if f.measure)


def arrow_schema(fields: tuple[Field, ...] = MOVIE_FIELDS) -> pa.Schema:
    """Arrow schema; every field is nullable because a source may send gaps the transform rejects."""
    import pyarrow as pa

    return pa.schema([pa.field(f.name, getattr(pa, _ARROW[f.kind])(), nullable=True) for f in fields])


def spark_schema(fields: tuple[Field, ...] = MOVIE_FIELDS, *, as_strings: bool = False):
    """Spark ``StructType``; ``as_strings`` gives the untyped shape a raw CSV is read with."""
    from pyspark.sql import types as T

    return T.StructType(
        [
            T.StructField(f.name, T.StringType() if as_strings else getattr(T, _SPARK[f.kind])(), True)
            for f in fields
        ]
    )


def snowflake_columns(fields: tuple[Field, ...]) -> list[str]:
    """Column definitions (``NAME TYPE``) for warehouse DDL, names upper-cased as Snowflake stores them."""
    return [f"{f.name.upper()} {_SNOWFLAKE[f.kind]}" for f in fields]


def table_schema(fields: tuple[Field, ...] = MOVIE_FIELDS) -> dict[str, Any]:
    """Frictionless Table Schema for a manifest resource."""
    columns = []
    for f in fields:
        column: dict[str, Any] = {"name": f.name, "type": f.kind, "description": f.description}
        if f.constraints:
            column["constraints"] = f.constraints
        columns.append(column)
    return {"fields": columns, "missingValues": [""]}


_GLUE = {"string": "string", "integer": "bigint", "number": "double", "boolean": "boolean"}


def glue_columns(fields: tuple[Field, ...] = MOVIE_FIELDS) -> list[dict[str, str]]:
    """Columns of a Glue Data Catalog table (Hive types), for Athena and crawlers."""
    return [{"Name": f.name, "Type": _GLUE[f.kind], "Comment": f.description[:255]} for f in fields]
