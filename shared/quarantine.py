"""Quarantine: what a stage refused, kept for a person beside a ``reason.json`` that says why.

Each stage keeps its own folder in ``s3://{prefix}-quarantine/`` (``unzip/…``, ``transform/…``,
``load/…``), and every ``reason.json`` has the same core shape (``REASON_KEYS``):

- ``stage``, ``extract_id``, ``source``: which stage refused which extract (None where the key names none);
- ``reason``, ``message``: the reason code, and what was wrong in words;
- ``origin``: the ``s3://`` URI of what was refused (a bundle zip, a processed folder, an archive manifest);
- ``files``: the names kept beside ``reason.json``, relative to its folder;
- ``quarantined_at``: when, ISO 8601 in UTC;

then whatever a stage adds (the unzipper's ``file`` and ``bundle_hash``).

Every stage quarantines through ``quarantine()``, whose order is the guarantee:

1. keep the evidence (the stage says how: upload the bytes it judged, or copy a folder);
2. write ``reason.json``, naming the files kept: nothing says "quarantined" before the evidence is there,
   and from here on a replayed event finds the refusal handled (``already_quarantined``);
3. raise the alert (de-duplicated per extract and failure, so steps 3 and 4 can run again safely);
4. mark the extract quarantined in its progress record.

A crash after step 2 loses nothing: the replayed event finds ``reason.json`` and runs steps 3 and 4
again, and the alert store keeps it to one alert.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from shared.alerts import Alert, raise_alert
from shared.aws import read_json_object
from shared.errors import Refused
from shared.progress import QUARANTINED, ExtractProgress, now
from shared.settings import Settings

REASON_NAME = "reason.json"
REASON_KEYS = (
    "stage",
    "extract_id",
    "source",
    "reason",
    "message",
    "origin",
    "files",
    "quarantined_at",
)
"""The keys every ``reason.json`` has, in the order it has them."""


def _folder(prefix: str) -> str:
    return prefix if prefix.endswith("/") else f"{prefix}/"


def reason_key(prefix: str) -> str:
    """The key of the ``reason.json`` in the quarantine folder ``prefix``."""
    return f"{_folder(prefix)}{REASON_NAME}"


def read_reason(s3: Any, settings: Settings, prefix: str) -> dict[str, Any] | None:
    """The ``reason.json`` in the quarantine folder ``prefix``; None if there is none.

    One that is not a JSON object counts as none, so quarantining again replaces it. Any other S3 failure
    raises.
    """
    return read_json_object(s3, settings.bucket("quarantine"), reason_key(prefix))


def copy_into_quarantine(
    s3: Any,
    settings: Settings,
    bucket: str,
    source_prefix: str,
    prefix: str,
    *,
    keys: Iterable[str] | None = None,
) -> list[str]:
    """Copy every object under ``source_prefix`` in ``bucket`` (or only ``keys``, which lie under it) into
    the quarantine folder ``prefix``, keeping their names relative to ``source_prefix``; those names.
    """
    if keys is None:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=source_prefix)
        keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
    quarantine = settings.bucket("quarantine")
    folder = _folder(prefix)
    names = []
    for key in keys:
        name = key.removeprefix(source_prefix)
        s3.copy({"Bucket": bucket, "Key": key}, quarantine, f"{folder}{name}")
        names.append(name)
    return names


def write_reason(
    s3: Any,
    settings: Settings,
    prefix: str,
    *,
    stage: str,
    extract_id: str | None,
    source: str | None,
    reason: str,
    message: str,
    origin: str,
    files: list[str],
    **extras: Any,
) -> str:
    """Write ``reason.json`` in the quarantine folder ``prefix``, once the files it names are kept; its URI.

    ``extras`` follow the core keys, which they may not replace.
    """
    clashing = sorted(set(extras) & set(REASON_KEYS))
    if clashing:
        raise ValueError(f"reason.json extras may not replace its core keys: {clashing}")
    document = {
        "stage": stage,
        "extract_id": extract_id,
        "source": source,
        "reason": reason,
        "message": message,
        "origin": origin,
        "files": files,
        "quarantined_at": now(),
        **extras,
    }
    bucket = settings.bucket("quarantine")
    key = reason_key(prefix)
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(document, indent=2).encode("utf-8"),
        ContentType="application/json",
    )
    return f"s3://{bucket}/{key}"


@dataclass(frozen=True)
class Refusal:
    """What a stage refused, and the folder of the quarantine bucket that keeps it."""

    stage: str
    folder: str
    """The quarantine folder, e.g. ``transform/{source}/{extract_id}/``."""
    origin: str
    """The ``s3://`` URI of what was refused."""
    extract_id: str | None
    source: str | None

    def uri(self, settings: Settings, name: str = "") -> str:
        return f"s3://{settings.bucket('quarantine')}/{_folder(self.folder)}{name}"


Keep = Callable[[str, str], list[str]]
"""Keeps the evidence: given the quarantine bucket and folder, stores the files; their names."""


def manifest_folder(
    stage: str, root: str, bucket: str, key: str, *, extract_id: str | None = None, source: str | None = None
) -> Refusal:
    """A refused manifest and its folder, kept under ``{root}/{the folder's key}/`` (``{root}/`` for a
    manifest at the top of its bucket): the same place whether or not the key names an extract."""
    folder = posixpath.dirname(key)
    return Refusal(
        stage=stage,
        folder=f"{root}/{folder}/" if folder else f"{root}/",
        origin=f"s3://{bucket}/{key}",
        extract_id=extract_id,
        source=source,
    )


def keep_manifest_folder(s3: Any, settings: Settings, bucket: str, key: str) -> Keep:
    """Keeps what lies beside a refused manifest: its folder, or the manifest alone at the bucket's top."""
    folder = posixpath.dirname(key)

    def keep(quarantine_bucket: str, into: str) -> list[str]:
        if not folder:
            return copy_into_quarantine(s3, settings, bucket, "", into, keys=[key])
        return copy_into_quarantine(s3, settings, bucket, f"{folder}/", into)

    return keep


def quarantine(
    s3: Any,
    settings: Settings,
    refusal: Refusal,
    error: Refused,
    keep: Keep,
    *,
    progress: ExtractProgress | None = None,
    **extras: Any,
) -> str:
    """Quarantine what ``refusal`` names for ``error``: evidence, reason.json, alert, mark; the folder's URI.

    ``extras`` go into reason.json after its core keys; ``bundle_hash`` among them also tells this
    failure's alert from an earlier one of the same extract.
    """
    files = keep(settings.bucket("quarantine"), _folder(refusal.folder))
    write_reason(
        s3,
        settings,
        refusal.folder,
        stage=refusal.stage,
        extract_id=refusal.extract_id,
        source=refusal.source,
        reason=error.code,
        message=error.described,
        origin=refusal.origin,
        files=files,
        **extras,
    )
    announce(settings, refusal, error.as_error(), progress=progress, dedupe=extras.get("bundle_hash"))
    return refusal.uri(settings)


def already_quarantined(
    s3: Any,
    settings: Settings,
    refusal: Refusal,
    *,
    progress: ExtractProgress | None = None,
    same: Callable[[dict[str, Any]], bool] = lambda reason: True,
) -> dict[str, Any] | None:
    """The reason.json of an earlier quarantine of the same thing (``same`` says whether it is); None.

    When there is one, the steps after it run again: a crash may have come between reason.json and the
    alert or the mark, and both are safe to repeat.
    """
    reason = read_reason(s3, settings, refusal.folder)
    if reason is None or not same(reason):
        return None
    error = {"code": str(reason.get("reason")), "message": str(reason.get("message"))}
    announce(settings, refusal, error, progress=progress, dedupe=reason.get("bundle_hash"))
    return reason


def announce(
    settings: Settings,
    refusal: Refusal,
    error: dict[str, str],
    *,
    progress: ExtractProgress | None = None,
    dedupe: str | None = None,
) -> None:
    """Steps 3 and 4: the one alert, then the extract marked quarantined (both safe to repeat)."""
    where = refusal.uri(settings)
    what = f"extract {refusal.extract_id}" if refusal.extract_id else refusal.origin
    raise_alert(
        settings,
        Alert(
            stage=refusal.stage,
            event="quarantined",
            code=error["code"],
            message=f"{what} was quarantined by the {refusal.stage}: {error['message']}",
            extract_id=refusal.extract_id,
            source=refusal.source,
            evidence=where,
            replay=replay_command(refusal.stage, refusal.extract_id),
            details={"origin": refusal.origin, "reason": refusal.uri(settings, REASON_NAME)},
            dedupe=dedupe,
        ),
    )
    if refusal.extract_id and progress is not None:
        progress.record(refusal.extract_id, refusal.stage, QUARANTINED, error=error, quarantine=where)


def replay_command(stage: str, extract_id: str | None) -> str | None:
    """How a person replays the extract from ``stage`` once the cause is fixed; None without an extract."""
    return f"moviepipe replay {extract_id} --from-stage {stage}" if extract_id else None
