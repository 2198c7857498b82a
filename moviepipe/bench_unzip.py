"""The unzipper on a bundle far larger than its memory: throughput of inflated data, the process's peak RSS.

A valid bundle of the size asked for is generated (the IMDb movies' CSV rows repeated, so it compresses as
real movie data does), landed in a bucket of its own deployment (``{prefix}-bench-unzip``, so no running
stage picks it up), and unzipped by a separate process that reports its own peak RSS and how long the S3
stand-in took to complete the multipart upload (moto copies every part into one object there, about 10 s
per GB on this machine; S3 answers it without copying). In the same run, two references: the unzipper's
own work on the same file from local disk (every check, data files to nowhere), and Python's zipfile
inflating it without checks.

``python -m moviepipe.bench_unzip BUCKET KEY`` is that child process: it unzips one landed object, with
``tempfile`` made to fail (the unzipper needs no ``/tmp``), and prints what it measured as JSON.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from moviepipe.peak import peak_rss_bytes
from shared.settings import Settings

MIB = 1 << 20
DEFAULT_BYTES = 1 << 30
TARGET_MB_PER_SECOND = 100
RSS_LIMIT_BYTES = 200 * MIB
CSV_NAME = "movies.csv"


def imdb_csv() -> tuple[bytes, bytes]:
    """The bundled IMDb movies as the extractor writes them: header line and body."""
    import pyarrow.csv as pa_csv

    from services.extractor.sources.scaled import imdb_table

    table = imdb_table()
    sink = io.BytesIO()
    pa_csv.write_csv(table, sink)
    header, _, body = sink.getvalue().partition(b"\n")
    return header + b"\n", body


def write_large_bundle(path: Path, *, extract_id: str, source: str, target_bytes: int) -> dict[str, int]:
    """A valid bundle (movies.csv + manifest.json) whose CSV is at least ``target_bytes``; its sizes."""
    from shared.manifest import MEDIA_TYPES, Resource, new_manifest
    from shared.schema import table_schema

    header, body = imdb_csv()
    body_rows = body.count(b"\n")
    repeats = max(1, -(-(target_bytes - len(header)) // len(body)))
    sha = hashlib.sha256(header)
    info = zipfile.ZipInfo(CSV_NAME, date_time=time.gmtime()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info._compresslevel = 1  # type: ignore[attr-defined]  # fast, as the extractor writes bundles
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open(info, "w", force_zip64=True) as member:
            member.write(header)
            for _ in range(repeats):
                member.write(body)
                sha.update(body)
        size = len(header) + repeats * len(body)
        rows = repeats * body_rows
        csv_resource = Resource(
            name="movies-csv",
            path=CSV_NAME,
            format="csv",
            mediatype=MEDIA_TYPES["csv"],
            encoding="utf-8",
            bytes=size,
            hash=f"sha256:{sha.hexdigest()}",
            rows=rows,
            schema=table_schema(),
        )
        manifest = new_manifest(
            extract_id=extract_id,
            source=source,
            stage="extract",
            row_counts={"extracted": rows},
            resources=[csv_resource],
        )
        archive.writestr("manifest.json", manifest.to_json(), compress_type=zipfile.ZIP_DEFLATED)
    return {"inflated_bytes": size, "rows": rows, "bundle_bytes": path.stat().st_size}


def local_unzip(path: Path, *, extract_id: str, source: str) -> float:
    """Seconds for the unzipper's checks over the bundle read from local disk, data files sent nowhere."""
    from services.unzipper.inflate import InflateLimits
    from services.unzipper.validate import validate_bundle

    class Nowhere:
        def write(self, data: bytes) -> None:
            pass

        def commit(self) -> None:
            pass

        def abort(self) -> None:
            pass

    started = time.perf_counter()
    with path.open("rb") as bundle:
        validate_bundle(
            bundle,
            lambda resource, info: Nowhere(),
            extract_id=extract_id,
            source=source,
            limits=InflateLimits(max_bytes=1 << 50, max_ratio=1000),
        )
    return time.perf_counter() - started


def reference_inflate(path: Path) -> float:
    """Seconds for Python's zipfile to inflate the bundle's CSV from local disk to nowhere."""
    started = time.perf_counter()
    with zipfile.ZipFile(path) as archive, archive.open(CSV_NAME) as member:
        while member.read(4 * MIB):
            pass
    return time.perf_counter() - started


def unzip_in_child(settings: Settings, bucket: str, key: str) -> dict[str, Any]:
    """Run the unzipper on one landed object in a child process; what it reports."""
    from moviepipe import stack

    env = {**os.environ, **stack.child_environment(settings)}
    done = subprocess.run(
        [sys.executable, "-m", "moviepipe.bench_unzip", bucket, key],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the unzipper process failed ({done.returncode}): {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_unzip_bench(settings: Settings, *, size_bytes: int = DEFAULT_BYTES, step) -> dict[str, Any]:
    """Generate, land and unzip one large bundle in a deployment of its own; the figures."""
    from deploy.provision import provision
    from services.unzipper.settings import unzipper_settings
    from shared.aws import client

    bench = unzipper_settings(settings.model_copy(update={"prefix": f"{settings.prefix}-bench-unzip"}))
    provision(bench)
    s3 = client("s3", bench)
    extract_id = time.strftime("%Y%m%dT%H%M%SZ-0000beef", time.gmtime())
    key = f"bench/{extract_id}.zip"
    with tempfile.TemporaryDirectory(prefix="bench-unzip-") as work:
        path = Path(work) / "bundle.zip"
        step(f"unzip: writing a {size_bytes / MIB:,.0f} MiB bundle")
        sizes = write_large_bundle(path, extract_id=extract_id, source="bench", target_bytes=size_bytes)
        reference = reference_inflate(path)
        local = local_unzip(path, extract_id=extract_id, source="bench")
        s3.upload_file(str(path), bench.bucket("landing"), key)
    step(f"unzip: {sizes['bundle_bytes'] / MIB:,.0f} MiB zip into {sizes['inflated_bytes'] / MIB:,.0f} MiB")
    try:
        child = unzip_in_child(bench, bench.bucket("landing"), key)
    finally:
        s3.delete_object(Bucket=bench.bucket("landing"), Key=key)
        for name in ("movies.csv", "manifest.json"):
            s3.delete_object(Bucket=bench.bucket("processed"), Key=f"bench/{extract_id}/{name}")
    if child["outcome"] != "unzipped":
        raise RuntimeError(f"the bench bundle was not unzipped: {child}")
    mb = sizes["inflated_bytes"] / 1e6
    streaming = child["seconds"] - child["complete_seconds"]
    measured = {
        **sizes,
        "seconds": round(child["seconds"], 2),
        "mb_per_second": round(mb / child["seconds"], 1),
        "complete_seconds": round(child["complete_seconds"], 2),
        "streaming_seconds": round(streaming, 2),
        "streaming_mb_per_second": round(mb / streaming, 1),
        "peak_rss_bytes": child["max_rss_bytes"],
        "local_seconds": round(local, 2),
        "local_mb_per_second": round(mb / local, 1),
        "reference_seconds": round(reference, 2),
        "reference_mb_per_second": round(mb / reference, 1),
        "target_mb_per_second": TARGET_MB_PER_SECOND,
        "rss_limit_bytes": RSS_LIMIT_BYTES,
    }
    measured["met"] = (
        measured["streaming_mb_per_second"] >= TARGET_MB_PER_SECOND
        and measured["peak_rss_bytes"] < RSS_LIMIT_BYTES
    )
    step(
        f"unzip: {measured['streaming_mb_per_second']} MB/s inflated through S3 "
        f"({measured['mb_per_second']} MB/s with moto's {measured['complete_seconds']} s to complete the "
        f"upload), {measured['local_mb_per_second']} MB/s from disk, peak RSS "
        f"{measured['peak_rss_bytes'] / MIB:.0f} MiB"
    )
    return measured


def _child(bucket: str, key: str) -> None:
    """Unzip one object with this process's environment; print seconds, peak RSS and the outcome."""

    def no_tmp(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the unzipper touched tempfile; it must stream instead")

    for name in ("mkstemp", "mkdtemp", "TemporaryDirectory", "NamedTemporaryFile", "TemporaryFile"):
        setattr(tempfile, name, no_tmp)
    from services.unzipper.settings import unzipper_settings
    from services.unzipper.unzip import Unzipper
    from shared.events import ObjectCreated
    from shared.s3stream import S3ObjectWriter

    completing = []
    commit = S3ObjectWriter.commit

    def timed_commit(self: S3ObjectWriter) -> str:
        began = time.perf_counter()
        try:
            return commit(self)
        finally:
            completing.append(time.perf_counter() - began)

    S3ObjectWriter.commit = timed_commit  # type: ignore[method-assign]
    unzipper = Unzipper(unzipper_settings())
    started = time.perf_counter()
    outcome = unzipper.unzip(ObjectCreated(bucket=bucket, key=key))
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "outcome": outcome.outcome,
                "reason": outcome.reason,
                "rows": outcome.rows,
                "seconds": seconds,
                "complete_seconds": sum(completing),
                "max_rss_bytes": peak_rss_bytes(),
            }
        )
    )


if __name__ == "__main__":
    _child(*sys.argv[1:3])
