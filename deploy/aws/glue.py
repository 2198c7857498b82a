"""The Glue job the transformer starts a run of per large extract, its role, and the catalog database.

The job is what ``services/transformer/runner.py`` would create itself (with ``MOVIEPIPE_GLUE_ROLE_ARN``):
the same name, Glue version, script and ``--conf``. Its script is ``glue_entry.py``, which only calls
``services.transformer.glue_job.main``: the transformer uploads it and, per version, a zip of ``shared/``
and ``services/transformer/`` under ``GlueAssetsPrefix``, and hands each run that zip in
``--extra-py-files``; so the job definition never changes when the code does.
"""

from __future__ import annotations

import math
from typing import Any

from deploy.aws import iam
from deploy.aws.intrinsics import get_att, log_group_arn, ref, sub
from deploy.aws.workloads import glue_assets, glue_database, glue_job_grants, glue_job_name
from services.transformer.glue_assets import GLUE_VERSION, GlueAssets
from services.transformer.settings import TransformerSettings
from services.transformer.spark_conf import GLUE_CONF_ARGUMENT
from shared.settings import Settings

GLUE_JOB = "GlueJob"
GLUE_LOG_GROUPS = "/aws-glue/*"


def timeout_minutes() -> int:
    """Glue stops a run the transformer gave up on (``glue_deadline_seconds``), should it not."""
    return math.ceil(TransformerSettings.model_construct().glue_deadline_seconds / 60)


def script_location(settings: Settings) -> str:
    bucket, _ = glue_assets(settings)
    return GlueAssets(bucket, "${GlueAssetsPrefix}", version="").script_location


def glue_role(settings: Settings) -> dict[str, Any]:
    """Reads processed, writes the archive; Glue's own logs and metrics."""
    logs = {
        "Sid": "WriteGlueLogs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": [log_group_arn(GLUE_LOG_GROUPS)],
    }
    metrics = {
        "Sid": "PutGlueMetrics",
        "Effect": "Allow",
        "Action": ["cloudwatch:PutMetricData"],
        "Resource": "*",  # PutMetricData has no resource; the namespace condition limits it
        "Condition": {"StringEquals": {"cloudwatch:namespace": "Glue"}},
    }
    return iam.role(
        "moviepipe Glue job: processed read, archive written",
        iam.assumed_by({"Service": "glue.amazonaws.com"}),
        iam.policy(glue_job_grants(settings), logs, metrics),
    )


def glue(settings: Settings) -> dict[str, dict[str, Any]]:
    return {
        "GlueJobRole": glue_role(settings),
        GLUE_JOB: {
            "Type": "AWS::Glue::Job",
            "Properties": {
                "Name": sub(glue_job_name(settings)),
                "Description": "moviepipe transform of one extract (services/transformer/glue_job.py)",
                "Role": get_att("GlueJobRole", "Arn"),
                "GlueVersion": GLUE_VERSION,
                "Command": {
                    "Name": "glueetl",
                    "PythonVersion": "3",
                    "ScriptLocation": sub(script_location(settings)),
                },
                "WorkerType": ref("GlueWorkerType"),
                "NumberOfWorkers": ref("GlueWorkers"),
                "Timeout": timeout_minutes(),
                # The transformer retries through its queue, with an alert; Glue retrying too would double it.
                "MaxRetries": 0,
                "ExecutionProperty": {"MaxConcurrentRuns": ref("GlueMaxConcurrentRuns")},
                "DefaultArguments": {
                    "--job-language": "python",
                    "--conf": GLUE_CONF_ARGUMENT,
                    "--enable-continuous-cloudwatch-log": "true",
                    "--enable-metrics": "true",
                },
            },
        },
        "GlueDatabase": {
            "Type": "AWS::Glue::Database",
            "Properties": {
                "CatalogId": ref("AWS::AccountId"),
                "DatabaseInput": {
                    "Name": sub(glue_database(settings)),
                    "Description": "moviepipe: processed and archived movies (transformer/catalog.py)",
                },
            },
        },
    }
