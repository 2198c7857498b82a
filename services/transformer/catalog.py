"""The Glue Data Catalog's view of the data: database ``{prefix}``, a table per kind, a partition per extract.

After an extract is archived the transformer registers (or updates) three tables, partitioned by
``source`` and ``extract_id``, so that Athena, Redshift Spectrum or a crawler see each extract:

- ``archive_movies``: the clean rows, ``s3://{prefix}-archive/{source}/{extract_id}/movies/`` (CSV).
- ``archive_rejects``: the refused rows with their reason, ``…/rejects/`` (CSV).
- ``processed_movies``: the extract as the unzipper placed it, read from its ``movies.parquet``. That
  folder also holds ``movies.csv`` and ``manifest.json``, so the table is a symlink table: each
  partition's location holds a ``symlink.txt`` naming the Parquet file (Athena reads these).

Columns come from ``shared.schema``; a table whose columns changed is updated. Registering twice
changes nothing, so a redelivered event can repair an entry that a failure left out.
"""

from __future__ import annotations

import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from services.transformer.exceptions import CatalogUnavailable
from shared.aws import client
from shared.logs import log_event
from shared.schema import CLEAN_MOVIE_FIELDS, MOVIE_FIELDS, REJECT_FIELDS, glue_columns
from shared.settings import Settings

logger = logging.getLogger(__name__)

PARTITION_KEYS = [
    {"Name": "source", "Type": "string", "Comment": "The source the extract was read from"},
    {"Name": "extract_id", "Type": "string", "Comment": "The extract (one partition each)"},
]
CSV = {
    "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
    "SerdeInfo": {
        "SerializationLibrary": "org.apache.hadoop.hive.serde2.OpenCSVSerde",
        "Parameters": {"separatorChar": ",", "quoteChar": '"', "skip.header.line.count": "1"},
    },
}
PARQUET_SYMLINK = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
}
SYMLINK_PREFIX = "_catalog"
"""Where in the processed bucket the symlink files live: ``_catalog/processed_movies/…``."""


@dataclass(frozen=True)
class CatalogTable:
    name: str
    description: str
    columns: list[dict[str, str]]
    storage: dict[str, Any]
    classification: str

    def table_input(self, location: str) -> dict[str, Any]:
        return {
            "Name": self.name,
            "Description": self.description,
            "TableType": "EXTERNAL_TABLE",
            "PartitionKeys": PARTITION_KEYS,
            "Parameters": {"classification": self.classification, "EXTERNAL": "TRUE"},
            "StorageDescriptor": {"Columns": self.columns, "Location": location, **self.storage},
        }


TABLES = (
    CatalogTable(
        "archive_movies",
        "Cleansed movies, one partition per extract (moviepipe transformer)",
        glue_columns(CLEAN_MOVIE_FIELDS),
        CSV,
        "csv",
    ),
    CatalogTable(
        "archive_rejects",
        "Rows the transform refused, with reason, field and the row as it arrived",
        glue_columns(REJECT_FIELDS),
        CSV,
        "csv",
    ),
    CatalogTable(
        "processed_movies",
        "Extracted movies as the unzipper placed them (movies.parquet), one partition per extract",
        glue_columns(MOVIE_FIELDS),
        PARQUET_SYMLINK,
        "parquet",
    ),
)


class Catalog:
    """Registers archived extracts in the Glue Data Catalog."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.database = settings.prefix
        self._tables_ready = False

    def table_location(self, table: CatalogTable) -> str:
        if table.name == "processed_movies":
            return f"s3://{self.settings.bucket('processed')}/{SYMLINK_PREFIX}/{table.name}/"
        return f"s3://{self.settings.bucket('archive')}/"

    def partition_location(self, table: CatalogTable, source: str, extract_id: str) -> str:
        if table.name == "processed_movies":
            return f"{self.table_location(table)}source={source}/extract_id={extract_id}/"
        folder = "movies" if table.name == "archive_movies" else "rejects"
        return f"s3://{self.settings.bucket('archive')}/{source}/{extract_id}/{folder}/"

    def register(self, source: str, extract_id: str) -> None:
        """Make the extract visible in every table; raises ``CatalogUnavailable`` (retry) when it cannot."""
        try:
            glue = client("glue", self.settings)
            if not self._tables_ready:
                self._ensure_database(glue)
                for table in TABLES:
                    self._ensure_table(glue, table)
                self._tables_ready = True
            # Four independent requests, sent together: a round trip each would add up on every extract.
            with ThreadPoolExecutor(max_workers=len(TABLES) + 1) as pool:
                done = [pool.submit(self._write_symlink, source, extract_id)]
                done += [
                    pool.submit(self._ensure_partition, glue, table, source, extract_id) for table in TABLES
                ]
                for future in done:
                    future.result()
        except (ClientError, BotoCoreError) as exc:
            raise CatalogUnavailable(
                f"could not register extract {extract_id} in the Glue Data Catalog ({self.database}): {exc}"
            ) from exc
        log_event(logger, "catalog_registered", extract_id=extract_id, database=self.database)

    def _ensure_database(self, glue: Any) -> None:
        with contextlib.suppress(glue.exceptions.AlreadyExistsException):
            glue.create_database(
                DatabaseInput={
                    "Name": self.database,
                    "Description": "moviepipe: processed and archived movies",
                }
            )

    def _ensure_table(self, glue: Any, table: CatalogTable) -> None:
        wanted = table.table_input(self.table_location(table))
        try:
            found = glue.get_table(DatabaseName=self.database, Name=table.name)["Table"]
        except glue.exceptions.EntityNotFoundException:
            # Another transformer may have made it a moment ago.
            with contextlib.suppress(glue.exceptions.AlreadyExistsException):
                glue.create_table(DatabaseName=self.database, TableInput=wanted)
            return
        descriptor = found.get("StorageDescriptor", {})
        if (
            descriptor.get("Columns") != wanted["StorageDescriptor"]["Columns"]
            or descriptor.get("SerdeInfo") != wanted["StorageDescriptor"]["SerdeInfo"]
        ):
            glue.update_table(DatabaseName=self.database, TableInput=wanted)
            log_event(logger, "catalog_table_updated", table=table.name, database=self.database)

    def _ensure_partition(self, glue: Any, table: CatalogTable, source: str, extract_id: str) -> None:
        descriptor = {
            **table.table_input(self.partition_location(table, source, extract_id))["StorageDescriptor"]
        }
        partition = {"Values": [source, extract_id], "StorageDescriptor": descriptor}
        try:
            glue.create_partition(DatabaseName=self.database, TableName=table.name, PartitionInput=partition)
        except glue.exceptions.AlreadyExistsException:
            glue.update_partition(
                DatabaseName=self.database,
                TableName=table.name,
                PartitionValueList=[source, extract_id],
                PartitionInput=partition,
            )

    def _write_symlink(self, source: str, extract_id: str) -> None:
        bucket = self.settings.bucket("processed")
        key = f"{SYMLINK_PREFIX}/processed_movies/source={source}/extract_id={extract_id}/symlink.txt"
        target = f"s3://{bucket}/{source}/{extract_id}/movies.parquet\n"
        client("s3", self.settings).put_object(Bucket=bucket, Key=key, Body=target.encode())
