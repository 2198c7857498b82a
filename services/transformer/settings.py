"""The transformer's settings: the shared base plus where its Spark job runs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from shared.settings import Settings
from shared.transform import DEFAULT_MIN_VOTES, DEFAULT_YEAR_HORIZON


class TransformerSettings(Settings):
    """Settings of the transformer (environment prefix ``MOVIEPIPE_``)."""

    transform_runner: Literal["auto", "duckdb", "local", "glue"] = "auto"
    """``duckdb``: DuckDB in this process; ``local``: a warm Spark session in this process; ``glue``: an
    AWS Glue job run per extract; ``auto``: DuckDB below ``transform_duckdb_max_rows``, else Spark."""
    transform_duckdb_max_rows: int = 1_000_000
    """``auto`` sends a batch of fewer rows than this to DuckDB, a larger one to Spark."""
    transform_large_runner: Literal["local", "glue"] = "local"
    """Where ``auto`` runs Spark for a large batch: the warm local session, or AWS Glue (in AWS)."""
    transform_year_horizon: int = DEFAULT_YEAR_HORIZON
    """Years after the extract's own year that a release year may lie before it is ``OUT_OF_RANGE``."""
    transform_min_votes: int = Field(DEFAULT_MIN_VOTES, ge=0)
    """``m`` of the weighted rating: votes a movie needs before its own rating outweighs the mean."""
    transform_mean_rating: float | None = Field(None, ge=1, le=10)
    """``C`` of the weighted rating: a global mean rating; unset, each batch's own mean is used."""

    glue_job_name: str | None = None
    """The Glue job that runs ``services/transformer/glue_job.py``; default ``{prefix}-transform``."""
    glue_assets: str | None = None
    """``s3://bucket/prefix`` for the job's entry script and code; default ``s3://{prefix}-processed/_glue``."""
    glue_poll_seconds: float = 15.0
    """The longest wait between two looks at a run (the first is after ``glue_first_poll_seconds``)."""
    glue_first_poll_seconds: float = 2.0
    glue_deadline_seconds: float = 3600.0
    """A run still going after this long is asked to stop and counts as failed."""
    glue_role_arn: str | None = None
    """The role a job created by the transformer runs as; the job is created only when this is set
    (in AWS, deploy/aws creates it)."""
    glue_worker_type: str = "G.1X"
    glue_workers: int = 2

    glue_catalog: bool = True
    """Register each archived extract in the Glue Data Catalog (database ``{prefix}``)."""

    spark_master: str = "local[2]"
    spark_shuffle_partitions: int = 2

    def rule_options(self) -> dict[str, Any]:
        """The transform's rule settings, as both engines' ``transform`` take them."""
        return {
            "year_horizon": self.transform_year_horizon,
            "min_votes": self.transform_min_votes,
            "mean_rating": self.transform_mean_rating,
        }

    @property
    def glue_job(self) -> str:
        return self.glue_job_name or f"{self.prefix}-transform"

    @property
    def glue_assets_location(self) -> str:
        return self.glue_assets or f"s3://{self.bucket('processed')}/_glue"


def transformer_settings(settings: Settings | None = None) -> TransformerSettings:
    """The transformer's settings from the environment, or shared settings with the transformer's knobs."""
    if settings is None:
        return TransformerSettings()
    if isinstance(settings, TransformerSettings):
        return settings
    # Copy values over rather than re-validating them: fields with aliases ignore their own names.
    return TransformerSettings().model_copy(update=settings.model_dump())
