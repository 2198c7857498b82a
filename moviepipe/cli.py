"""``moviepipe``: run the local stack, request extracts, follow them, query the warehouse, benchmark."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from moviepipe import stack
from moviepipe.client import ApiError, ExtractorClient
from shared.settings import STAGES, Settings

OutputFormat = Annotated[
    str, typer.Option("--format", "-f", help="table (for people), csv, or json (objects by column).")
]

app = typer.Typer(help="moviepipe: the event-driven movie data pipeline.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


def _settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc


def _step(message: str) -> None:
    console.print(f"[dim]·[/dim] {message}")


def _fail(message: str, code: int = 1) -> typer.Exit:
    # The message may quote what a user typed or a title ("[Rec]"): text, never markup. One line, however
    # long, so that it reads (and greps) as one.
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


@contextlib.contextmanager
def _operation() -> Iterator[None]:
    """An operator's command against AWS: a refusal, or S3 and SQS not answering, is one line, not a
    traceback."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    from moviepipe.operations import OperationError

    try:
        yield
    except OperationError as exc:
        raise _fail(str(exc), 2) from exc
    except EndpointConnectionError as exc:
        raise _fail(f"{exc}: is the stack up? try `moviepipe up --detach`") from exc
    except (BotoCoreError, ClientError) as exc:
        raise _fail(f"{type(exc).__name__}: {exc}") from exc


# -- the stack ------------------------------------------------------------------------------------
@app.command()
def up(
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Run in the background and return.")] = False,
    replicas: Annotated[
        str | None,
        typer.Option(
            "--replicas",
            help="Copies of each stage's service on the same queues: a count (2) or per stage "
            "(unzipper=3,loader=2). Replica k listens on the stage's port + 10*(k-1).",
        ),
    ] = None,
) -> None:
    """Start the local stack: moto (S3/SQS/SNS/DynamoDB/Glue), the warehouse, the four services.

    A service that dies is started again after a back-off; one that keeps dying raises an alert.
    """
    settings = _settings()
    try:
        counts = stack.parse_replicas(replicas)
        if detach:
            pid = stack.start_detached(settings, _step, replicas)
            console.print(f"[green]stack is up[/green] (pid {pid}); logs in {stack.log_dir(settings)}")
            _print_endpoints(settings)
            return
        console.print("starting the local stack; Ctrl-C stops it")
        code = stack.run_foreground(settings, _step, counts)
    except stack.StackError as exc:
        raise _fail(str(exc)) from exc
    raise typer.Exit(code)


@app.command()
def down() -> None:
    """Stop a stack started with ``moviepipe up --detach``."""
    settings = _settings()
    if stack.stop_detached(settings, _step):
        console.print("[green]stack stopped[/green]")
    else:
        console.print("no stack is running from this home")


def _print_endpoints(settings: Settings) -> None:
    table = Table(title="endpoints", show_header=True)
    table.add_column("component")
    table.add_column("url")
    table.add_row("moto (AWS)", f"http://{settings.host}:{settings.moto_port}")
    table.add_row("warehouse (Snowflake)", f"http://{settings.host}:{settings.warehouse_port}")
    for service in STAGES:
        table.add_row(service, f"{settings.service_url(service)}  (/health /ready /metrics)")
    console.print(table)


# -- extracts ---------------------------------------------------------------------------------------
def _stage_table(record: dict[str, Any]) -> Table:
    table = Table(title=f"extract {record['extract_id']} ({record.get('source')}): {record.get('status')}")
    for column in ("stage", "status", "counts", "seconds", "detail"):
        table.add_column(column)
    for stage in STAGES:
        entry = record.get("stages", {}).get(stage)
        if not entry:
            table.add_row(stage, "[dim]waiting[/dim]", "", "", "")
            continue
        status = entry.get("status", "")
        colour = {"succeeded": "green", "running": "yellow", "quarantined": "magenta", "failed": "red"}.get(
            status, "white"
        )
        counts = ", ".join(f"{k}={v:,}" for k, v in (entry.get("counts") or {}).items())
        seconds = ""
        if entry.get("started_at") and status != "running":
            seconds = f"{_seconds(entry['started_at'], entry['at']):.2f}"
        error = entry.get("error") or {}
        detail = f"{error.get('code', '')}: {error.get('message', '')}" if error else ""
        table.add_row(stage, f"[{colour}]{status}[/{colour}]", counts, seconds, detail)
    return table


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _follow(client: ExtractorClient, extract_id: str, timeout: float) -> dict[str, Any]:
    with Live(console=console, refresh_per_second=8, transient=False) as live:
        record = client.follow(extract_id, lambda record: live.update(_stage_table(record)), timeout=timeout)
    console.print()
    return record


@app.command()
def extract(
    source: Annotated[str, typer.Argument(help="Source name, e.g. imdb (see `moviepipe sources`).")] = "imdb",
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Read the whole source, ignoring its high-water mark.")
    ] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the extract until it is loaded.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 900,
) -> None:
    """Request an extract of SOURCE through the extractor's API."""
    client = ExtractorClient(_settings())
    try:
        extract_id = client.request_extract(source, full_refresh=full_refresh)
        console.print(f"extract requested: [bold]{extract_id}[/bold]")
        if wait:
            record = _follow(client, extract_id, timeout)
            if record["status"] == "empty":
                console.print("the source had no new rows: nothing to load")
            elif record["status"] != "loaded":
                raise _fail(f"extract {extract_id} ended {record['status']}")
    except ApiError as exc:
        raise _fail(str(exc)) from exc


@app.command()
def sources() -> None:
    """List the sources an extract can name: kind, cursor, high-water mark, last extract."""
    client = ExtractorClient(_settings())
    try:
        found = client.sources()
    except ApiError as exc:
        raise _fail(str(exc)) from exc
    table = Table(title="sources")
    table.add_column("name", no_wrap=True)
    for column in ("kind", "cursor", "high-water mark", "last extract", "running"):
        table.add_column(column)
    for source in found:
        last = source.get("last_extract")
        table.add_row(
            source["name"],
            source.get("kind") or "",
            source.get("cursor") or "",
            source.get("high_water_mark") or "",
            f"{last} ({source.get('last_status')})" if last else "",
            source.get("running_extract") or "",
        )
    console.print(table)


seed_app = typer.Typer(help="Write data sets to measure with, registered as sources.", no_args_is_help=True)
app.add_typer(seed_app, name="seed")


@seed_app.command("scaled")
def seed_scaled(
    rows: Annotated[int, typer.Option("--rows", min=1, help="Rows to write, e.g. 1000000.")],
    into: Annotated[str, typer.Option("--into", help="sqlite or postgres.")] = "sqlite",
    url: Annotated[str | None, typer.Option(help="PostgreSQL SQLAlchemy URL, with --into postgres.")] = None,
) -> None:
    """The IMDb movies repeated to ROWS rows with distinct titles, registered as source imdb_<ROWS>."""
    from rich.progress import Progress

    from services.extractor.settings import extractor_settings
    from services.extractor.sources import ensure_sources_file
    from services.extractor.sources.scaled import DEFAULT_POSTGRES_URL
    from services.extractor.sources.scaled import seed_scaled as write_scaled

    if into not in ("sqlite", "postgres"):
        raise _fail(f"--into is {into!r}; expected sqlite or postgres", 2)
    if url and into != "postgres":
        raise _fail("--url names a PostgreSQL database; it goes with --into postgres", 2)
    settings = extractor_settings(_settings())
    sources_file = ensure_sources_file(settings.sources_file)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"writing {rows:,} rows into {into}", total=rows)
        try:
            name = write_scaled(
                rows,
                into=into,  # type: ignore[arg-type]
                sources_file=sources_file,
                sqlite_dir=settings.sources_dir,
                postgres_url=url or DEFAULT_POSTGRES_URL,
                progress=lambda done, _total: bar.update(task, completed=done),
            )
        except Exception as exc:
            raise _fail(f"seeding failed: {type(exc).__name__}: {exc}") from exc
    console.print(f"[green]source {name!r}[/green] registered in {sources_file}: {rows:,} rows")
    if url and "@" in url and ":" in url.split("@", 1)[0].split("//", 1)[-1]:
        console.print(
            "the password is not written to the sources file: set PGPASSWORD (or ~/.pgpass) where the "
            "extractor runs"
        )
    console.print(f"extract it with: moviepipe extract {name} --wait")


@app.command()
def status(extract_id: Annotated[str | None, typer.Argument(help="An extract id; omit for recent.")] = None):
    """Show an extract's progress through every stage; without one, the stack's processes and the recent
    extracts."""
    settings = _settings()
    client = ExtractorClient(settings)
    try:
        if extract_id:
            console.print(_stage_table(client.extract(extract_id)))
            return
        state = stack.read_state(settings)
        if state is None:
            console.print(f"no stack is running from {settings.home}")
        else:
            console.print(_process_table(state))
        table = Table(title="recent extracts")
        for column in ("extract_id", "source", "status", "requested_at"):
            table.add_column(column)
        for record in client.recent():
            table.add_row(
                record["extract_id"], record.get("source"), record.get("status"), record.get("requested_at")
            )
        console.print(table)
    except ApiError as exc:
        raise _fail(str(exc)) from exc


def _process_table(state: dict) -> Table:
    table = Table(title=f"local stack (supervisor pid {state['pid']})")
    for column in ("process", "pid", "port", "state", "up (s)", "restarts", "last exit"):
        table.add_column(column)
    for process in state["processes"]:
        colour = {"running": "green", "restarting": "yellow"}.get(process["state"], "red")
        table.add_row(
            process["name"],
            str(process["pid"] or "-"),
            str(process["port"]),
            f"[{colour}]{process['state']}[/{colour}]",
            f"{time.time() - process['started_at']:.0f}" if process["started_at"] else "-",
            str(process["restarts"]),
            str(process["last_exit"] if process["last_exit"] is not None else "-"),
        )
    return table


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help='SQL, e.g. "SELECT COUNT(*) FROM MOVIES.RAW.MOVIES"')],
    output_format: OutputFormat = "table",
) -> None:
    """Run SQL on the warehouse and print the result."""
    from moviepipe.output import FORMATS, as_csv, as_json
    from shared.warehouse import query as run_query

    if output_format not in FORMATS:
        raise _fail(f"--format is {output_format!r}; expected one of {', '.join(FORMATS)}", 2)
    try:
        columns, rows = run_query(_settings(), sql)
    except Exception as exc:
        raise _fail(f"{type(exc).__name__}: {exc}") from exc
    if output_format == "json":
        print(as_json(columns, rows))
    elif output_format == "csv":
        print(as_csv(columns, rows), end="")
    else:
        _print_rows(columns, rows)


@app.command()
def history(
    movie: Annotated[str, typer.Argument(help="A movie key (16 hex digits) or a title, e.g. 'Star Wars'.")],
    output_format: OutputFormat = "table",
) -> None:
    """Show every version of a movie in the warehouse, oldest first, and what changed in each."""
    from moviepipe.history import COLUMNS, find_histories, not_found, table_view
    from moviepipe.output import FORMATS, as_csv, as_json

    if output_format not in FORMATS:
        raise _fail(f"--format is {output_format!r}; expected one of {', '.join(FORMATS)}", 2)
    settings = _settings()
    try:
        histories = find_histories(settings, movie)
    except Exception as exc:
        raise _fail(f"{type(exc).__name__}: {exc}") from exc
    if not histories:
        raise _fail(not_found(movie, settings))
    rows = [row for found in histories for row in found.rows()]
    if output_format == "json":
        print(as_json(list(COLUMNS), rows))
    elif output_format == "csv":
        print(as_csv(list(COLUMNS), rows), end="")
    else:
        for found in histories:
            columns, table_rows = table_view(found)
            title = f"{found.title} ({found.year}) · {found.movie_key}"
            _print_rows(columns, table_rows, title=title, count=False)
            console.print(f"[dim]{len(found.versions)} version(s)[/dim]")


def _print_rows(columns: list[str], rows: list[tuple], title: str | None = None, count: bool = True) -> None:
    # Values and titles come from the warehouse: shown as text, never read as rich markup.
    table = Table(title=escape(title) if title else None)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(Text("" if value is None else str(value)) for value in row))
    console.print(table)
    if count:
        console.print(f"[dim]{len(rows)} row(s)[/dim]")


# -- operations: alerts, dead letters, replay --------------------------------------------------------
@app.command()
def alerts(
    limit: Annotated[int, typer.Option(help="How many of the newest alerts.")] = 20,
    output_format: OutputFormat = "table",
) -> None:
    """List the most recent alerts: what failed, which extract, where the evidence is, how to replay."""
    from moviepipe.output import FORMATS
    from shared.alerts import recent_alerts

    if output_format not in FORMATS:
        raise _fail(f"--format is {output_format!r}; expected one of {', '.join(FORMATS)}", 2)
    try:
        found = recent_alerts(_settings(), limit=limit)
    except Exception as exc:
        raise _fail(f"could not read the alerts: {type(exc).__name__}: {exc}") from exc
    columns = ["raised_at", "stage", "event", "code", "extract_id", "message", "evidence", "replay"]
    rows = [tuple(alert.get(column) for column in columns) for alert in found]
    _print_format(columns, rows, output_format, title="alerts, newest first")


dlq_app = typer.Typer(
    help="Look into a stage's dead-letter queue and move its messages back.", no_args_is_help=True
)
app.add_typer(dlq_app, name="dlq")


@dlq_app.command("list")
def dlq_list(
    stage: Annotated[str, typer.Argument(help=f"One of {', '.join(STAGES)}.")],
    limit: Annotated[int, typer.Option(help="At most this many messages.")] = 100,
    output_format: OutputFormat = "table",
) -> None:
    """Show the messages in STAGE's dead-letter queue (they stay there)."""
    from moviepipe.operations import dead_letters

    with _operation():
        letters = dead_letters(_settings(), stage, limit=limit)
    columns = ["message_id", "sent_at", "receive_count", "objects", "body"]
    rows = [
        (letter.message_id, letter.sent_at, letter.receive_count, " ".join(letter.objects), letter.body[:200])
        for letter in letters
    ]
    _print_format(columns, rows, output_format, title=f"{stage} dead-letter queue")


@dlq_app.command("redrive")
def dlq_redrive(
    stage: Annotated[str, typer.Argument(help=f"One of {', '.join(STAGES)}.")],
    limit: Annotated[int | None, typer.Option(help="Move at most this many (default: all).")] = None,
) -> None:
    """Move STAGE's dead-lettered messages back to its queue (after fixing what made them fail)."""
    from moviepipe.operations import redrive

    with _operation():
        moved = redrive(_settings(), stage, limit=limit)
    console.print(f"moved {len(moved)} message(s) from the {stage} dead-letter queue back to its queue")
    for letter in moved:
        console.print(
            f"  {letter.message_id}  {' '.join(letter.objects) or letter.body[:120]}", soft_wrap=True
        )


@app.command()
def replay(
    extract_id: Annotated[str, typer.Argument(help="The extract to replay.")],
    from_stage: Annotated[
        str | None,
        typer.Option("--from-stage", help=f"One of {', '.join(STAGES)}; default: the stage that stopped it."),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the extract until it is loaded.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 900,
) -> None:
    """Re-run a quarantined or failed extract from a stage, once its cause is fixed."""
    from moviepipe.operations import replay as run_replay

    settings = _settings()
    with _operation():
        done = run_replay(settings, extract_id, from_stage)
    console.print(f"extract [bold]{extract_id}[/bold] handed to the {done.stage} again: {done.input}")
    for retired in done.retired:
        console.print(f"  the earlier reason.json is kept as {retired}", soft_wrap=True)
    if wait:
        try:
            record = _follow(ExtractorClient(settings), extract_id, timeout)
        except ApiError as exc:
            raise _fail(str(exc)) from exc
        if record["status"] != "loaded":
            raise _fail(f"extract {extract_id} ended {record['status']}")


def _print_format(columns: list[str], rows: list[tuple], output_format: str, title: str) -> None:
    from moviepipe.output import FORMATS, as_csv, as_json

    if output_format not in FORMATS:
        raise _fail(f"--format is {output_format!r}; expected one of {', '.join(FORMATS)}", 2)
    if output_format == "json":
        print(as_json(columns, rows))
    elif output_format == "csv":
        print(as_csv(columns, rows), end="")
    else:
        _print_rows(columns, rows, title=title)


# -- demo and bench ---------------------------------------------------------------------------------
@app.command()
def demo(
    source: Annotated[str, typer.Option(help="Source to extract.")] = "imdb",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the extract.")] = 900,
) -> None:
    """Start the stack (if needed), run one extract end to end, show what was loaded and where to look."""
    from moviepipe.demo import run_demo

    code = run_demo(
        _settings(),
        console,
        source=source,
        timeout=timeout,
        follow=_follow,
        show=_print_rows,
        stage_table=_stage_table,
        step=_step,
    )
    raise typer.Exit(code)


@app.command()
def bench(
    runs: Annotated[int, typer.Option(help="Timed runs per section.")] = 3,
    output: Annotated[str, typer.Option(help="Where to write the results.")] = "docs/BENCHMARKS.md",
    only: Annotated[
        list[str] | None,
        typer.Option(
            help="Run only these sections (repeatable): end_to_end, dashboard, transform, extractor, "
            "unzip, loader, scale, load, restart, containers."
        ),
    ] = None,
    extractor_rows: Annotated[int, typer.Option(help="Rows of the scaled PostgreSQL source.")] = 1_000_000,
    loader_rows: Annotated[
        list[int] | None,
        typer.Option(help="Rows per loader bench size (repeatable; default the IMDb sample and 1,000,000)."),
    ] = None,
    postgres_url: Annotated[str | None, typer.Option(help="PostgreSQL for the scaled source.")] = None,
) -> None:
    """Measure the pipeline on a warm stack; write docs/BENCHMARKS.md and docs/benchmarks.json."""
    from moviepipe.bench import SECTIONS, run_bench

    sections = tuple(only or SECTIONS)
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise _fail(f"unknown section(s) {', '.join(unknown)}; sections: {', '.join(SECTIONS)}", 2)
    started = time.monotonic()
    code = run_bench(
        _settings(),
        console,
        runs=runs,
        output=output,
        step=_step,
        sections=sections,
        extractor_rows=extractor_rows,
        postgres_url=postgres_url,
        loader_rows=tuple(loader_rows or ()),
    )
    console.print(f"[dim]bench took {time.monotonic() - started:.0f}s[/dim]")
    raise typer.Exit(code)


if __name__ == "__main__":
    app()
