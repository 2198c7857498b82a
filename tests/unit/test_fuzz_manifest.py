"""Fuzzing the manifest parser (issue 11): whatever arrives as ``manifest.json``, ``parse_manifest`` reads
a ``Manifest`` or refuses it with ``ManifestInvalid`` saying why, and never anything else; a manifest this
pipeline writes reads back as it was written.

Every stage reads a manifest it did not write (the unzipper one from a bundle anyone may upload), and
catches ``ManifestInvalid`` only: any other exception fails the message again and again until the
dead-letter queue, instead of quarantining the input with its reason.
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from services.transformer.counts import KINDS
from shared.manifest import MEDIA_TYPES, Manifest, ManifestInvalid, Resource, new_manifest, parse_manifest
from shared.schema import CLEAN_MOVIE_FIELDS, MOVIE_FIELDS, REJECT_FIELDS, field_names, table_schema

# Frictionless validates every manifest parsed: a few milliseconds each, so 200 examples a test.
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- strategies ---------------------------------------------------------------------------------------

# Lone surrogates are legal in JSON text ("\ud800") but cannot be written back as UTF-8: the strategies
# for manifests a producer could write leave them out; the raw fuzz keeps them.
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
JSON_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | TEXT
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)
ANY_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
"""Any value ``json.dumps`` writes and ``json.loads`` reads back, NaN, infinities and surrogates included."""

NAMES = st.from_regex(r"[a-z0-9][-a-z0-9._]{0,20}", fullmatch=True)
"""Names as a tabular data package allows them (lower case letters, digits, ``-._``)."""
COUNTS = st.integers(min_value=0, max_value=10**15)


@st.composite
def resources(draw: st.DrawFn) -> Resource:
    """A data file of a manifest, described as ``describe_file`` describes one, from generated values."""
    fmt = draw(st.sampled_from(sorted(MEDIA_TYPES)))
    folder = draw(st.from_regex(r"([A-Za-z0-9_-]{1,12}/){0,2}", fullmatch=True))
    stem = draw(st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True))
    extra = draw(st.fixed_dictionaries({}, optional={"role": st.sampled_from(["movies", "rejects"])}))
    return Resource(
        name=draw(NAMES),
        path=f"{folder}{stem}.{fmt}",
        format=fmt,
        mediatype=MEDIA_TYPES[fmt],
        bytes=draw(COUNTS),
        hash="sha256:" + draw(st.from_regex(r"[0-9a-f]{64}", fullmatch=True)),
        rows=draw(COUNTS),
        schema=table_schema(draw(st.sampled_from([MOVIE_FIELDS, CLEAN_MOVIE_FIELDS, REJECT_FIELDS]))),
        **({"encoding": "utf-8"} if fmt == "csv" else {}),
        **extra,
    )


@st.composite
def manifests(draw: st.DrawFn) -> Manifest:
    """A manifest as the stages build one (``new_manifest``), from generated valid values."""
    extras = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "null_counts": st.dictionaries(st.sampled_from(field_names()), COUNTS, max_size=5),
                "bundle_etag": TEXT,
            },
        )
    )
    return new_manifest(
        extract_id=draw(st.from_regex(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}", fullmatch=True)),
        source=draw(TEXT.filter(bool)),
        stage=draw(st.sampled_from(["extract", "unzip", "transform"])),
        row_counts=draw(st.dictionaries(st.sampled_from(KINDS), COUNTS, min_size=1)),
        resources=draw(st.lists(resources(), min_size=1, max_size=3, unique_by=lambda r: r.name)),
        extracted_at=draw(st.datetimes(timezones=st.just(UTC))).isoformat(timespec="microseconds"),
        extract_kind=draw(st.sampled_from(["full", "incremental"])),
        **extras,
    )


A_MANIFEST = new_manifest(
    extract_id="20261126T041700Z-3e7c2a1b",
    source="imdb",
    stage="extract",
    row_counts={"extracted": 1},
    resources=[
        Resource(
            name="movies-csv",
            path="movies.csv",
            format="csv",
            mediatype="text/csv",
            encoding="utf-8",
            bytes=10,
            hash="sha256:" + "0" * 64,
            rows=1,
            schema=table_schema(MOVIE_FIELDS),
        )
    ],
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON document (as key/index paths), the root excluded."""
    found = [prefix] if prefix else []
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        found += _paths(child, (*prefix, key))
    return found


def _wrongly_typed(value: Any) -> st.SearchStrategy:
    """The same value in another JSON type, or a near miss of it."""
    near = [str(value), [value], {"value": value}, None, True, 0, -1, 1.5, "", []]
    if isinstance(value, int) and not isinstance(value, bool):
        near += [-value - 1, value + 0.5, float(value), 10**400]
    if isinstance(value, str):
        near += [value.upper(), value + " ", value[:-1], value * 2, "../" + value]
    return st.sampled_from(near)


@st.composite
def mutated_manifests(draw: st.DrawFn) -> dict[str, Any]:
    """A valid manifest's document with one to four places dropped, renamed, retyped or replaced."""
    document = json.loads(draw(manifests()).to_json())
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(_paths(document)))
        *parents, last = path
        parent = document
        for key in parents:
            parent = parent[key]
        how = draw(st.sampled_from(["drop", "rename", "retype", "replace", "add"]))
        if how == "drop":
            del parent[last]
        elif how == "rename" and isinstance(parent, dict):
            parent[draw(TEXT)] = parent.pop(last)
        elif how == "retype":
            parent[last] = draw(_wrongly_typed(parent[last]))
        elif how == "add" and isinstance(parent, dict):
            parent[draw(TEXT)] = draw(JSON_VALUES)
        else:
            parent[last] = draw(JSON_VALUES)
    return document


def as_stored(document: Any) -> st.SearchStrategy[str | bytes]:
    """The document as a stage may read it: text, or bytes in one of the encodings JSON allows."""
    text = json.dumps(document)
    return st.sampled_from(
        [text, text.encode("utf-8"), text.encode("utf-16"), json.dumps(document, ensure_ascii=False)]
    )


def read_or_refused(text: str | bytes) -> Manifest | None:
    """The manifest ``text`` holds, or None when refused with ``ManifestInvalid`` that says why.

    Any other exception escapes, and fails the property.
    """
    try:
        manifest = parse_manifest(text)
    except ManifestInvalid as exc:
        assert exc.problems, "refused without a problem named"
        assert all(isinstance(problem, str) and problem.strip() for problem in exc.problems)
        assert str(exc).strip()
        return None
    assert isinstance(manifest, Manifest)
    return manifest


# -- any input: a manifest or ManifestInvalid -----------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=400))
@example(data=b"\xff\xfe\x00")  # a UTF-16 byte-order mark, then a broken code unit
@example(data=b"\xef\xbb\xbf{}")  # a UTF-8 byte-order mark
@example(data=b"")
def test_any_bytes_are_read_as_a_manifest_or_refused_as_invalid(data):
    # GIVEN any bytes as manifest.json
    # WHEN parsed, THEN they are refused with the problems named (random bytes are no manifest)
    assert read_or_refused(data) is None


@FUZZ
@given(text=st.text(max_size=400))
@example(text='{"rows": ' + "9" * 5000 + "}")  # more digits than Python converts to an int
@example(text='{"resources": NaN, "name": Infinity}')  # Python's JSON reads these; JSON has neither
@example(text="[]")
@example(text="null")
def test_any_text_is_read_as_a_manifest_or_refused_as_invalid(text):
    # GIVEN any text as manifest.json, WHEN parsed, THEN it is refused with the problems named
    assert read_or_refused(text) is None


@FUZZ
@given(document=ANY_JSON_VALUES)
def test_any_json_value_is_read_as_a_manifest_or_refused_as_invalid(document):
    # GIVEN any JSON document
    text = json.dumps(document)
    # WHEN parsed, THEN it is refused with the problems named (not a manifest by chance)
    assert read_or_refused(text) is None
    assert read_or_refused(text.encode("utf-8")) is None


@FUZZ
@given(data=st.data(), document=mutated_manifests())
def test_a_mutated_manifest_is_read_or_refused_and_what_is_read_can_be_written_back(data, document):
    # GIVEN a valid manifest's document with keys dropped, renamed, retyped or replaced, as stored
    text = data.draw(as_stored(document))
    # WHEN parsed
    manifest = read_or_refused(text)
    event("read" if manifest else "refused")
    # THEN it is refused with the problems named, or read; and what is read, the stages can write back
    # (the unzipper republishes the bundle's manifest) as a manifest that reads the same again (the
    # writing leaves out null values: the first writing may drop some, a second changes nothing)
    if manifest is not None:
        written = manifest.to_json()
        assert parse_manifest(written).to_json() == written


def test_json_nested_deeper_than_python_reads_is_refused_as_invalid():
    # GIVEN JSON nested beyond the depth Python's json module reads
    text = "[" * 1000 + "]" * 1000
    # WHEN parsed, THEN refused as an invalid manifest
    with pytest.raises(ManifestInvalid):
        parse_manifest(text)


@pytest.mark.parametrize("field", [None, 0, "name"], ids=["null", "a-number", "a-string-holding-name"])
def test_a_schema_field_that_is_not_an_object_is_refused_as_invalid(field):
    # GIVEN a valid manifest whose first resource lists a field that is no object
    document = json.loads(A_MANIFEST.to_json())
    document["resources"][0]["schema"]["fields"][0] = field
    # WHEN parsed, THEN refused as an invalid manifest
    with pytest.raises(ManifestInvalid):
        parse_manifest(json.dumps(document))


def test_a_manifest_read_with_a_lone_surrogate_is_refused_or_can_be_written_back():
    # GIVEN a valid manifest with an extra string field holding a lone surrogate, escaped as JSON allows
    document = json.loads(A_MANIFEST.to_json()) | {"note": "\ud800"}
    # WHEN parsed
    manifest = read_or_refused(json.dumps(document))
    # THEN it is refused, or read and written back
    if manifest is not None:
        written = manifest.to_json()
        assert parse_manifest(written).to_json() == written


# -- valid manifests round-trip --------------------------------------------------------------------------


@FUZZ
@given(manifest=manifests())
def test_a_valid_manifest_written_as_the_stages_write_it_reads_back_equal(manifest):
    # GIVEN a manifest built from valid values
    # WHEN written as every stage writes it (to_json, UTF-8) and parsed back
    text = manifest.to_json()
    # THEN it is the same manifest, as text and as the bytes S3 returns
    assert parse_manifest(text) == manifest
    assert parse_manifest(text.encode("utf-8")) == manifest
    assert parse_manifest(text).resources[0].sha256 == manifest.resources[0].hash.removeprefix("sha256:")
