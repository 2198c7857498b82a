"""Every rule of ``shared.transform`` on small hand-made rows, run by both engines (DuckDB and Spark).

Each test runs once per engine (the ``engine`` fixture) and reads the archive files the engine wrote,
as the loader reads them.
"""

from __future__ import annotations

import json
import random

import pytest

from services.transformer.archive import collect_parts, null_counts
from services.transformer.exceptions import RowCountMismatch
from shared.keys import movie_key
from shared.schema import CLEAN_MOVIE_FIELDS, REJECT_FIELDS, field_names
from tests.integration.movies_rows import GOOD, movie

pytestmark = pytest.mark.integration


def reasons(output) -> dict[str, tuple[str, str, str]]:
    """Each reject by the title it arrived with: (reason, field, detail)."""
    return {
        json.loads(r["record"]).get("title"): (r["reason"], r["field"], r["detail"]) for r in output.rejects
    }


def test_each_reject_reason_names_its_field_and_what_was_wrong(engine):
    # GIVEN one good row and one row breaking each kind of rule
    rows = [
        movie(title="Kept"),
        movie(title=""),
        movie(title="No Year", year="NA"),
        movie(title="Bad Year", year="19x5"),
        movie(title="Half Minute", length="90.5"),
        movie(title="Huge Budget", budget="99999999999999999999"),
        movie(title="Too Good", rating="11"),
        movie(title="Negative Votes", votes="-3"),
        movie(title="Too Early", year="1850"),
        movie(title="Far Future", year="2030"),
        movie(title="Rated Z", mpaa="Z"),
        movie(title="Maybe Action", action="maybe"),
        movie(title="Rating NaN", rating="NaN"),
        movie(title="Comma Decimal", budget="1,5"),
    ]
    # WHEN
    output = engine(rows)
    # THEN
    assert [row["title"] for row in output.clean] == ["Kept"]
    assert reasons(output) == {
        None: ("MISSING_VALUE", "title", "title is missing"),
        "No Year": ("MISSING_VALUE", "year", "year is missing"),
        "Bad Year": ("NOT_A_NUMBER", "year", "year '19x5' is not a number"),
        "Half Minute": ("NOT_A_NUMBER", "length", "length '90.5' is not a whole number"),
        "Huge Budget": (
            "NOT_A_NUMBER",
            "budget",
            "budget '99999999999999999999' is too large for a whole number",
        ),
        "Too Good": ("OUT_OF_RANGE", "rating", "rating '11' is above the maximum 10"),
        "Negative Votes": ("OUT_OF_RANGE", "votes", "votes '-3' is below the minimum 0"),
        "Too Early": ("OUT_OF_RANGE", "year", "year '1850' is below the minimum 1888"),
        "Far Future": ("OUT_OF_RANGE", "year", "year '2030' is after 2029 (the extract's year plus 3)"),
        "Rated Z": (
            "NOT_ALLOWED",
            "mpaa",
            "mpaa 'Z' is not one of G, PG, PG-13, R, NC-17 (or a spelling of one)",
        ),
        "Maybe Action": ("NOT_ALLOWED", "action", "action 'maybe' is not one of true, false, yes, no, 1, 0"),
        "Rating NaN": ("NOT_A_NUMBER", "rating", "rating 'NaN' is not a number"),
        "Comma Decimal": ("NOT_A_NUMBER", "budget", "budget '1,5' is not a number"),
    }
    assert {r["extract_id"] for r in output.rejects} == {"e-test"}
    assert list(output.rejects[0]) == field_names(REJECT_FIELDS)


def test_malformed_rows_are_rejects_that_keep_their_line(engine):
    # GIVEN a row with too few columns, one with too many, and one with an unbalanced quote
    good_line = ",".join(GOOD[name] for name in field_names())
    unbalanced = '"Unbalanced,1999,100,NA,7.5,1000,4.5,4.5,4.5,4.5,4.5,4.5,4.5,4.5,4.5,4.5,,0,0,0,0,0,0,0'
    rows = [
        movie(title="Fine"),
        "Short Row,1999,100",
        good_line + ",surplus",
        unbalanced,
        movie(title="Also"),
    ]
    # WHEN
    output = engine(rows)
    # THEN
    assert [row["title"] for row in output.clean] == ["Fine", "Also"]
    assert [(r["reason"], r["field"]) for r in output.rejects] == [("MALFORMED_ROW", "")] * 3
    assert [json.loads(r["record"]) for r in output.rejects] == [
        {"_line": "Short Row,1999,100"},
        {"_line": good_line + ",surplus"},
        {"_line": unbalanced},
    ]
    assert output.counts.extracted == 5 and output.counts.conserved


def test_a_line_whose_quotes_pair_up_but_leave_a_value_open_is_one_malformed_row(engine):
    # GIVEN a line with two quotes: the first inside a value (a character), the second opening the mpaa
    # value, which the line never closes; good rows before and after it
    opened = ",".join({**GOOD, "title": 'Say "Hi', "mpaa": '"R'}[name] for name in field_names())
    rows = [movie(title="Before"), opened, movie(title="After"), movie(title="Last")]
    # WHEN
    output = engine(rows)
    # THEN that line alone is refused, and the open quote takes no other line with it
    assert [row["title"] for row in output.clean] == ["Before", "After", "Last"]
    assert [json.loads(r["record"]) for r in output.rejects] == [{"_line": opened}]
    assert output.rejects[0]["reason"] == "MALFORMED_ROW"
    assert output.counts.extracted == 4 and output.counts.conserved


def test_each_batch_carries_its_own_extract_id_one_after_another(engine):
    # GIVEN two batches in a row, one id with a quote in it (the SQL of a batch is reused by the next)
    rows = [movie(title="Kept"), movie(title="")]
    # WHEN each is transformed
    outputs = {extract_id: engine(rows, extract_id=extract_id) for extract_id in ("e-first", "e-o'second")}
    # THEN every clean row and every reject names its own batch
    for extract_id, output in outputs.items():
        assert {row["extract_id"] for row in output.clean} == {extract_id}
        assert {row["extract_id"] for row in output.rejects} == {extract_id}


def test_a_row_is_rejected_for_its_first_failing_rule_in_record_order_and_kept_as_it_arrived(engine):
    # GIVEN a row whose year, rating and mpaa are all wrong, padded with spaces
    rows = [movie(title=" Many Faults ", year="later", rating="99", mpaa="Z")]
    # WHEN
    output = engine(rows)
    # THEN the year is reported, and the record keeps every value exactly as it arrived
    assert [(r["reason"], r["field"]) for r in output.rejects] == [("NOT_A_NUMBER", "year")]
    record = json.loads(output.rejects[0]["record"])
    assert record == {**GOOD, "title": " Many Faults ", "year": "later", "rating": "99", "mpaa": "Z"}


def test_only_title_and_year_are_required_a_missing_descriptive_value_is_a_null(engine):
    # GIVEN a movie with no runtime, budget, rating, votes, MPAA rating, shares or genres
    empty = dict.fromkeys(["length", "budget", "rating", "votes", "mpaa", "r1", "r10", "drama"], "NA")
    rows = [movie(title="Sparse", **empty), movie(title="Blank", length="", rating="", votes=" ")]
    # WHEN
    output = engine(rows)
    # THEN both are clean, with nulls (empty fields) where nothing was known
    assert output.rejects == []
    sparse, blank = output.clean
    assert [sparse[name] for name in empty] == [""] * len(empty)
    assert (blank["length"], blank["rating"], blank["votes"]) == ("", "", "")
    # AND the archive manifest's null counts say so
    nulls = null_counts(collect_parts(output.directory))
    assert (nulls["length"], nulls["mpaa"], nulls["mpaa_original"], nulls["title"]) == (2, 2, 2, 0)


def test_the_year_horizon_follows_the_extracts_year_and_the_setting(engine):
    # GIVEN films announced for the next years, extracted in 2026
    rows = [movie(title=f"Film {year}", year=str(year)) for year in (2026, 2027, 2029, 2030)]
    # WHEN with the default horizon (3), and with none
    default = engine(rows, extracted_at="2026-12-31T23:00:00+00:00")
    strict = engine(rows, extracted_at="2026-01-01T00:00:00Z", year_horizon=0)
    # THEN
    assert [row["year"] for row in default.clean] == ["2026", "2027", "2029"]
    assert [(r["reason"], r["field"]) for r in default.rejects] == [("OUT_OF_RANGE", "year")]
    assert [row["year"] for row in strict.clean] == ["2026"]
    assert reasons(strict)["Film 2027"][2] == "year '2027' is after 2026 (the extract's year plus 0)"


def test_titles_have_whitespace_collapsed_keep_their_case_and_key_on_the_normalised_form(engine):
    # GIVEN a title with padding, a tab and runs of spaces, and another spelling of the same movie
    rows = [movie(title="  The   Big\tSleep ", votes="10"), movie(title="the big sleep", year="1946")]
    # WHEN
    output = engine(rows)
    # THEN
    big, other = output.clean
    assert big["title"] == "The Big Sleep"
    assert big["movie_key"] == movie_key("The Big Sleep", 1999) == movie_key("the big sleep", 1999)
    assert other["movie_key"] == movie_key("The Big Sleep", 1946)


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("PG13", "PG-13"),
        ("pg-13", "PG-13"),
        ("PG 13", "PG-13"),
        (" r ", "R"),
        ("nc-17", "NC-17"),
        ("NC17", "NC-17"),
        ("g", "G"),
        ("Not Rated", ""),
        ("Unrated", ""),
        ("NR", ""),
        ("Approved", ""),
        ("TV-MA", ""),
        ("NA", ""),
    ],
)
def test_mpaa_spellings_become_a_canonical_rating_or_null_and_the_original_is_kept(engine, given, canonical):
    # WHEN
    output = engine([movie(mpaa=given)])
    # THEN
    assert output.rejects == []
    (row,) = output.clean
    assert row["mpaa"] == canonical
    assert row["mpaa_original"] == ("" if given == "NA" else given.strip())


def test_numbers_may_carry_thousands_separators_and_whole_numbers_other_spellings(engine):
    # GIVEN
    rows = [
        movie(title="Separated", budget="1,000,000", votes="12,345", rating="7.5"),
        movie(title="Other Spellings", length="120.0", votes="1e+03", budget="+2500"),
    ]
    # WHEN
    output = engine(rows)
    # THEN
    assert output.rejects == []
    separated, spelled = output.clean
    assert (separated["budget"], separated["votes"]) == ("1000000", "12345")
    assert (spelled["length"], spelled["votes"], spelled["budget"]) == ("120", "1000", "2500")


def test_a_runtime_in_minutes_a_budget_in_dollars_and_n_a_are_read_as_they_are_meant(engine):
    # GIVEN values as an API such as OMDb writes them, and near misses
    rows = [
        movie(title="Spelled", length="142 min", budget="$28,767,189", rating="N/A", votes="2,345,678"),
        movie(title="Spelled Out", length="95 Minutes.", budget="USD 1,000,000", r1="N/A"),
        movie(title="Hours", length="2h 22min"),
        movie(title="Euros", budget="€5,000,000"),
    ]
    # WHEN
    output = engine(rows)
    # THEN the unit, the dollar sign and N/A are dropped; what they leave is judged as any number,
    # and a reject names the value as it was given
    spelled, spelled_out = output.clean
    assert (spelled["length"], spelled["budget"], spelled["rating"], spelled["votes"]) == (
        "142",
        "28767189",
        "",
        "2345678",
    )
    assert (spelled_out["length"], spelled_out["budget"], spelled_out["r1"]) == ("95", "1000000", "")
    assert reasons(output) == {
        "Hours": ("NOT_A_NUMBER", "length", "length '2h 22min' is not a number"),
        "Euros": ("NOT_A_NUMBER", "budget", "budget '€5,000,000' is not a number"),
    }


@pytest.mark.parametrize(
    ("given", "written"),
    [("1", "true"), ("0", "false"), ("true", "true"), ("FALSE", "false"), ("Yes", "true"), ("no", "false")],
)
def test_booleans_are_true_false_yes_no_1_0_in_any_case(engine, given, written):
    output = engine([movie(action=given)])
    assert [row["action"] for row in output.clean] == [written]


def test_duplicates_keep_the_most_voted_row_per_movie_key_whatever_the_order_and_are_counted(engine):
    # GIVEN three spellings of one movie (same key), the same title in another year, a reject, and two
    # rows equal in votes and rating that differ in runtime
    rows = [
        movie(title="Foo", year="2000", votes="10"),
        movie(title="foo!", year="2000", votes="50"),
        movie(title="FOO", year="2000", votes="5"),
        movie(title="Foo", year="2001", votes="1"),
        movie(title="", year="2000"),
        movie(title="Tie", length="95"),
        movie(title="Tie", length="90"),
    ]
    # WHEN in this order, and shuffled
    output = engine(rows)
    shuffled = engine(random.Random(8).sample(rows, len(rows)))
    # THEN
    kept = sorted((row["title"], row["year"], row["length"]) for row in output.clean)
    assert kept == [("Foo", "2001", "100"), ("Tie", "1999", "90"), ("foo!", "2000", "100")]
    assert sorted((row["title"], row["year"], row["length"]) for row in shuffled.clean) == kept
    counts = output.counts
    assert (counts.extracted, counts.clean, counts.rejected, counts.duplicates) == (7, 3, 1, 3)
    assert counts.conserved


def test_the_clean_rows_are_the_csv_the_loader_expects(engine):
    # GIVEN a title with a comma and quotes, one with a hash, and no rejects
    output = engine([movie(title='Foo, "The"', action="1", mpaa="PG13"), movie(title="Pilot #5")])
    # THEN
    lines = output.movies_bytes.decode().splitlines()
    assert lines[0] == ",".join(field_names(CLEAN_MOVIE_FIELDS))
    assert ',"Foo, ""The""",1999,100,,7.5,1000,' in lines[1]
    assert lines[1].endswith(
        ",PG-13,true,false,false,false,false,false,false,PG13,action,action,1990,91-120 min,,7.500,e-test"
    )
    assert ",Pilot #5,1999," in lines[2]
    assert output.rejects_bytes.decode().splitlines() == [",".join(field_names(REJECT_FIELDS))]


def test_a_row_count_other_than_the_manifests_is_refused(engine):
    with pytest.raises(RowCountMismatch, match="2 rows"):
        engine([movie(title="A"), movie(title="B")], expected_rows=3)


def test_clean_rows_are_enriched_with_genres_decade_bands_and_the_weighted_rating(engine):
    # GIVEN movies across every genre combination, band edge and rating case
    rows = [
        movie(title="Romcom", year="1999", length="40", budget="999999", comedy="1", romance="yes"),
        movie(title="Cartoon Short", year="2000", length="41", budget="1,000,000", animation="1", short="1"),
        movie(title="Epic", year="1909", length="151", budget="100000000", drama="true", action="true"),
        movie(title="Long Feature", year="2005", length="150", budget="99999999", documentary="1"),
        movie(title="No Genre", length="NA", budget="50000000", rating="5.5", votes="3000"),
        movie(title="Unrated", rating="NA", votes="12"),
        movie(title="Unvoted", votes="NA", rating="9.1"),
    ]
    # WHEN
    output = engine(rows)
    # THEN each clean row carries its enrichment
    by_title = {row["title"]: row for row in output.clean}
    enrichment = ("genres", "primary_genre", "decade", "runtime_band", "budget_band")
    assert {title: tuple(row[name] for name in enrichment) for title, row in by_title.items()} == {
        "Romcom": ("comedy|romance", "romance", "1990", "40 min or less", "under $1M"),
        "Cartoon Short": ("animation|short", "animation", "2000", "41-90 min", "$1M-$10M"),
        "Epic": ("action|drama", "action", "1900", "over 150 min", "$100M or more"),
        "Long Feature": ("documentary", "documentary", "2000", "121-150 min", "$50M-$100M"),
        "No Genre": ("", "", "1990", "", "$50M-$100M"),
        "Unrated": ("", "", "1990", "91-120 min", ""),
        "Unvoted": ("", "", "1990", "91-120 min", ""),
    }
    # AND the weighted rating is (v·R + m·C) / (v + m), C the mean of the batch's rated movies, m 1,000
    rated = [(7.5, 1000)] * 4 + [(5.5, 3000)]
    mean = sum(rating for rating, _ in rated) / len(rated)
    assert mean == 7.1
    assert by_title["Romcom"]["weighted_rating"] == f"{(1000 * 7.5 + 1000 * mean) / 2000:.3f}" == "7.300"
    assert by_title["No Genre"]["weighted_rating"] == f"{(3000 * 5.5 + 1000 * mean) / 4000:.3f}" == "5.900"
    assert by_title["Unrated"]["weighted_rating"] == by_title["Unvoted"]["weighted_rating"] == ""


def test_the_weighted_ratings_mean_and_minimum_votes_follow_the_settings(engine):
    # GIVEN a movie with few votes and one with many
    rows = [movie(title="Few", rating="9.0", votes="10"), movie(title="Many", rating="6.0", votes="90000")]
    # WHEN the mean is configured (not the batch's) and m is 90
    output = engine(rows, mean_rating=5.0, min_votes=90)
    # THEN each is pulled toward 5.0 by m = 90 votes
    by_title = {row["title"]: row["weighted_rating"] for row in output.clean}
    assert by_title == {"Few": "5.400", "Many": "5.999"}
    # AND with m = 0 a movie's weighted rating is its own rating
    output = engine(rows, min_votes=0)
    assert {row["title"]: row["weighted_rating"] for row in output.clean} == {"Few": "9.000", "Many": "6.000"}
