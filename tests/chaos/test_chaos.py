"""Chaos: two replicas of every service, extracts in flight, services SIGKILLed at random, every S3 event
delivered twice, poison injected. At the end every extract reconciles, the warehouse holds exactly the
expected rows, the DLQs hold only the poison, nothing temporary is left, and each poison raised one alert.

``make test`` runs a reduced version (4 extracts of the IMDb sample); ``make test-chaos`` the full one
(``MOVIEPIPE_CHAOS_EXTRACTS=20``, one of them the 1,000,000-row scaled source in PostgreSQL).
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from moviepipe import stack
from services.extractor.sources.scaled import register_source, scaled_name, seed_postgres, without_password
from shared.alerts import recent_alerts
from shared.aws import client
from shared.consumer import DEPTH_REFRESH_SECONDS
from shared.events import s3_notification
from shared.settings import STAGES, Settings
from shared.warehouse import query
from tests.conftest import POSTGRES_URL, free_port
from tests.factories import messages_pending

pytestmark = pytest.mark.chaos

EXTRACTS = int(os.environ.get("MOVIEPIPE_CHAOS_EXTRACTS", "4"))
SCALED_ROWS = int(os.environ.get("MOVIEPIPE_CHAOS_SCALED_ROWS", "0"))
KILL_EVERY_SECONDS = float(os.environ.get("MOVIEPIPE_CHAOS_KILL_EVERY", "3"))
KILLS_PER_SERVICE = 2
IMDB_CLEAN = 58_785
"""The IMDb sample's 58,788 rows less its 3 duplicates."""
DEADLINE_SECONDS = 1500 if EXTRACTS > 4 or SCALED_ROWS else 420
"""How long the extracts may take once the chaos starts; the test's own timeout leaves room for the rest,
so that a run out of time says which extracts did not finish."""
ANNOUNCED = {"landing": ("unzipper", ".zip"), "processed": ("transformer", "manifest.json")}
ANNOUNCED["archive"] = ("loader", "manifest.json")


@pytest.fixture(scope="module")
def chaos_stack(tmp_path_factory) -> Iterator[Settings]:
    """A stack of its own with two replicas of every stage's service, on free ports."""
    home = tmp_path_factory.mktemp("chaos-home")
    ports = {f"{name}_port": free_port() for name in ("moto", "warehouse", "dashboard")}
    # Replica k listens on its stage's port + 10(k-1): keep both free.
    for stage in STAGES:
        while True:
            port = free_port()
            if port + 10 < 65536 and not stack._port_in_use("127.0.0.1", port + 10):
                ports[f"{stage}_port"] = port
                break
    settings = Settings(
        home=home, poll_wait_seconds=1, aws_endpoint_url=f"http://127.0.0.1:{ports['moto_port']}", **ports
    )
    try:
        stack.start_detached(settings, lambda step: None, replicas="2")
        yield settings
    finally:
        stack.stop_detached(settings, lambda step: None)


class Duplicator(threading.Thread):
    """Delivers every S3 event a second time: each new bundle or manifest is announced again."""

    def __init__(self, settings: Settings):
        super().__init__(daemon=True)
        self.settings, self.stopping, self.sent = settings, threading.Event(), Counter()
        self.seen: set[tuple[str, str]] = set()

    def run(self) -> None:
        s3, sqs = client("s3", self.settings), client("sqs", self.settings)
        while not self.stopping.wait(0.5):
            for role, (stage, suffix) in ANNOUNCED.items():
                bucket = self.settings.bucket(role)
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                    for item in page.get("Contents", []):
                        if not item["Key"].endswith(suffix) or (bucket, item["Key"]) in self.seen:
                            continue
                        self.seen.add((bucket, item["Key"]))
                        event = s3_notification(bucket, item["Key"], size=item["Size"], etag=item["ETag"])
                        url = sqs.get_queue_url(QueueName=self.settings.queue(stage))["QueueUrl"]
                        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
                        self.sent[stage] += 1


class Killer(threading.Thread):
    """SIGKILLs a running service replica every few seconds until each service was killed twice.

    Then it stops: killing on for as long as the extracts take would, past some rate, only measure the
    supervisor's back-off (a process killed within a minute of its start waits longer each time)."""

    def __init__(self, settings: Settings):
        super().__init__(daemon=True)
        self.settings, self.stopping, self.kills = settings, threading.Event(), Counter()

    @property
    def done(self) -> bool:
        return all(self.kills[stage] >= KILLS_PER_SERVICE for stage in STAGES)

    def run(self) -> None:
        chance = random.Random(11)
        while not self.stopping.wait(KILL_EVERY_SECONDS):
            state = stack.read_state(self.settings) or {"processes": []}
            running = [p for p in state["processes"] if p["service"] in STAGES and p["state"] == "running"]
            behind = [p for p in running if self.kills[p["service"]] < KILLS_PER_SERVICE]
            if self.done:
                return
            if not behind:
                continue
            victim = chance.choice(behind)
            try:
                os.kill(victim["pid"], signal.SIGKILL)
            except ProcessLookupError:
                continue
            self.kills[victim["service"]] += 1


def request_extract(settings: Settings, source: str) -> str:
    """POST /extracts as a client does while replicas die: retry until the API answers 202."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            response = httpx.post(f"{settings.service_url('extractor')}/extracts", json={"source": source})
        except httpx.HTTPError:
            time.sleep(0.5)
            continue
        assert response.status_code < 500, response.text
        if response.status_code == 202:
            return response.json()["extract_id"]
        time.sleep(0.5)
    raise TimeoutError(f"POST /extracts for {source} was never accepted")


def status_of(settings: Settings, extract_id: str) -> str | None:
    try:
        response = httpx.get(f"{settings.service_url('extractor')}/extracts/{extract_id}", timeout=5)
    except httpx.HTTPError:
        return None  # the extractor is being restarted
    return response.json().get("status") if response.status_code == 200 else None


def queues_idle(settings: Settings) -> bool:
    return messages_pending(settings, STAGES) == 0


def dlq_bodies(settings: Settings) -> dict[str, list[str]]:
    sqs = client("sqs", settings)
    found = {}
    for stage in STAGES:
        url = sqs.get_queue_url(QueueName=settings.dead_letter_queue(stage))["QueueUrl"]
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
            "Messages", []
        )
        found[stage] = [message["Body"] for message in messages]
    return found


def rows(settings: Settings, sql: str) -> list[tuple]:
    return query(settings, sql)[1]


@pytest.mark.timeout(DEADLINE_SECONDS + 900)
def test_every_extract_reconciles_exactly_once_while_services_die_and_events_repeat(chaos_stack):
    settings = chaos_stack
    # GIVEN a warm stack: one IMDb extract loaded before the chaos starts (it seeds the source too)
    reference = request_extract(settings, "imdb")
    deadline = time.monotonic() + 300
    while status_of(settings, reference) != "loaded" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert status_of(settings, reference) == "loaded"
    sources_file = settings.home / "sources.toml"
    imdb_url = "sqlite:///sources/imdb.sqlite"
    sources = [f"chaos_{n}" for n in range(1, EXTRACTS + (0 if SCALED_ROWS else 1))]
    for name in sources:
        register_source(sources_file, name, {"kind": "sqlite", "url": imdb_url, "table": "movies"})
    scaled = None
    if SCALED_ROWS:
        scaled = scaled_name(SCALED_ROWS) + "_chaos"
        seed_postgres(POSTGRES_URL, f"{scaled}_movies", SCALED_ROWS)
        register_source(
            sources_file,
            scaled,
            {"kind": "postgres", "url": without_password(POSTGRES_URL), "table": f"{scaled}_movies"},
        )
        sources.append(scaled)

    # WHEN every event is delivered twice, a service replica is killed every few seconds, poison is
    # injected (a corrupt bundle dropped into landing, a message no stage can read), and the extracts run
    duplicator, killer = Duplicator(settings), Killer(settings)
    duplicator.start()
    killer.start()
    s3, sqs = client("s3", settings), client("sqs", settings)
    s3.put_object(Bucket=settings.bucket("landing"), Key="imdb/chaos-poison.zip", Body=b"not a zip at all")
    poison_message = "chaos: a message that is not even JSON"
    sqs.send_message(
        QueueUrl=sqs.get_queue_url(QueueName=settings.queue("transformer"))["QueueUrl"],
        MessageBody=poison_message,
    )
    accepted = {source: request_extract(settings, source) for source in sources}
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline:
            statuses = {source: status_of(settings, extract) for source, extract in accepted.items()}
            finished = all(status in ("loaded", "failed", "quarantined") for status in statuses.values())
            if finished and killer.done:
                break
            time.sleep(1)
        else:
            pytest.fail(f"not finished in time: {statuses}; kills {dict(killer.kills)}")
    finally:
        killer.stopping.set()
        killer.join()
    deadline = time.monotonic() + 300
    while not queues_idle(settings) and time.monotonic() < deadline:
        time.sleep(1)
    duplicator.stopping.set()
    duplicator.join()
    while not queues_idle(settings) and time.monotonic() < deadline:
        time.sleep(1)

    # THEN each service was killed at least twice, and every event was delivered a second time
    assert all(killer.kills[stage] >= KILLS_PER_SERVICE for stage in STAGES), killer.kills
    assert duplicator.sent["loader"] >= len(accepted) + 1
    # AND every extract is loaded and reconciled
    statuses = {source: status_of(settings, extract) for source, extract in accepted.items()}
    assert statuses == dict.fromkeys(accepted, "loaded")
    extract_ids = [reference, *accepted.values()]
    listed = ", ".join(f"'{extract}'" for extract in extract_ids)
    batches = dict(
        rows(settings, f"SELECT EXTRACT_ID, STATUS FROM MOVIES.AUDIT.BATCHES WHERE EXTRACT_ID IN ({listed})")
    )
    assert batches == dict.fromkeys(extract_ids, "RECONCILED")
    # AND RAW.MOVIES holds each extract's rows exactly once: the sample's movies, by key and count
    per_extract = dict(
        rows(settings, "SELECT EXTRACT_ID, COUNT(*) FROM MOVIES.RAW.MOVIES GROUP BY EXTRACT_ID")
    )
    expected = {extract: IMDB_CLEAN for extract in extract_ids}
    if scaled:
        counts = httpx.get(f"{settings.service_url('extractor')}/extracts/{accepted[scaled]}").json()
        expected[accepted[scaled]] = counts["stages"]["transformer"]["counts"]["clean"]
    assert per_extract == expected
    (duplicated,) = rows(
        settings,
        "SELECT COUNT(*) FROM (SELECT EXTRACT_ID, MOVIE_KEY FROM MOVIES.RAW.MOVIES "
        "GROUP BY EXTRACT_ID, MOVIE_KEY HAVING COUNT(*) > 1)",
    )[0]
    assert duplicated == 0
    keys = {
        extract: count
        for extract, count in rows(
            settings,
            "SELECT EXTRACT_ID, COUNT(*) FROM MOVIES.RAW.MOVIES r WHERE MOVIE_KEY IN "
            f"(SELECT MOVIE_KEY FROM MOVIES.RAW.MOVIES WHERE EXTRACT_ID = '{reference}') GROUP BY EXTRACT_ID",
        )
    }
    assert all(keys[extract] == IMDB_CLEAN for extract in extract_ids if extract != accepted.get(scaled))
    # AND the star schema: one fact per loaded row, one current version per movie
    facts = dict(
        rows(
            settings,
            "SELECT EXTRACT_ID, COUNT(*) FROM MOVIES.ANALYTICS.FACT_MOVIE_RATING GROUP BY EXTRACT_ID",
        )
    )
    assert facts == expected
    (current, distinct_current) = rows(
        settings,
        "SELECT COUNT(*), COUNT(DISTINCT MOVIE_KEY) FROM MOVIES.ANALYTICS.DIM_MOVIE WHERE IS_CURRENT",
    )[0]
    new_movies = _new_keys(settings, accepted[scaled], reference) if scaled else 0
    assert current == distinct_current == IMDB_CLEAN + new_movies

    # AND the DLQs hold only the poison message; the corrupt bundle is quarantined
    dlqs = dlq_bodies(settings)
    assert dlqs == {"extractor": [], "unzipper": [], "transformer": [poison_message], "loader": []}
    quarantined = [
        item["Key"]
        for item in s3.list_objects_v2(Bucket=settings.bucket("quarantine")).get("Contents", [])
        if item["Key"].endswith("reason.json")
    ]
    assert len(quarantined) == 1 and "chaos-poison" in quarantined[0]
    # AND each poison raised exactly one alert, and nothing else alerted
    # (a poison whose consumer was killed on its last receive is alerted when a consumer next looks at
    # the DLQ, within DEPTH_REFRESH_SECONDS)
    expected_alerts = Counter({("unzipper", "quarantined"): 1, ("transformer", "dead_lettered"): 1})
    deadline = time.monotonic() + DEPTH_REFRESH_SECONDS + 15
    while True:
        alerts = Counter((alert["stage"], alert["event"]) for alert in recent_alerts(settings, limit=200))
        if alerts == expected_alerts or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert alerts == expected_alerts, alerts
    # AND nothing temporary is left: every archived or processed object belongs to a committed extract
    for role in ("processed", "archive"):
        keys_left = [
            item["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket(role))
            for item in page.get("Contents", [])
        ]
        # (_catalog/ holds the Glue catalog's symlink manifests, one per registered extract: by design)
        keys_left = [key for key in keys_left if not key.startswith("_catalog/")]

        def extract_of(key: str) -> str:
            return "/".join(key.split("/")[:2])  # {source}/{extract_id}

        committed = {extract_of(key) for key in keys_left if key.endswith("/manifest.json")}
        assert [key for key in keys_left if extract_of(key) not in committed] == [], role
        assert not [key for key in keys_left if "/_spark/" in key or "_temporary" in key], role


def _new_keys(settings: Settings, scaled_extract: str, reference: str) -> int:
    """Movies of the scaled extract that the IMDb sample does not have."""
    (count,) = rows(
        settings,
        f"SELECT COUNT(*) FROM MOVIES.RAW.MOVIES WHERE EXTRACT_ID = '{scaled_extract}' AND MOVIE_KEY NOT IN "
        f"(SELECT MOVIE_KEY FROM MOVIES.RAW.MOVIES WHERE EXTRACT_ID = '{reference}')",
    )[0]
    return count
