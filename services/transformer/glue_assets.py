"""What a Glue job run needs in S3: the job script and the code it imports, uploaded once per version.

The Glue job's script is a fixed entry point (``glue_entry.py``, three lines that never change), so the
job definition stays as CloudFormation made it. Everything else travels per run: ``--extra-py-files``
names a zip of ``shared/`` and ``services/transformer/`` at a key named by its content's hash, so a new
version is uploaded once, runs of different versions (a rolling deploy) never mix code, and a run
always imports the code its transformer was built from. ``--additional-python-modules`` names the
packages the job imports that Glue does not provide, pinned to the versions installed here.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from shared.aws import is_missing, object_exists
from shared.logs import log_event

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
PACKAGED = ("shared", "services/transformer")
"""What the job imports, as folders of the repository; with ``services/__init__.py``."""
ENTRY_SCRIPT = Path(__file__).with_name("glue_entry.py")
GLUE_EXTRA_DISTRIBUTIONS = ("pydantic",)
"""Distributions the job imports that Glue 5.0 does not provide (it has boto3, pyarrow, numpy)."""
GLUE_VERSION = "5.0"


def package_files(root: Path = ROOT) -> list[Path]:
    """The Python files the zip holds, relative to ``root``, in a stable order."""
    files = [Path("services/__init__.py")]
    for folder in PACKAGED:
        files += sorted(path.relative_to(root) for path in (root / folder).rglob("*.py"))
    return [path for path in files if "__pycache__" not in path.parts]


def build_package(root: Path = ROOT) -> tuple[bytes, str]:
    """The zip of the job's code (deterministic: same files, same bytes) and its version, a hash."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in package_files(root):
            info = zipfile.ZipInfo(path.as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(info, (root / path).read_bytes())
    data = buffer.getvalue()
    return data, hashlib.sha256(data).hexdigest()[:16]


def python_modules() -> str:
    """``--additional-python-modules``: the extra distributions, pinned to what is installed here."""
    return ",".join(f"{name}=={metadata.version(name)}" for name in GLUE_EXTRA_DISTRIBUTIONS)


@dataclass(frozen=True)
class GlueAssets:
    """Where one version's code lives in S3, and the arguments that hand it to a run."""

    bucket: str
    prefix: str
    version: str

    @property
    def entry_key(self) -> str:
        return f"{self.prefix}/glue_entry.py"

    @property
    def package_key(self) -> str:
        return f"{self.prefix}/{self.version}/moviepipe.zip"

    @property
    def script_location(self) -> str:
        return f"s3://{self.bucket}/{self.entry_key}"

    @property
    def package_location(self) -> str:
        return f"s3://{self.bucket}/{self.package_key}"

    def run_arguments(self) -> dict[str, str]:
        """What every run is started with, besides the batch's own arguments."""
        return {
            "--extra-py-files": self.package_location,
            "--additional-python-modules": python_modules(),
            "--moviepipe_version": self.version,
        }


def split_location(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix/`` → ``("bucket", "some/prefix")``."""
    if not uri.startswith("s3://"):
        raise ValueError(f"the Glue assets location must be an s3:// URI, not {uri!r}")
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bucket, prefix.strip("/")


class AssetUploader:
    """Uploads the entry script and this version's package once per process (and only if absent)."""

    def __init__(self, settings: Any, location: str, root: Path = ROOT):
        self.settings = settings
        self.location = location
        self.root = root
        self._assets: GlueAssets | None = None
        self._lock = threading.Lock()

    def ensure(self, s3: Any) -> GlueAssets:
        with self._lock:
            if self._assets is None:
                self._assets = self._upload(s3)
            return self._assets

    def _upload(self, s3: Any) -> GlueAssets:
        bucket, prefix = split_location(self.location)
        package, version = build_package(self.root)
        assets = GlueAssets(bucket, prefix, version)
        entry = ENTRY_SCRIPT.read_bytes()
        if not self._same(s3, bucket, assets.entry_key, entry):
            s3.put_object(Bucket=bucket, Key=assets.entry_key, Body=entry)
        if not object_exists(self.settings, bucket, assets.package_key):
            s3.put_object(Bucket=bucket, Key=assets.package_key, Body=package)
            log_event(logger, "glue_assets_uploaded", version=version, package=assets.package_location)
        return assets

    @staticmethod
    def _same(s3: Any, bucket: str, key: str, body: bytes) -> bool:
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
        except ClientError as exc:
            if is_missing(exc):
                return False
            raise
