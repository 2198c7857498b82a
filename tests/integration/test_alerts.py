"""Alerts reach a person once per extract and failure: through SNS to its queue subscriber, and by email."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from shared import alerts as alerts_module
from shared.alerts import Alert, SmtpTarget, forget_alerts, raise_alert, recent_alerts
from shared.aws import aws_environment, client
from tests.factories import (
    alerts,
    emails,
    the_email_of,
)


def failure(**overrides) -> Alert:
    fields = {
        "stage": "transformer",
        "event": "quarantined",
        "code": "INPUT_MISSING",
        "message": "extract e1 was quarantined by the transformer: movies.csv is missing",
        "extract_id": "e1",
        "source": "imdb",
        "evidence": "s3://p-quarantine/transform/imdb/e1/",
        "replay": "moviepipe replay e1 --from-stage transformer",
    }
    return Alert(**{**fields, **overrides})


def test_an_alert_says_what_failed_where_the_evidence_is_and_how_to_replay():
    alert = failure(details={"origin": "s3://p-processed/imdb/e1/"})
    assert alert.subject == "moviepipe transformer: quarantined (INPUT_MISSING) extract e1"
    body = alert.body()
    for said in (
        alert.message,
        "Extract:  e1",
        "Source:   imdb",
        alert.evidence,
        alert.replay,
        "p-processed",
    ):
        assert said in body
    assert len(failure(extract_id="x" * 200).subject) == 100
    # the same failure of the same extract is the same alert; another failure or extract is another
    assert failure().alert_id == failure(message="worded differently").alert_id
    assert (
        len({failure().alert_id, failure(code="INPUT_CORRUPT").alert_id, failure(extract_id="e2").alert_id})
        == 3
    )
    assert failure(dedupe="sha256:1").alert_id != failure(dedupe="sha256:2").alert_id


def test_smtp_urls():
    assert SmtpTarget.parse("smtp://mail:2525") == SmtpTarget("mail", 2525, False, False, None, None)
    assert SmtpTarget.parse("smtps://ops%40x.org:p%2Fw@mail.x.org") == SmtpTarget(
        "mail.x.org", 465, True, False, "ops@x.org", "p/w"
    )
    assert SmtpTarget.parse("smtp://mail?starttls=true").starttls
    with pytest.raises(ValueError, match="MOVIEPIPE_SMTP_URL"):
        SmtpTarget.parse("http://mail")


def test_the_same_failure_raised_twice_is_one_message_and_one_email(provisioned):
    assert raise_alert(provisioned, failure()) is True
    assert raise_alert(provisioned, failure(message="again, from a replayed event")) is False
    assert raise_alert(provisioned, failure(code="INPUT_CORRUPT")) is True
    raised = alerts(provisioned)
    assert [alert["code"] for alert in raised] == ["INPUT_MISSING", "INPUT_CORRUPT"]
    for alert in raised:
        the_email_of(provisioned, alert)
    assert len(emails(provisioned)) == 2
    # and the alerts are listed newest first
    assert [alert["code"] for alert in recent_alerts(provisioned)] == ["INPUT_CORRUPT", "INPUT_MISSING"]


def test_an_alert_that_could_not_be_published_is_sent_by_the_retry(provisioned, monkeypatch):
    def unreachable(*args, **kwargs):
        raise ConnectionError("SNS is unreachable")

    monkeypatch.setattr(alerts_module, "_publish", unreachable)
    assert raise_alert(provisioned, failure()) is False
    monkeypatch.undo()
    assert raise_alert(provisioned, failure()) is True
    (alert,) = alerts(provisioned)
    the_email_of(provisioned, alert)


def test_a_claim_left_by_a_crash_before_publishing_is_taken_over_once_stale(provisioned):
    alert = failure()
    client("dynamodb", provisioned).put_item(
        TableName=provisioned.alerts_table,
        Item={
            "alert_id": {"S": alert.alert_id},
            "feed": {"S": "alerts"},
            "raised_at": {"S": "2026-01-01T00:00:00.000+00:00"},
            "document": {"S": json.dumps(alert.as_dict("2026-01-01T00:00:00.000+00:00"))},
            "claimed_at": {"N": str(time.time() - alerts_module.CLAIM_STALE_SECONDS - 1)},
        },
    )
    assert raise_alert(provisioned, alert) is True
    assert raise_alert(provisioned, alert) is False
    assert len(alerts(provisioned)) == 1


def test_a_forgotten_alert_is_raised_again_and_both_stay_listed(provisioned):
    raise_alert(provisioned, failure())
    assert forget_alerts(provisioned, "e1", "transformer") == 1
    assert raise_alert(provisioned, failure()) is True
    assert len(alerts(provisioned)) == 2
    assert [alert["extract_id"] for alert in recent_alerts(provisioned)] == ["e1", "e1"]


def test_moviepipe_alerts_lists_them(provisioned):
    raise_alert(provisioned, failure())
    env = {
        **os.environ,
        **aws_environment(provisioned),
        "MOVIEPIPE_PREFIX": provisioned.prefix,
        "COLUMNS": "200",
    }
    listed = subprocess.run(
        [sys.executable, "-m", "moviepipe.cli", "alerts", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    (alert,) = json.loads(listed.stdout)
    assert (alert["STAGE"], alert["CODE"], alert["EXTRACT_ID"]) == ("transformer", "INPUT_MISSING", "e1")
    assert alert["REPLAY"] == "moviepipe replay e1 --from-stage transformer"
    table = subprocess.run(
        [sys.executable, "-m", "moviepipe.cli", "alerts"], capture_output=True, text=True, env=env, timeout=60
    )
    assert table.returncode == 0 and "INPUT_MISSING" in table.stdout
