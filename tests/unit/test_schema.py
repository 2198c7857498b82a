"""The one schema: every derived shape carries every field, with the same names and kinds."""

import pyarrow as pa

from shared import schema
from shared.keys import movie_key, normalise_title


def test_arrow_schema_has_every_field_in_order():
    # WHEN
    arrow = schema.arrow_schema()
    # THEN
    assert arrow.names == schema.field_names()
    assert arrow.field("year").type == pa.int64()
    assert arrow.field("rating").type == pa.float64()
    assert arrow.field("action").type == pa.bool_()
    assert arrow.field("title").type == pa.string()


def test_snowflake_columns_are_derived_upper_case():
    # WHEN
    columns = schema.snowflake_columns(schema.CLEAN_MOVIE_FIELDS)
    # THEN
    assert columns[0] == "MOVIE_KEY VARCHAR"
    assert "YEAR NUMBER(38,0)" in columns
    assert "RATING FLOAT" in columns
    assert "SHORT BOOLEAN" in columns
    assert columns[-1] == "EXTRACT_ID VARCHAR"
    assert "MPAA_ORIGINAL VARCHAR" in columns
    assert len(columns) == len(schema.MOVIE_FIELDS) + len(schema.ENRICHED_FIELDS) + 3
    assert "WEIGHTED_RATING FLOAT" in columns and "GENRES VARCHAR" in columns


def test_table_schema_carries_constraints():
    # WHEN
    fields = {f["name"]: f for f in schema.table_schema()["fields"]}
    # THEN
    assert fields["title"]["constraints"] == {"required": True}
    assert fields["year"]["constraints"]["minimum"] == 1888
    assert fields["mpaa"]["constraints"]["enum"] == list(schema.MPAA_RATINGS)
    assert fields["budget"]["type"] == "integer"


def test_source_record_is_the_imdb_columns():
    assert schema.field_names() == [
        "title", "year", "length", "budget", "rating", "votes",
        *(f"r{n}" for n in range(1, 11)),
        "mpaa", "action", "animation", "comedy", "drama", "documentary", "romance", "short",
    ]  # fmt: skip


def test_movie_key_ignores_case_punctuation_and_spacing():
    # GIVEN two spellings of one movie, and the same title in another year
    same = movie_key("Matrix, The", 1999), movie_key("  matrix   THE!! ", 1999)
    # THEN
    assert same[0] == same[1]
    assert movie_key("Matrix, The", 2003) != same[0]
    assert len(same[0]) == 16


def test_normalise_title_keeps_letters_of_any_script():
    assert normalise_title("Amélie (Le Fabuleux destin d'Amélie Poulain)") == (
        "amélie le fabuleux destin d amélie poulain"
    )
    assert normalise_title("$") == ""
