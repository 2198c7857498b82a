"""Configuration from the environment (prefix ``MOVIEPIPE_``), one base class every service builds on."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_SECRET = "local"
STAGES = ("extractor", "unzipper", "transformer", "loader")


class Settings(BaseSettings):
    """Settings shared by every stage; a service subclasses it for its own knobs."""

    secrets: ClassVar[tuple[str, ...]] = ()
    """The secret settings this service cannot run without: outside ``local`` each must be set, and not
    to the local stand-in's value. A service needing none (the unzipper, the transformer) is never given
    one (``deploy/aws/environment.py``)."""

    model_config = SettingsConfigDict(
        env_prefix="MOVIEPIPE_", env_ignore_empty=True, extra="ignore", populate_by_name=True
    )

    environment: str = "local"
    home: Path = Path(".moviepipe")
    prefix: str = "moviepipe"
    region: str = Field("us-east-1", validation_alias=AliasChoices("MOVIEPIPE_REGION", "AWS_DEFAULT_REGION"))
    aws_endpoint_url: str | None = Field(
        None, validation_alias=AliasChoices("MOVIEPIPE_AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL")
    )
    api_token: str | None = None
    log_level: str = "INFO"

    host: str = "127.0.0.1"
    moto_port: int = 4566
    warehouse_port: int = 8090
    dashboard_port: int = 8000
    extractor_port: int = 8001
    unzipper_port: int = 8002
    transformer_port: int = 8003
    loader_port: int = 8004

    warehouse_host: str = "127.0.0.1"
    warehouse_protocol: str = "http"
    warehouse_account: str = "fakesnow"
    warehouse_user: str = "moviepipe"
    warehouse_password: str = LOCAL_SECRET
    warehouse_database: str = "MOVIES"
    warehouse_role: str | None = None
    warehouse_name: str | None = None

    max_receive_count: int = 3
    smtp_url: str | None = None
    """``smtp://[user:password@]host[:port]`` (``smtps://``, ``?starttls=true``): alerts are emailed too."""
    alert_email_to: str = "operators@localhost"
    """Comma-separated addresses the alert emails go to (with ``smtp_url``)."""
    alert_email_from: str = "moviepipe@localhost"
    alert_retention_days: int = 30
    poll_wait_seconds: int = 5

    @model_validator(mode="after")
    def _local_defaults_and_secrets(self) -> Settings:
        if self.environment == "local":
            # "local" means the local stack: never fall through to a real AWS account by accident.
            if not self.aws_endpoint_url:
                self.aws_endpoint_url = f"http://{self.host}:{self.moto_port}"
        else:
            for name in self.secrets:
                if getattr(self, name) in (None, "", LOCAL_SECRET):
                    raise ValueError(f"MOVIEPIPE_{name.upper()} must be set outside the local environment")
        return self

    # -- names derived from the prefix (DESIGN.md: the contracts) --------------------------------
    def bucket(self, role: str) -> str:
        """Bucket name for ``landing``, ``processed``, ``archive`` or ``quarantine``."""
        return f"{self.prefix}-{role}"

    def queue(self, stage: str) -> str:
        """Name of the SQS queue that feeds a stage."""
        return f"{self.prefix}-{stage}"

    def dead_letter_queue(self, stage: str) -> str:
        return f"{self.prefix}-{stage}-dlq"

    @property
    def alerts_topic(self) -> str:
        return f"{self.prefix}-alerts"

    @property
    def extracts_table(self) -> str:
        """DynamoDB table holding each extract's progress through the stages."""
        return f"{self.prefix}-extracts"

    @property
    def sources_table(self) -> str:
        """DynamoDB table holding each source's state: high-water mark, running and last extract."""
        return f"{self.prefix}-sources"

    @property
    def alerts_table(self) -> str:
        """DynamoDB table holding each alert raised, once per extract and failure (its de-duplication)."""
        return f"{self.prefix}-alerts"

    @property
    def idempotency_table(self) -> str:
        """DynamoDB table holding Powertools idempotency records (one per bundle version being unzipped)."""
        return f"{self.prefix}-idempotency"

    def port(self, service: str) -> int:
        return getattr(self, f"{service}_port")

    def service_url(self, service: str) -> str:
        return f"http://{self.host}:{self.port(service)}"
