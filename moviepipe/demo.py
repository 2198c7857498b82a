"""``moviepipe demo`` (what ``make run`` runs): one real extract through the whole pipeline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.console import Console

from moviepipe import stack
from moviepipe.client import ApiError, ExtractorClient
from shared.settings import STAGES, Settings

BATCHES_SQL = (
    "SELECT EXTRACT_ID, SOURCE, EXTRACT_KIND, ROWS_EXTRACTED, ROWS_LOADED, ROWS_REJECTED, ROWS_DUPLICATE, "
    "ROWS_MERGED, VERSIONS_OPENED, CHANGED_IN_PLACE, MOVIES_CLOSED, STATUS "
    "FROM MOVIES.AUDIT.BATCHES WHERE EXTRACT_ID = '{extract_id}'"
)
GENRES_SQL = (
    "SELECT GENRE, COUNT(*) AS DECADES, SUM(MOVIES) AS MOVIES, "
    "ROUND(SUM(AVG_RATING * MOVIES) / SUM(MOVIES), 2) AS AVG_RATING "
    "FROM MOVIES.ANALYTICS.V_RATINGS_BY_GENRE_DECADE GROUP BY GENRE ORDER BY MOVIES DESC"
)
SAMPLE_SQL = (
    "SELECT TITLE, YEAR, RATING, VOTES, MPAA FROM MOVIES.RAW.MOVIES "
    "WHERE EXTRACT_ID = '{extract_id}' ORDER BY VOTES DESC, TITLE LIMIT 5"
)
REJECTS_SQL = (
    "SELECT REASON, FIELD, COUNT(*) AS N FROM MOVIES.AUDIT.REJECTS "
    "WHERE EXTRACT_ID = '{extract_id}' GROUP BY REASON, FIELD ORDER BY N DESC"
)


def run_demo(
    settings: Settings,
    console: Console,
    *,
    source: str,
    timeout: float,
    follow: Callable[[ExtractorClient, str, float], dict[str, Any]],
    show: Callable[..., None],
    stage_table: Callable[[dict[str, Any]], Any],
    step: Callable[[str], None],
) -> int:
    """Run the demo; returns the process exit code."""
    from shared.warehouse import query

    if not stack.is_up(settings):
        console.rule("starting the local stack")
        try:
            stack.start_detached(settings, step)
        except stack.StackError as exc:
            console.print(f"[red]the stack did not start:[/red] {exc}")
            return 1
    client = ExtractorClient(settings)
    console.rule(f"extracting {source}")
    started = time.monotonic()
    try:
        extract_id = client.request_extract(source)
        step(f"POST /extracts → extract {extract_id}; following it through every stage")
        record = follow(client, extract_id, timeout)
    except ApiError as exc:
        console.print(f"[red]{exc}[/red]")
        return 1
    elapsed = time.monotonic() - started

    if record["status"] != "loaded":
        console.print(f"[red]extract {extract_id} ended {record['status']}[/red] after {elapsed:.1f}s")
        for stage in STAGES:
            entry = record["stages"].get(stage, {})
            if entry.get("error"):
                console.print(f"  {stage}: {entry['error']}")
        console.print(f"the bundle is kept in s3://{settings.bucket('quarantine')}/ with a reason.json")
        return 1

    console.rule(f"loaded in {elapsed:.1f}s")
    columns, rows = query(settings, BATCHES_SQL.format(extract_id=extract_id))
    show(
        ["column", "value"],
        list(zip(columns, rows[0], strict=True)),
        title="MOVIES.AUDIT.BATCHES",
        count=False,
    )
    show(
        *query(settings, SAMPLE_SQL.format(extract_id=extract_id)),
        title="most voted movies (MOVIES.RAW.MOVIES)",
    )
    show(*query(settings, GENRES_SQL), title="movies by genre (MOVIES.ANALYTICS.V_RATINGS_BY_GENRE_DECADE)")
    columns, rows = query(settings, REJECTS_SQL.format(extract_id=extract_id))
    if rows:
        show(columns, rows, title="rejects by reason (MOVIES.AUDIT.REJECTS)")
    else:
        console.print("no rows were rejected (MOVIES.AUDIT.REJECTS holds none for this extract)")

    console.rule("where to look")
    landing = record["stages"].get("extractor", {}).get("landing", f"s3://{settings.bucket('landing')}/")
    console.print(f"bundle:      {landing}")
    console.print(f"processed:   s3://{settings.bucket('processed')}/{source}/{extract_id}/")
    console.print(f"archive:     s3://{settings.bucket('archive')}/{source}/{extract_id}/")
    api = f"{settings.service_url('extractor')}/extracts/{extract_id}"
    console.print(f"progress:    moviepipe status {extract_id}   (or GET {api})")
    console.print(
        'query:       moviepipe query "SELECT * FROM MOVIES.ANALYTICS.V_TOP_MOVIES WHERE RANK <= 10"'
    )
    console.print('history:     moviepipe history "Titanic"   (every version of a movie, SCD Type 2)')
    ports = f"{settings.extractor_port}-{settings.loader_port}"
    console.print(f"metrics:     {settings.service_url('loader')}/metrics (one per service, ports {ports})")
    console.print(f"logs:        {stack.log_dir(settings)}/")
    from services.extractor.settings import extractor_settings

    sources_file = extractor_settings(settings).sources_file
    console.print(
        f"sources:     moviepipe sources   (declare your own in {sources_file}; README: Declare a source)"
    )
    console.print("stop:        moviepipe down")
    console.print("[dim](the commands are in .venv/bin/ unless the virtualenv is active)[/dim]")
    dashboard = settings.service_url("dashboard")
    console.print(f"[bold]Dashboard: {dashboard}/[/bold]   (analytics; the pipeline at {dashboard}/pipeline)")
    return 0
