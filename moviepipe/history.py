"""``moviepipe history``: every version of a movie in ``DIM_MOVIE``, as ``ANALYTICS.V_MOVIE_HISTORY`` has it.

A movie is named by its key (``shared.keys``) or by its title. Titles match as the movie key compares
them (``normalise_title``), so ``star wars`` finds ``Star Wars``. The warehouse holds each title as the
latest extract formatted it, so the match is made on the stored titles, never on keys computed from the
words typed: a narrow ``LIKE`` on ``LOWER(TITLE)`` fetches the candidates, Python keeps the exact matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.loader.statements import identifier
from shared.keys import normalise_title
from shared.schema import GENRES, type1_fields, type2_fields
from shared.settings import Settings
from shared.warehouse import address, connect

VIEW = "ANALYTICS.V_MOVIE_HISTORY"
DIMENSION = "ANALYTICS.DIM_MOVIE"
MOVIE_KEY_PATTERN = re.compile(r"[0-9a-f]{16}")

MOVIE_COLUMNS = ("MOVIE_KEY", *(f.name.upper() for f in type1_fields()))
"""What names the movie: its key, and its Type 1 attributes (title and year), the same in every version."""

VERSION_COLUMNS = (
    "VERSION",
    "VALID_FROM",
    "VALID_TO",
    "IS_CURRENT",
    "IS_DELETED",
    "CHANGE",
    *(f.name.upper() for f in type2_fields()),
    "SOURCE",
    "OPENED_BY_EXTRACT",
)
"""One version: when it held, what opened it, and the Type 2 attributes that tell versions apart."""

COLUMNS = (*MOVIE_COLUMNS, *VERSION_COLUMNS)
"""The columns of ``--format csv|json``: one row per version, naming its movie."""

_GENRE_COLUMNS = tuple(genre.upper() for genre in GENRES)
_TABLE_ROWS = tuple(
    "GENRES" if name == _GENRE_COLUMNS[0] else name
    for name in VERSION_COLUMNS[1:]
    if name not in _GENRE_COLUMNS[1:]
)
"""The rows of the table for people: the version columns, the genre flags folded into one of names."""


@dataclass(frozen=True)
class MovieHistory:
    """One movie and its versions, oldest first (each a tuple in ``VERSION_COLUMNS`` order)."""

    movie_key: str
    title: str
    year: int
    versions: list[tuple]

    def rows(self) -> list[tuple]:
        """The versions as ``COLUMNS`` rows."""
        return [(self.movie_key, self.title, self.year, *version) for version in self.versions]


def is_movie_key(text: str) -> bool:
    """Whether ``text`` has the shape of a movie key: 16 lower-case hex digits."""
    return MOVIE_KEY_PATTERN.fullmatch(text) is not None


def title_pattern(title: str) -> str:
    """A ``LIKE`` pattern on ``LOWER(TITLE)`` that every title normalising as ``title`` does matches.

    Normalising keeps the words (runs of letters and digits) and their order, so such a title holds each
    word in order; the words hold no ``%`` or ``_``, so nothing needs escaping.
    """
    words = normalise_title(title).split()
    return "%" + "%".join(words) + "%" if words else "%"


# Movies are looked up in DIM_MOVIE itself (one current version each): the view would number and compare
# every version of every movie before a filter on IS_CURRENT or TITLE could apply.
def movies_by_key_sql(database: str) -> str:
    """The movie with key ``%(movie_key)s``: its key, title and year (from its current version)."""
    return (
        f"SELECT {', '.join(MOVIE_COLUMNS)} FROM {identifier(database)}.{DIMENSION}\n"
        "WHERE IS_CURRENT AND MOVIE_KEY = %(movie_key)s"
    )


def movies_by_title_sql(database: str) -> str:
    """The candidate movies whose ``LOWER(TITLE)`` is ``LIKE %(pattern)s``: key, title, year."""
    return (
        f"SELECT {', '.join(MOVIE_COLUMNS)} FROM {identifier(database)}.{DIMENSION}\n"
        "WHERE IS_CURRENT AND LOWER(TITLE) LIKE %(pattern)s\n"
        "ORDER BY YEAR, MOVIE_KEY"
    )


def versions_sql(database: str) -> str:
    """Every version of the movie with key ``%(movie_key)s``, oldest first."""
    return (
        f"SELECT {', '.join(VERSION_COLUMNS)} FROM {identifier(database)}.{VIEW}\n"
        "WHERE MOVIE_KEY = %(movie_key)s\n"
        "ORDER BY VERSION"
    )


def same_title(candidates: list[tuple], title: str) -> list[tuple]:
    """The ``(key, title, year)`` candidates whose title normalises as ``title`` does."""
    wanted = normalise_title(title)
    return [candidate for candidate in candidates if normalise_title(candidate[1]) == wanted]


def not_found(movie: str, settings: Settings) -> str:
    """Says what ``find_histories`` looked for, and where, when it found nothing."""
    searched = f"with key {movie} or titled {movie!r}" if is_movie_key(movie.lower()) else f"titled {movie!r}"
    return f"no movie {searched} in {settings.warehouse_database}.{VIEW} at {address(settings)}"


def find_histories(settings: Settings, movie: str) -> list[MovieHistory]:
    """The history of the movie with key ``movie``, else of every movie titled ``movie``; by year."""
    database = settings.warehouse_database
    with connect(settings) as connection:
        cursor = connection.cursor()
        found: list[tuple] = []
        if is_movie_key(movie.lower()):
            cursor.execute(movies_by_key_sql(database), {"movie_key": movie.lower()})
            found = [tuple(row) for row in cursor.fetchall()]
        if not found:
            # A title may look like a key (16 hex digits): a key that names no movie is tried as one.
            cursor.execute(movies_by_title_sql(database), {"pattern": title_pattern(movie)})
            found = same_title([tuple(row) for row in cursor.fetchall()], movie)
        histories = []
        for movie_key, title, year in found:
            cursor.execute(versions_sql(database), {"movie_key": movie_key})
            histories.append(MovieHistory(movie_key, title, year, [tuple(row) for row in cursor.fetchall()]))
        return histories


def table_view(history: MovieHistory) -> tuple[list[str], list[tuple]]:
    """The versions for a person: one column per version, oldest first, so a change reads along a row.

    (One row per version, as CSV and JSON have it, is 18 columns: too wide to read in a terminal.)
    """
    versions = [dict(zip(VERSION_COLUMNS, version, strict=True)) for version in history.versions]
    for version in versions:
        version["GENRES"] = ", ".join(name.lower() for name in _GENRE_COLUMNS if version[name])
    columns = ["VERSION", *(str(version["VERSION"]) for version in versions)]
    return columns, [(name, *(version[name] for version in versions)) for name in _TABLE_ROWS]
