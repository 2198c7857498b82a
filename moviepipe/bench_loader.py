"""The loader's benchmark: an archived bundle COPYed into RAW and MERGEd into the star schema, warm.

Runs in this process against the running stack's moto and warehouse, in buckets of a prefix of their
own (which nothing consumes) and a database of its own, emptied before each bench. For each size it times the
loader's steps as its queue handler runs them — verify the bundle in S3, COPY (one transaction), MERGE
into the star schema (one transaction), reconcile — twice: the first load of the data (every movie new)
and a second full extract of it with 1% of the movies changed (the steady state: every movie compared,
a few new versions). The reference, in the same run: DuckDB in this process reading the same CSV file
into a table, what the COPY could at best cost.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from shared.settings import Settings

BENCH_DATABASE = "MOVIEPIPE_BENCH"
TARGET_SECONDS = 1.5
"""The loader stage, warm, for the IMDb sample (58,788 rows extracted)."""


def clean_table(rows: int) -> pa.Table:
    """``rows`` clean movies as the transform archives them: keyed, one row per key."""
    from services.extractor.sources.scaled import imdb_table, scaled_chunks
    from shared.keys import movie_key
    from shared.schema import field_names

    base = imdb_table()
    table = pa.concat_tables(chunk.drop_columns(["id"]) for chunk in scaled_chunks(rows, base))
    keys = [
        movie_key(t, y) for t, y in zip(table["title"].to_pylist(), table["year"].to_pylist(), strict=True)
    ]
    table = table.add_column(0, "movie_key", pa.array(keys, pa.string()))
    # The bundled sample has 3 duplicated title+year pairs; the transform keeps the first.
    first = pc.equal(pc.index_in(table["movie_key"], table["movie_key"]), pa.array(range(table.num_rows)))
    return table.filter(first).select(["movie_key", *field_names()])


def _changed(table: pa.Table, share: float) -> pa.Table:
    """A copy with the MPAA rating of every ``1 / share``-th movie changed (each a new Type 2 version)."""
    step = max(1, round(1 / share))
    mpaa = table["mpaa"].to_pylist()
    for i in range(0, len(mpaa), step):
        mpaa[i] = "NC-17" if mpaa[i] != "NC-17" else "G"
    return table.set_column(table.schema.get_field_index("mpaa"), "mpaa", pa.array(mpaa, pa.string()))


def _enrichment(table: pa.Table) -> dict[str, pa.Array]:
    """Values of the enriched columns as wide as the transform's (the loader only copies them)."""
    rows = table.num_rows
    year = pc.cast(table["year"], pa.int64())
    return {
        "genres": pa.array(["comedy|drama"] * rows, pa.string()),
        "primary_genre": pa.array(["comedy"] * rows, pa.string()),
        "decade": pc.subtract(year, pc.remainder(year, 10)),
        "runtime_band": pa.array(["91-120 min"] * rows, pa.string()),
        "budget_band": pa.array(["$1M-$10M"] * rows, pa.string()),
        "weighted_rating": pc.cast(table["rating"], pa.float64()),
    }


def _publish(settings: Settings, table: pa.Table, folder: Path, at: datetime) -> str:
    """Write ``table`` as an archived bundle of source ``bench`` extracted at ``at``; its manifest's key."""
    from shared.aws import client
    from shared.manifest import MANIFEST_NAME, describe_file, new_manifest
    from shared.schema import CLEAN_MOVIE_FIELDS, REJECT_FIELDS, arrow_schema

    extract_id = f"{at:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    movies = folder / extract_id / "movies" / "part-00000.csv"
    rejects = folder / extract_id / "rejects" / "part-00000.csv"
    movies.parent.mkdir(parents=True)
    rejects.parent.mkdir(parents=True)
    ids = pa.array([extract_id] * table.num_rows, pa.string())
    clean = table.append_column("mpaa_original", table["mpaa"])
    for name, values in _enrichment(table).items():
        clean = clean.append_column(name, values)
    clean = clean.append_column("extract_id", ids)
    pacsv.write_csv(clean.cast(arrow_schema(CLEAN_MOVIE_FIELDS)), movies)
    pacsv.write_csv(arrow_schema(REJECT_FIELDS).empty_table(), rejects)
    s3 = client("s3", settings)
    resources = []
    for path, name, count, fields, role in (
        (movies, "movies-0", table.num_rows, CLEAN_MOVIE_FIELDS, "movies"),
        (rejects, "rejects-0", 0, REJECT_FIELDS, "rejects"),
    ):
        resource = describe_file(path, name=name, rows=count, fields=fields, relative_to=folder / extract_id)
        resources.append(type(resource)(**resource.model_dump(by_alias=True), role=role))
        s3.upload_file(str(path), settings.bucket("archive"), f"bench/{extract_id}/{resource.path}")
    manifest = new_manifest(
        extract_id=extract_id,
        source="bench",
        stage="transform",
        row_counts={"extracted": table.num_rows, "clean": table.num_rows, "rejected": 0, "duplicates": 0},
        resources=resources,
        extracted_at=at.isoformat(),
    )
    key = f"bench/{extract_id}/{MANIFEST_NAME}"
    s3.put_object(Bucket=settings.bucket("archive"), Key=key, Body=manifest.to_json().encode())
    return key


def _load(settings: Settings, key: str) -> dict[str, Any]:
    """The loader's steps on one archive manifest, each timed."""
    from services.loader.bundle import read_bundle
    from services.loader.load import load_bundle
    from services.loader.merge import merge_star
    from services.loader.reconcile import RECONCILED, reconcile
    from shared.events import ObjectCreated
    from shared.warehouse import connect

    database = settings.warehouse_database
    began = time.perf_counter()
    bundle = read_bundle(settings, ObjectCreated(settings.bucket("archive"), key))
    verified = time.perf_counter()
    with connect(settings) as connection:
        load_bundle(connection, database, bundle)
        copied = time.perf_counter()
        merge_star(connection, database, extract_id=bundle.extract_id)
        merged = time.perf_counter()
        outcome = reconcile(connection, database, bundle)
    done = time.perf_counter()
    if outcome.status != RECONCILED:
        raise RuntimeError(f"bench extract {bundle.extract_id} did not reconcile: {outcome.explain()}")
    return {
        "verify_seconds": round(verified - began, 3),
        "copy_seconds": round(copied - verified, 3),
        "merge_seconds": round(merged - copied, 3),
        "reconcile_seconds": round(done - merged, 3),
        "total_seconds": round(done - began, 3),
        "versions_opened": outcome.versions_opened,
    }


def _duckdb_reference(path: Path) -> float:
    """Seconds for DuckDB, in this process, to read the CSV file into a table."""
    import duckdb

    connection = duckdb.connect()
    began = time.perf_counter()
    connection.execute(f"CREATE TABLE movies AS SELECT * FROM read_csv('{path}', header = true)")
    seconds = time.perf_counter() - began
    connection.close()
    return seconds


def _empty(settings: Settings) -> None:
    """Delete every row the loader wrote to the bench database (the genres stay: they are seeded once)."""
    from services.loader import statements
    from shared.warehouse import connect

    with connect(settings) as connection:
        cursor = connection.cursor()
        for table in statements.table_columns():
            if table != "ANALYTICS.DIM_GENRE":
                cursor.execute(f"DELETE FROM {settings.warehouse_database}.{table}")


def run_loader_bench(
    settings: Settings, *, sizes: tuple[int, ...], step: Callable[[str], None]
) -> dict[str, Any]:
    """Time the loader on the IMDb sample and the scaled sizes: first load, then a 1%-changed re-load."""
    from deploy.provision import provision
    from services.loader.bootstrap import bootstrap

    bench = settings.model_copy(
        update={"prefix": f"{settings.prefix}-bench", "warehouse_database": BENCH_DATABASE}
    )
    provision(bench)
    bootstrap(bench)
    results = []
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with tempfile.TemporaryDirectory(prefix="moviepipe-bench-loader-") as tmp:
        folder = Path(tmp)
        # Warm-up: the first load of a process pays for imports and the warehouse's first statements.
        _load(bench, _publish(bench, clean_table(1000), folder, at))
        for rows in sizes:
            _empty(bench)  # each size starts from an empty warehouse: its first load has every movie new
            table = clean_table(rows)
            first_key = _publish(bench, table, folder, at := at + timedelta(days=1))
            first = _load(bench, first_key)
            step(
                f"loader, {rows:,} rows, first load: copy {first['copy_seconds']:.2f}s, "
                f"merge {first['merge_seconds']:.2f}s, total {first['total_seconds']:.2f}s"
            )
            again = _load(bench, _publish(bench, _changed(table, 0.01), folder, at := at + timedelta(days=1)))
            step(
                f"loader, {rows:,} rows, re-load with 1% changed: copy {again['copy_seconds']:.2f}s, "
                f"merge {again['merge_seconds']:.2f}s, total {again['total_seconds']:.2f}s"
            )
            csv = next(folder.glob(f"{first_key.split('/')[1]}/movies/*.csv"))
            reference = _duckdb_reference(csv)
            results.append(
                {
                    "rows_extracted": rows,
                    "rows_loaded": table.num_rows,
                    "first_load": first,
                    "changed_reload": again,
                    "reference_duckdb_read_seconds": round(reference, 3),
                }
            )
    imdb = results[0]
    worst = max(imdb["first_load"]["total_seconds"], imdb["changed_reload"]["total_seconds"])
    return {
        "sizes": results,
        "target_seconds": TARGET_SECONDS,
        "met": worst <= TARGET_SECONDS,
    }
