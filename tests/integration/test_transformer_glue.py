"""The Glue runner and the Data Catalog against moto's Glue, as the transformer drives them in AWS.

moto's job runs run no script and step STARTING → RUNNING → SUCCEEDED, by its state manager when told
to. A run cannot be made to fail through moto's API, so the failure tests run a moto server inside the
test process (``ThreadedMotoServer``) and set the run's state in its backend: what AWS would report.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator

import httpx
import pytest
from moto.server import ThreadedMotoServer

from deploy.provision import provision
from services.transformer.catalog import TABLES, Catalog
from services.transformer.exceptions import GlueJobFailed
from services.transformer.glue_assets import ENTRY_SCRIPT, build_package
from services.transformer.handler import make_handler
from services.transformer.runner import GlueRunner, TransformJob
from services.transformer.settings import TransformerSettings, transformer_settings
from shared.aws import aws_environment, client
from shared.events import s3_notification
from shared.manifest import Manifest, describe_file, new_manifest
from shared.schema import CLEAN_MOVIE_FIELDS, MOVIE_FIELDS
from shared.settings import Settings
from tests.conftest import free_port
from tests.factories import alerts, csv_bytes, movie, new_extract_id, sqs_event, sqs_record, the_email_of

SOURCE = "imdb"
MANIFEST_FILES = ("movies/part-00000.csv", "rejects/part-00000.csv", "manifest.json")
ROLE = "arn:aws:iam::123456789012:role/moviepipe-glue"


def glue_settings(settings: Settings, **overrides) -> TransformerSettings:
    own = transformer_settings(settings).model_copy(
        update={"transform_runner": "glue", "glue_role_arn": ROLE, "glue_first_poll_seconds": 1, **overrides}
    )
    return own


def a_job(settings: Settings, extract_id: str | None = None) -> TransformJob:
    extract_id = extract_id or new_extract_id()
    return TransformJob(
        extract_id=extract_id,
        source=SOURCE,
        extracted_at="2026-01-01T00:00:00+00:00",
        extracted=3,
        input_bucket=settings.bucket("processed"),
        input_key=f"{SOURCE}/{extract_id}/movies.csv",
        input_hash=None,
        input_bytes=None,
        archive_bucket=settings.bucket("archive"),
    )


def leave_archive(settings: Settings, job: TransformJob) -> None:
    """The archive manifest a successful run leaves (moto's runs run nothing)."""
    left = new_manifest(
        extract_id=job.extract_id,
        source=SOURCE,
        stage="transform",
        row_counts={"extracted": 3, "clean": 2, "rejected": 1, "duplicates": 0},
        resources=[],
    )
    client("s3", settings).put_object(
        Bucket=job.archive_bucket, Key=f"{job.archive_prefix}/manifest.json", Body=left.to_json().encode()
    )


def job_runs(settings: TransformerSettings) -> list[dict]:
    return client("glue", settings).get_job_runs(JobName=settings.glue_job)["JobRuns"]


@contextlib.contextmanager
def stepped_runs(endpoint: str, times: int) -> Iterator[None]:
    """moto's job runs advance one state per ``times`` looks, until the block ends."""
    transition = {"model_name": "glue::job_run", "transition": {"progression": "manual", "times": times}}
    httpx.post(f"{endpoint}/moto-api/state-manager/set-transition", json=transition).raise_for_status()
    try:
        yield
    finally:
        httpx.post(
            f"{endpoint}/moto-api/state-manager/unset-transition", json={"model_name": "glue::job_run"}
        ).raise_for_status()


def test_the_runner_uploads_the_code_once_creates_the_job_and_passes_it_to_each_run(provisioned, tmp_path):
    # GIVEN no Glue job yet, and the archive each run would leave
    own = glue_settings(provisioned)
    first, second = a_job(own), a_job(own)
    leave_archive(own, first)
    leave_archive(own, second)
    runner = GlueRunner(own, sleep=lambda _: None)
    # WHEN two extracts are transformed
    assert runner.run(first).counts.as_dict()["clean"] == 2
    runner.run(second)
    # THEN the job was created on the fixed entry script, and each run names this version's code
    glue, s3 = client("glue", own), client("s3", own)
    job = glue.get_job(JobName=own.glue_job)["Job"]
    _, version = build_package()
    bucket = own.bucket("processed")
    assert job["Command"]["ScriptLocation"] == f"s3://{bucket}/_glue/glue_entry.py"
    assert job["Role"] == ROLE and job["GlueVersion"] == "5.0"
    # AND its JVMs compile the transform's large generated methods (Spark's speed depends on it)
    assert job["DefaultArguments"]["--conf"] == (
        "spark.driver.extraJavaOptions=-XX:-DontCompileHugeMethods"
        " --conf spark.executor.extraJavaOptions=-XX:-DontCompileHugeMethods"
    )
    runs = job_runs(own)
    assert sorted(run["Arguments"]["--extract_id"] for run in runs) == sorted(
        [first.extract_id, second.extract_id]
    )
    package = f"s3://{bucket}/_glue/{version}/moviepipe.zip"
    assert {run["Arguments"]["--extra-py-files"] for run in runs} == {package}
    assert all(run["Arguments"]["--additional-python-modules"].startswith("pydantic==") for run in runs)
    # AND the code was uploaded once: one package under _glue/, beside the entry script
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="_glue/")["Contents"]]
    assert set(keys) == {"_glue/glue_entry.py", f"_glue/{version}/moviepipe.zip"}

    # AND the package holds everything the job imports: the entry script runs from it alone
    zipped = tmp_path / "moviepipe.zip"
    zipped.write_bytes(s3.get_object(Bucket=bucket, Key=f"_glue/{version}/moviepipe.zip")["Body"].read())
    names = zipfile.ZipFile(zipped).namelist()
    assert "services/transformer/glue_job.py" in names and "shared/schema.py" in names
    check = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); "
            "import services.transformer.glue_job as job; print(job.__file__)",
            str(zipped),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert check.returncode == 0 and "moviepipe.zip" in check.stdout, check.stderr


def test_a_run_is_polled_less_and_less_often_until_it_succeeds(provisioned, moto_endpoint):
    # GIVEN runs that take three looks per state
    own = glue_settings(provisioned, glue_first_poll_seconds=1, glue_poll_seconds=5)
    job = a_job(own)
    leave_archive(own, job)
    slept: list[float] = []
    # WHEN the runner waits for one
    with stepped_runs(moto_endpoint, times=3):
        result = GlueRunner(own, sleep=slept.append).run(job)
    # THEN it looked until SUCCEEDED, backing off to the longest wait
    assert result.counts.as_dict()["extracted"] == 3
    assert slept[:4] == [1, 2, 4, 5] and set(slept[3:]) == {5}
    (run,) = job_runs(own)
    assert run["JobRunState"] == "SUCCEEDED"


def test_a_redelivered_extract_follows_the_run_already_going(provisioned, moto_endpoint):
    # GIVEN a run for the extract, started by an earlier delivery and still going
    own = glue_settings(provisioned)
    job = a_job(own)
    leave_archive(own, job)
    with stepped_runs(moto_endpoint, times=2):
        GlueRunner(own, sleep=lambda _: None)._ensure_job(
            client("glue", own), GlueRunner(own).assets.ensure(client("s3", own))
        )
        client("glue", own).start_job_run(JobName=own.glue_job, Arguments={"--extract_id": job.extract_id})
        # WHEN the extract is delivered again
        GlueRunner(own, sleep=lambda _: None).run(job)
    # THEN no second run was started
    assert len(job_runs(own)) == 1


def test_a_run_past_its_deadline_fails_naming_it(provisioned, moto_endpoint):
    # GIVEN a run that never finishes, and a deadline of 10 s
    own = glue_settings(provisioned, glue_deadline_seconds=10, glue_poll_seconds=4)
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    # WHEN / THEN
    with stepped_runs(moto_endpoint, times=1000), pytest.raises(GlueJobFailed, match=r"still .* after 10s"):
        GlueRunner(own, sleep=sleep, clock=lambda: now[0]).run(a_job(own))
    assert now[0] <= 10


@pytest.fixture
def own_moto(smtp_url, tmp_path) -> Iterator[tuple[Settings, object]]:
    """A moto server in this process (its backends reachable), provisioned; its settings and Glue backend."""
    from moto.backends import get_backend

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        settings = Settings(
            prefix="own", aws_endpoint_url=f"http://127.0.0.1:{port}", home=tmp_path, smtp_url=smtp_url
        )
        provision(settings)
        yield settings, get_backend("glue")["123456789012"][settings.region]
    finally:
        server.stop()


@pytest.mark.parametrize("state", ["FAILED", "TIMEOUT", "STOPPED", "ERROR"])
def test_a_failed_glue_run_alerts_once_and_leaves_the_message_for_retry(own_moto, tmp_path, state):
    # GIVEN a processed extract, and Glue runs that end in ``state``
    settings, backend = own_moto
    own = glue_settings(settings)
    extract_id = new_extract_id()
    local = tmp_path / "movies.csv"
    local.write_bytes(csv_bytes([movie(title="A", year=2000)]))
    manifest = new_manifest(
        extract_id=extract_id,
        source=SOURCE,
        stage="unzip",
        row_counts={"extracted": 1},
        resources=[describe_file(local, name="movies", rows=1, fields=MOVIE_FIELDS)],
    )
    s3 = client("s3", own)
    s3.upload_file(str(local), own.bucket("processed"), f"{SOURCE}/{extract_id}/movies.csv")
    key = f"{SOURCE}/{extract_id}/manifest.json"
    s3.put_object(Bucket=own.bucket("processed"), Key=key, Body=manifest.to_json().encode())

    def fail_the_run(_seconds: float) -> None:
        for run in backend.jobs[own.glue_job].job_runs:
            run._status = state  # what Glue reports for a run that died

    runner = GlueRunner(own, sleep=fail_the_run)
    handler = make_handler(own, runner=runner)
    event = sqs_event(sqs_record(s3_notification(own.bucket("processed"), key)))
    with stepped_runs(own.aws_endpoint_url, times=1000):
        # WHEN the message is delivered three times
        results = [handler(event, None) for _ in range(3)]
    # THEN every delivery fails (to be retried, then dead-lettered), and one alert says why
    assert all(len(result["batchItemFailures"]) == 1 for result in results)
    (alert,) = alerts(own)
    assert (alert["event"], alert["code"], alert["extract_id"]) == (
        "glue_run_failed",
        "GLUE_JOB_FAILED",
        extract_id,
    )
    assert f"ended {state}" in alert["message"]
    the_email_of(own, alert)
    # AND nothing was archived or registered
    assert "Contents" not in s3.list_objects_v2(Bucket=own.bucket("archive"))


def test_an_archived_extract_is_in_the_data_catalog_with_a_partition_per_extract(provisioned, tmp_path):
    # GIVEN two processed extracts whose Glue runs succeed
    own = glue_settings(provisioned)
    handler = make_handler(own, runner=GlueRunner(own, sleep=lambda _: None))
    s3 = client("s3", own)
    ids = []
    for _ in range(2):
        job = a_job(own)
        ids.append(job.extract_id)
        local = tmp_path / f"{job.extract_id}.csv"
        local.write_bytes(csv_bytes([movie(title=title, year=2000) for title in "ABC"]))
        s3.upload_file(str(local), job.input_bucket, job.input_key)
        manifest = new_manifest(
            extract_id=job.extract_id,
            source=SOURCE,
            stage="unzip",
            row_counts={"extracted": 3},
            resources=[describe_file(local, name="movies", rows=3, fields=MOVIE_FIELDS)],
        )
        s3.put_object(
            Bucket=job.input_bucket,
            Key=f"{SOURCE}/{job.extract_id}/manifest.json",
            Body=manifest.to_json().encode(),
        )
        leave_archive(own, job)
    # WHEN each is delivered (the second one twice)
    for extract_id in [*ids, ids[1]]:
        event = s3_notification(own.bucket("processed"), f"{SOURCE}/{extract_id}/manifest.json")
        handler(event, None)
    # THEN the database holds the three tables, columns from the schema
    glue = client("glue", own)
    table = glue.get_table(DatabaseName=own.prefix, Name="archive_movies")["Table"]
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == [f.name for f in CLEAN_MOVIE_FIELDS]
    assert [k["Name"] for k in table["PartitionKeys"]] == ["source", "extract_id"]
    assert {t["Name"] for t in glue.get_tables(DatabaseName=own.prefix)["TableList"]} == {
        t.name for t in TABLES
    }
    # AND each extract is one partition of each, at its own folder
    archive = own.bucket("archive")
    for name, folder in (("archive_movies", "movies"), ("archive_rejects", "rejects")):
        partitions = glue.get_partitions(DatabaseName=own.prefix, TableName=name)["Partitions"]
        assert sorted(p["Values"][1] for p in partitions) == sorted(ids)
        assert {p["StorageDescriptor"]["Location"] for p in partitions} == {
            f"s3://{archive}/{SOURCE}/{extract_id}/{folder}/" for extract_id in ids
        }
    # AND the processed table's partitions point, through symlink.txt, at each extract's Parquet file
    (partition,) = [
        p
        for p in glue.get_partitions(DatabaseName=own.prefix, TableName="processed_movies")["Partitions"]
        if p["Values"] == [SOURCE, ids[0]]
    ]
    location = partition["StorageDescriptor"]["Location"]
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    body = s3.get_object(Bucket=bucket, Key=f"{prefix}symlink.txt")["Body"].read().decode()
    assert body.strip() == f"s3://{own.bucket('processed')}/{SOURCE}/{ids[0]}/movies.parquet"
    # AND registering again changes nothing
    Catalog(own).register(SOURCE, ids[0])
    assert len(glue.get_partitions(DatabaseName=own.prefix, TableName="archive_movies")["Partitions"]) == 2


def run_entry_script(tmp_path, package: bytes, settings: Settings, *args: str) -> subprocess.CompletedProcess:
    """What a Glue run does: the entry script alone in a folder, the job's code from --extra-py-files."""
    run_dir = tmp_path / "glue-run"
    run_dir.mkdir()
    (run_dir / "moviepipe.zip").write_bytes(package)
    shutil.copy(ENTRY_SCRIPT, run_dir / "glue_entry.py")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MOVIEPIPE_", "AWS_"))},
        **aws_environment(settings),
        "PYTHONPATH": str(run_dir / "moviepipe.zip"),
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    argv = ["--JOB_NAME", "moviepipe-transform", "--job-bookmark-option", "job-bookmark-disable", *args]
    return subprocess.run(
        [sys.executable, "glue_entry.py", *argv],
        cwd=run_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("where", ["local paths", "S3 through boto3 staging"])
def test_the_job_script_runs_in_its_own_process_from_the_package(provisioned, tmp_path, where):
    # GIVEN an extract's movies.csv (three movies, one of them twice, one with a bad year)
    extract_id = new_extract_id()
    rows = [movie(title="A", year=2000), movie(title="A", year=2000), movie(title="B", year=1700)]
    data = csv_bytes([*rows, movie(title="C", year=1999)])
    s3 = client("s3", provisioned)
    if where == "local paths":
        (tmp_path / "movies.csv").write_bytes(data)
        input_path, output_path = str(tmp_path / "movies.csv"), str(tmp_path / "archive")
    else:
        key = f"{SOURCE}/{extract_id}"
        s3.put_object(Bucket=provisioned.bucket("processed"), Key=f"{key}/movies.csv", Body=data)
        input_path = f"s3://{provisioned.bucket('processed')}/{key}/movies.csv"
        output_path = f"s3://{provisioned.bucket('archive')}/{key}"
    package, _ = build_package()
    # WHEN the entry script runs as Glue would run it, with plain pyspark
    done = run_entry_script(
        tmp_path,
        package,
        provisioned,
        *("--input_path", input_path, "--output_path", output_path, "--extract_id", extract_id),
        *("--source", SOURCE, "--extracted_at", "2026-01-01T00:00:00+00:00", "--expected_rows", "4"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # THEN the archive is committed by its manifest, the counts adding up
    if where == "local paths":
        body = (tmp_path / "archive" / "manifest.json").read_bytes()
    else:
        archive = provisioned.bucket("archive")
        body = s3.get_object(Bucket=archive, Key=f"{SOURCE}/{extract_id}/manifest.json")["Body"].read()
        keys = {
            o["Key"] for o in s3.list_objects_v2(Bucket=archive, Prefix=f"{SOURCE}/{extract_id}/")["Contents"]
        }
        assert keys == {f"{SOURCE}/{extract_id}/{name}" for name in MANIFEST_FILES}
    counts = Manifest.from_json(body).row_counts
    assert counts["extracted"] == 4 == counts["clean"] + counts["rejected"] + counts["duplicates"]
    assert (counts["clean"], counts["rejected"], counts["duplicates"]) == (2, 1, 1)
