"""The canonical movie record, defined once.

Every other shape of it is derived here: the Arrow schema of the extract, the Spark ``StructType`` the
transform reads with, the warehouse DDL and the manifest's Frictionless Table Schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
MPAA_RATINGS = ("G", "PG", "PG-13", "R", "NC-17")

MOVIE_FIELDS: tuple[Field, ...] = (
    Field("title", "string", "Title as listed on IMDb", required=True),
    Field("year", "integer", "Year of release", required=True, minimum=1888, maximum=2100),
    Field("length", "integer", "Running time in minutes", required=True, minimum=1, maximum=6000),
    Field("budget", "integer", "Budget in US dollars, when known", minimum=0),
    Field("rating", "number", "Average IMDb user rating", required=True, minimum=1, maximum=10),
    Field("votes", "integer", "Number of IMDb users who rated the movie", required=True, minimum=0),
    *(
        Field(f"r{n}", "number", f"Percentage of users who rated the movie {n}", minimum=0, maximum=100)
        for n in range(1, 11)
    ),
    Field("mpaa", "string", "MPAA rating, when rated", enum=MPAA_RATINGS),
    *(Field(genre, "boolean", f"Whether the movie is listed as {genre}") for genre in GENRES),
)
"""The movie as extracted from a source: the columns of ``movies.csv`` / ``movies.parquet``."""

MOVIE_KEY = Field("movie_key", "string", "Stable movie key from normalised title and year", required=True)
EXTRACT_ID = Field("extract_id", "string", "The extract this row arrived in", required=True)

CLEAN_MOVIE_FIELDS: tuple[Field, ...] = (MOVIE_KEY, *MOVIE_FIELDS, EXTRACT_ID)
"""A cleansed movie as the transform writes it to the archive and the loader copies it into RAW."""

REJECT_FIELDS: tuple[Field, ...] = (
    EXTRACT_ID,
    Field("reason", "string", "Reject reason code (shared.rejects.Reason)", required=True),
    Field("field", "string", "The field that failed, when one did"),
    Field("detail", "string", "What was wrong, for a person", required=True),
    Field("record", "string", "The rejected row as it arrived, as JSON", required=True),
)
"""A row the transform refused, with its reason."""

_ARROW = {"string": pa.string(), "integer": pa.int64(), "number": pa.float64(), "boolean": pa.bool_()}
_SNOWFLAKE = {"string": "VARCHAR", "integer": "NUMBER(38,0)", "number": "FLOAT", "boolean": "BOOLEAN"}
_SPARK = {"string": "StringType", "integer": "LongType", "number": "DoubleType", "boolean": "BooleanType"}


def field_names(fields: tuple[Field, ...] = MOVIE_FIELDS) -> list[str]:
    return [f.name for f in fields]


def arrow_schema(fields: tuple[Field, ...] = MOVIE_FIELDS) -> pa.Schema:
    """Arrow schema; every field is nullable because a source may send gaps the transform rejects."""
    return pa.schema([pa.field(f.name, _ARROW[f.kind], nullable=True) for f in fields])


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
