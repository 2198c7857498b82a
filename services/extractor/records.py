"""From a source's rows to the movie record: field mapping, typing that never fails, the cursor's range.

A source's batches arrive in its own field names and types. Each is mapped to the canonical fields
(``[sources.NAME.columns]``, else the canonical name itself, case-insensitively), and each value is
cast to its field's type. A value that does not fit (text in a number column, say) must not fail the
extract: ``movies.csv``, which the transform reads, keeps it as the text it arrived as, so the
transform rejects *that row* with a reason; ``movies.parquet`` stays typed and holds a null there.
The manifest counts such values per field (``unfit_values``).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from services.extractor.exceptions import SourceUnreadable
from services.extractor.sources.config import GENRE_LIST, BaseSource
from shared.schema import GENRES, MOVIE_FIELDS, arrow_schema

IDENTITY_FIELDS = ("title", "year")
"""What the movie key is made of (``shared.keys``): a source that has no field for one is refused."""
_TRUE = {"true", "t", "yes", "y", "1"}
_SHORT_BOOLEANS = pa.array(["t", "f"])
_FALSE = {"false", "f", "no", "n", "0"}


@dataclass(frozen=True)
class MovieBatch:
    """One batch in the movie record: ``as_text`` for the CSV, ``typed`` for Parquet."""

    as_text: pa.RecordBatch
    """Canonical columns; a column holding a value that did not fit is text, else typed."""
    typed: pa.RecordBatch
    """Exactly ``arrow_schema()``; values that did not fit are null."""


@dataclass
class CursorRange:
    """The lowest and highest cursor value an extract read, kept as the source wrote them."""

    column: str
    since: str | None = None
    low: str | None = None
    high: str | None = None

    def as_manifest(self) -> dict[str, Any]:
        return {"column": self.column, "since": self.since, "low": self.low, "high": self.high}


@dataclass
class RecordMapper:
    """Maps a source's batches to the movie record, counting what it could not use."""

    source: str
    config: BaseSource = field(default_factory=BaseSource)
    since: str | None = None
    filter_since: bool = True
    """Drop rows below the mark here; off for a source that filters at the source (SQL, an API with
    ``since_param``): what the source itself returned as at or above the mark is never dropped."""
    rows: int = 0
    ignored_fields: set[str] = field(default_factory=set)
    missing_fields: set[str] = field(default_factory=set)
    """Fields of the movie record no source field gives: each is null in every row."""
    unfit_values: Counter[str] = field(default_factory=Counter)
    other_genres: Counter[str] | None = None
    """Names in a source's genre lists that are none of the record's genres, when it has such lists."""
    cursor: CursorRange | None = None

    def __post_init__(self) -> None:
        if self.config.cursor:
            self.cursor = CursorRange(self.config.cursor, since=self.since)

    def source_field(self, canonical: str, names: list[str]) -> str | None:
        """The source field that feeds ``canonical``: mapped explicitly, else the same name."""
        for source_name, target in self.config.columns.items():
            if target == canonical:
                return source_name if source_name in names else None
        if canonical in names and canonical not in self.config.columns:
            return canonical  # the exact name first: a record may hold both "title" and "Title"
        lowered = {name.lower(): name for name in names if name not in self.config.columns}
        return lowered.get(canonical)

    def conform(self, batch: pa.RecordBatch) -> MovieBatch:
        """The batch in the movie record; rows below the mark of an incremental source are dropped."""
        names = batch.schema.names
        if self.cursor is not None:
            batch = self._track_cursor(batch, names)
        missing = [name for name in IDENTITY_FIELDS if self.source_field(name, names) is None]
        if missing:
            raise SourceUnreadable(
                self.source,
                f"no source field gives the movie record's {', '.join(missing)} (the source's fields: "
                f"{', '.join(names)}); map them in [sources.{self.source}.columns]",
            )
        used: set[str] = set()
        text_columns, typed_columns = [], []
        listed = self._listed_genres(batch, names, used)
        for canonical, target in zip(MOVIE_FIELDS, arrow_schema(), strict=True):
            source_name = self.source_field(canonical.name, names)
            if source_name is None and canonical.name in listed:
                text_columns.append(listed[canonical.name])
                typed_columns.append(listed[canonical.name])
                continue
            if source_name is None:
                self.missing_fields.add(canonical.name)
                column = pa.nulls(batch.num_rows, target.type)
                text_columns.append(column)
                typed_columns.append(column)
                continue
            used.add(source_name)
            as_text, typed, unfit = cast_column(batch.column(source_name), target.type)
            as_text, typed = _one_line(as_text), _one_line(typed)
            if unfit:
                self.unfit_values[canonical.name] += unfit
            text_columns.append(as_text)
            typed_columns.append(typed)
        self.ignored_fields.update(name for name in names if name not in used and name != self.config.cursor)
        self.rows += batch.num_rows
        return MovieBatch(
            as_text=pa.RecordBatch.from_arrays(text_columns, names=[f.name for f in MOVIE_FIELDS]),
            typed=pa.RecordBatch.from_arrays(typed_columns, schema=arrow_schema()),
        )

    def _listed_genres(self, batch: pa.RecordBatch, names: list[str], used: set[str]) -> dict[str, pa.Array]:
        """The genre flags a source gives as a list of genre names rather than one field each: for each
        flag no source field feeds, whether the movie's list names it."""
        source_name = self.source_field(GENRE_LIST, names)
        wanted = [genre for genre in GENRES if self.source_field(genre, names) is None]
        if source_name is None or not wanted:
            return {}
        used.add(source_name)
        lists = genre_lists(batch.column(source_name))
        if lists is None:
            # Not names (a list of numeric ids, say): nothing to match, so the flags are unknown.
            self.unfit_values[GENRE_LIST] += batch.num_rows - batch.column(source_name).null_count
            return {genre: pa.nulls(batch.num_rows, pa.bool_()) for genre in wanted}
        flags, others = genre_flags(lists, wanted)
        self.other_genres = (self.other_genres or Counter()) + others
        return flags

    def _track_cursor(self, batch: pa.RecordBatch, names: list[str]) -> pa.RecordBatch:
        assert self.cursor is not None
        column = self.cursor.column
        if column not in names:
            raise SourceUnreadable(
                self.source, f"the cursor column {column!r} is not among the source's fields {names}"
            )
        values = batch.column(column)
        if values.null_count:
            raise SourceUnreadable(
                self.source, f"the cursor column {column!r} has {values.null_count} null value(s)"
            )
        if self.since is not None and self.filter_since:
            # For a source that cannot filter (an API without since_param): this makes it incremental.
            keep = compare_cursor(values, self.since)
            if not pc.all(keep).as_py():
                batch = batch.filter(keep)
                values = batch.column(column)
        if batch.num_rows:
            low, high = cursor_bounds(values)
            if self.cursor.low is None or _cursor_less(low, self.cursor.low):
                self.cursor.low = low
            if self.cursor.high is None or _cursor_less(self.cursor.high, high):
                self.cursor.high = high
        return batch

    def manifest_fields(self) -> dict[str, Any]:
        """What the manifest says of the mapping: ignored source fields, unfit values, cursor range."""
        found: dict[str, Any] = {
            "extract_kind": "incremental" if self.since is not None else "full",
            "ignored_fields": sorted(self.ignored_fields),
            "unfit_values": dict(sorted(self.unfit_values.items())),
        }
        if self.other_genres is not None:
            # The most frequent first, as many as a reader would look through.
            found["other_genres"] = dict(self.other_genres.most_common(OTHER_GENRES_SHOWN))
        if self.cursor is not None:
            found["cursor"] = self.cursor.as_manifest()
        return found


OTHER_GENRES_SHOWN = 50
_GENRE_SEPARATORS = r"\s*[,|/;]\s*"


def genre_lists(values: pa.Array) -> pa.Array | None:
    """The values as lists of lower-case genre names; None when they are not names.

    A list of names, a list of objects with a ``name`` (an API's ``[{"id": 18, "name": "Drama"}]``),
    or text: names separated by commas, bars, slashes or semicolons, or a JSON list.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    kind = values.type
    if pa.types.is_null(kind):
        return pa.nulls(len(values), pa.list_(pa.string()))
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        if pc.any(pc.starts_with(pc.utf8_ltrim_whitespace(values), "[")).as_py():
            return genre_lists(_json_lists(values))
        lists = pc.split_pattern_regex(pc.utf8_trim_whitespace(values), _GENRE_SEPARATORS)
    elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
        item = kind.value_type
        if pa.types.is_struct(item) and item.get_field_index("name") >= 0:
            values = pa.ListArray.from_arrays(
                _list_offsets(values), pc.struct_field(values.flatten(), "name"), mask=values.is_null()
            )
        elif not (pa.types.is_string(item) or pa.types.is_large_string(item) or pa.types.is_null(item)):
            return None
        lists = values
    else:
        return None
    flat = pc.utf8_lower(pc.utf8_trim_whitespace(pc.cast(lists.flatten(), pa.string())))
    return pa.ListArray.from_arrays(_list_offsets(lists), flat, mask=lists.is_null())


def _list_offsets(lists: pa.Array) -> pa.Array:
    """Offsets of ``lists`` that start at 0, whatever slice of a larger array it is."""
    offsets = lists.offsets
    return pc.subtract(offsets, offsets[0]).cast(pa.int32())


def _json_lists(values: pa.Array) -> pa.Array:
    """Text holding JSON lists (``'["Drama", "Comedy"]'``, as an API's mixed types arrive) parsed; any
    other text is split on separators as it is."""
    parsed: list[list[str] | None] = []
    for text in values.to_pylist():
        listed = None
        if text is not None and text.lstrip().startswith("["):
            with contextlib.suppress(ValueError):
                listed = json.loads(text)
        if isinstance(listed, list):
            parsed.append(
                [str(item.get("name", "")) if isinstance(item, dict) else str(item) for item in listed]
            )
        else:
            parsed.append(None if text is None else re.split(_GENRE_SEPARATORS, text.strip()))
    return pa.array(parsed, pa.list_(pa.string()))


def genre_flags(lists: pa.Array, genres: list[str]) -> tuple[dict[str, pa.Array], Counter[str]]:
    """For each of ``genres``, whether each list names it (null where the list is null), and how often
    the lists name anything else."""
    flat = lists.flatten()
    parents = pc.list_parent_indices(lists).to_numpy()
    absent = lists.is_null()
    flags = {}
    for genre in genres:
        named = np.zeros(len(lists), dtype=bool)
        named[parents[pc.fill_null(pc.equal(flat, genre), False).to_numpy(zero_copy_only=False)]] = True
        flags[genre] = pc.if_else(absent, pa.scalar(None, pa.bool_()), pa.array(named))
    counted = pc.value_counts(flat)
    others = Counter(
        {
            name: count
            for name, count in zip(
                counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True
            )
            if name and name not in GENRES
        }
    )
    return flags, others


LINE_BREAK = r"\r\n|\r|\n"


def _one_line(values: pa.Array) -> pa.Array:
    """Text with each line break a space: a line of movies.csv is one record, for every stage and engine
    (the transform folds whitespace in text to single spaces anyway, so a title loses nothing)."""
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return values
    return pc.replace_substring_regex(values, pattern=LINE_BREAK, replacement=" ")


def cast_column(values: pa.Array, target: pa.DataType) -> tuple[pa.Array, pa.Array, int]:
    """``(as_text, typed, unfit)``: the column typed, with what did not fit kept as text in ``as_text``."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    values = _storage(values)
    if values.type == target:
        return values, values, 0
    if pa.types.is_null(values.type):
        typed = pa.nulls(len(values), target)
        return typed, typed, 0
    if pa.types.is_boolean(target) and (
        pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
    ):
        return _cast_text_to_boolean(values)
    if pa.types.is_boolean(target) and (
        pa.types.is_integer(values.type) or pa.types.is_floating(values.type)
    ):
        # Arrow takes every number but 0 as true; like the transform, take only 1 and 0 as booleans.
        booleans = pc.is_in(values, value_set=pa.array([0, 1], values.type))
        if pc.all(pc.or_(booleans, pc.is_null(values))).as_py() is not False:
            typed = pc.cast(values, target)
            return typed, typed, 0
        return _cast_text_to_boolean(pc.cast(values, pa.string()))
    if pa.types.is_floating(target) and _widened_inexactly(values.type, target):
        # A REAL widened to a double brings its binary error along (8.3 becomes 8.300000190734863), and
        # so does a NUMERIC converted to one (7.1 becomes 7.1000000000000005): the number the source
        # shows is its shortest decimal text, which Arrow writes, read back as a double.
        values = pc.cast(values, pa.string())
    if pa.types.is_temporal(values.type) and not pa.types.is_string(target):
        # Arrow would count a timestamp or an interval in microseconds (a release date as year
        # 882493320000000, 90 minutes as length 5400000000). No field of the movie record is such a
        # count: a point or span of time in a number or boolean field does not fit, and goes as text.
        as_text = pa.array([_as_text(value) for value in values.to_pylist()], type=pa.string())
        return as_text, pa.nulls(len(values), target), len(values) - values.null_count
    try:
        typed = pc.cast(values, target)
        return typed, typed, 0
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        pass
    # Some values do not fit: type them one by one, keeping the text of the ones that do not.
    text = [_as_text(value) for value in values.to_pylist()]
    typed_values: list[Any] = []
    unfit = 0
    for value in text:
        if value is None:
            typed_values.append(None)
            continue
        try:
            typed_values.append(pc.cast(pa.array([value]), target)[0].as_py())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            typed_values.append(None)
            unfit += 1
    typed = pa.array(typed_values, type=target)
    if not unfit:
        return typed, typed, 0
    as_text = pa.array(
        [
            original if typed_value is None else _as_text(typed_value)
            for original, typed_value in zip(text, typed_values, strict=True)
        ],
        type=pa.string(),
    )
    return as_text, typed, unfit


def _widened_inexactly(source: pa.DataType, target: pa.DataType) -> bool:
    """Whether a number of this type, cast to the floating type ``target``, gains digits it never had."""
    if pa.types.is_decimal(source):
        return True
    return pa.types.is_floating(source) and source.bit_width < target.bit_width


def _cast_text_to_boolean(values: pa.Array) -> tuple[pa.Array, pa.Array, int]:
    # PostgreSQL writes booleans as t / f: the common case, done in one pass.
    short = pc.or_(pc.is_in(values, value_set=_SHORT_BOOLEANS), pc.is_null(values))
    if pc.all(short).as_py() is not False:
        typed = pc.equal(values, "t")
        return typed, typed, 0
    lowered = pc.utf8_lower(pc.utf8_trim_whitespace(values))
    is_true = pc.is_in(lowered, value_set=pa.array(sorted(_TRUE)))
    is_false = pc.is_in(lowered, value_set=pa.array(sorted(_FALSE)))
    empty = pc.equal(lowered, "")
    fits = pc.or_kleene(pc.or_kleene(is_true, is_false), empty)
    typed = pc.if_else(is_true, True, pc.if_else(is_false, False, pa.scalar(None, pa.bool_())))
    unfit = len(values) - values.null_count - pc.sum(pc.cast(fits, pa.int64())).as_py() if len(values) else 0
    if not unfit:
        return typed, typed, 0
    as_text = pc.if_else(pc.fill_null(fits, True), pc.cast(typed, pa.string()), values)
    return as_text, typed, unfit


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, pa.MonthDayNano):
        return _iso_duration(value)
    return str(value)


def _iso_duration(interval: pa.MonthDayNano) -> str:
    """An interval (PostgreSQL's, through Arrow) in ISO 8601: 170 minutes is ``PT10200S``."""
    whole, fraction = divmod(abs(interval.nanoseconds), 1_000_000_000)
    seconds = f"{'-' if interval.nanoseconds < 0 else ''}{whole}"
    if fraction:
        seconds += f".{fraction:09d}".rstrip("0")
    text = "P"
    if interval.months:
        text += f"{interval.months}M"
    if interval.days:
        text += f"{interval.days}D"
    if interval.nanoseconds or text == "P":
        text += f"T{seconds}S"
    return text


# -- the cursor ------------------------------------------------------------------------------------
def _storage(values: pa.Array) -> pa.Array:
    """The values without an extension type (ADBC hands PostgreSQL's numeric over as one)."""
    return values.storage if isinstance(values.type, pa.BaseExtensionType) else values


def _ordering(values: pa.Array) -> Callable[[pa.Array], pa.Array]:
    """How to make these cursor values, and a mark of the same kind, compare as what they are.

    Numbers as numbers, timestamps as instants (text in ISO 8601 whatever its fraction or zone
    spelling), anything else as text.
    """
    values = _storage(values)
    if (
        pa.types.is_integer(values.type)
        or pa.types.is_floating(values.type)
        or pa.types.is_decimal(values.type)
    ):
        return lambda array: pc.cast(_storage(array), pa.float64())
    if pa.types.is_temporal(values.type):
        target = values.type
        return lambda array: pc.cast(_storage(array), target)
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return lambda array: pc.cast(_storage(array), pa.string())
    for target in (pa.int64(), pa.float64(), pa.timestamp("us", tz="UTC"), pa.timestamp("us")):
        try:
            pc.cast(values, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        return lambda array, target=target: pc.cast(_storage(array), target)
    return _storage


def _text_array(values: pa.Array) -> pa.Array:
    values = _storage(values)
    return values if pa.types.is_string(values.type) else pc.cast(values, pa.string())


def cursor_bounds(values: pa.Array) -> tuple[str, str]:
    """The lowest and highest cursor value, each as the source wrote it."""
    ordered = _ordering(values)(values)
    bounds = pc.min_max(ordered)
    low = pc.index(ordered, bounds["min"]).as_py()
    high = pc.index(ordered, bounds["max"]).as_py()
    text = _text_array(values)
    return text[low].as_py(), text[high].as_py()


def _cursor_less(left: str, right: str) -> bool:
    pair = pa.array([left, right])
    ordered = _ordering(pair)(pair)
    return pc.less(ordered[0], ordered[1]).as_py()


def compare_cursor(values: pa.Array, since: str) -> pa.Array:
    """Which values are at or above the mark ``since`` (ties are re-read: timestamps tie often)."""
    order = _ordering(values)
    try:
        mark = order(pa.array([since]))[0]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pc.greater_equal(_text_array(values), since)
    return pc.greater_equal(order(values), mark)
