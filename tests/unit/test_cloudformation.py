"""deploy/aws/moviepipe.yaml: generated from deploy/resources.py, valid CloudFormation, every declared
resource in it with the same values, each role allowed exactly what its service's code touches."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint import api as cfn_lint
from cfnlint.decode import cfn_yaml

from deploy.aws import template
from deploy.aws.environment import SETTINGS as SERVICE_SETTINGS
from deploy.resources import ABANDONED_UPLOAD_DAYS, resources
from services.transformer.glue_assets import GLUE_VERSION
from services.transformer.settings import TransformerSettings
from services.transformer.spark_conf import GLUE_CONF_ARGUMENT
from shared.logs import JsonFormatter
from shared.settings import STAGES, Settings

ROOT = Path(__file__).resolve().parents[2]
REGION, ACCOUNT = "us-east-1", "123456789012"
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
SERVICES = ("extractor", "unzipper", "transformer", "loader", "dashboard")
SETTINGS = SERVICE_SETTINGS


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings a deployment with every default has (none of this machine's MOVIEPIPE_* variables)."""
    for name in [name for name in os.environ if name.startswith("MOVIEPIPE_")]:
        monkeypatch.delenv(name)
    return Settings()


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    return cfn_yaml.loads(template.TEMPLATE.read_text())


def resolve(value: Any, cfn: dict[str, Any]) -> Any:
    """``value`` as CloudFormation would make it with every parameter at its default (``<Name>`` for one
    without): ``!Sub`` text filled in, ``!Ref`` to a parameter its value, a queue's ``!GetAtt …Arn`` its ARN,
    any other ``!Ref``/``!GetAtt`` the resource's name in the template."""
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref" and argument in PSEUDO:
            return PSEUDO[argument]
        if function == "Ref" and argument in cfn["Parameters"]:
            return cfn["Parameters"][argument].get("Default", f"<{argument}>")
        if function == "Ref":
            return argument
        if function == "Fn::Sub" and isinstance(argument, str):
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(resolve({"Ref": m.group(1)}, cfn)), argument)
        if function == "Fn::GetAtt":
            resource = cfn["Resources"][argument[0]]
            if resource["Type"] == "AWS::SQS::Queue":
                name = resolve(resource["Properties"]["QueueName"], cfn)
                return {"Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}", "QueueName": name}[argument[1]]
            return ".".join(argument)
    if isinstance(value, dict):
        return {str(key): resolve(item, cfn) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, cfn) for item in value]
    return value


def references(value: Any) -> set[str]:
    """Every name ``value`` refers to: by ``!Ref``, ``!GetAtt``, or ``${…}`` in ``!Sub`` text."""
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            return {value["Ref"]}
        if set(value) == {"Fn::GetAtt"}:
            return {value["Fn::GetAtt"][0]}
        if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
            return {name.split(".")[0] for name in re.findall(r"\$\{([^}]+)\}", value["Fn::Sub"])}
        return set().union(*(references(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(references(item) for item in value))
    return set()


def of_type(cfn: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in cfn["Resources"].items() if r["Type"] == kind}


def named(cfn: dict[str, Any], kind: str, name_property: str) -> dict[str, dict[str, Any]]:
    """Resources of ``kind`` by their resolved name (``BucketName``, ``QueueName``, …)."""
    return {
        resolve(r["Properties"][name_property], cfn): resolve(r["Properties"], cfn)
        for r in of_type(cfn, kind).values()
    }


# -- the template is the generator's, and valid --------------------------------------------------


def test_the_committed_template_is_what_the_generator_writes():
    # GIVEN the committed template
    committed = template.TEMPLATE.read_text()

    # WHEN it is generated again from deploy/resources.py and deploy/aws/
    generated = template.render()

    # THEN nothing differs, and --check agrees
    assert committed == generated, "deploy/aws/moviepipe.yaml is stale: run python -m deploy.aws.template"
    assert template.main(["--check"]) == 0


def test_cfn_lint_finds_no_error_or_warning():
    # GIVEN the committed template
    # WHEN cfn-lint checks it (its rules and the CloudFormation resource schemas)
    matches = cfn_lint.lint_file(template.TEMPLATE)

    # THEN it reports nothing but, at most, informational notes
    problems = [str(match) for match in matches if match.rule.id[0] in "EW"]
    assert problems == []


def test_names_follow_the_prefix_as_settings_build_them(cfn, settings):
    # GIVEN the template with its Prefix parameter at its default, and with another prefix
    acme = dict(cfn, Parameters={**cfn["Parameters"], "Prefix": {"Default": "acme"}})

    # WHEN their names are resolved
    topics, buckets = named(cfn, "AWS::SNS::Topic", "TopicName"), named(acme, "AWS::S3::Bucket", "BucketName")

    # THEN they are the names Settings() gives, and Settings(prefix="acme") for the other
    assert cfn["Parameters"]["Prefix"]["Default"] == settings.prefix
    assert set(topics) == {settings.alerts_topic}
    assert set(buckets) == {
        Settings(prefix="acme").bucket(role) for role in ("landing", "processed", "archive", "quarantine")
    }


# -- every declared resource, with the same values -------------------------------------------------


def test_every_bucket_is_there_encrypted_private_tls_only_with_its_lifecycle(cfn, settings):
    # GIVEN the declared buckets
    declared = resources(settings).buckets

    # WHEN the template's buckets and bucket policies are read
    buckets = named(cfn, "AWS::S3::Bucket", "BucketName")
    policies = {
        resolve(cfn["Resources"][p["Properties"]["Bucket"]["Ref"]]["Properties"]["BucketName"], cfn): resolve(
            p["Properties"]["PolicyDocument"], cfn
        )
        for p in of_type(cfn, "AWS::S3::BucketPolicy").values()
    }

    # THEN each is there and nothing else, with the same lifecycle days
    assert set(buckets) == {bucket.name for bucket in declared}
    for bucket in declared:
        properties = buckets[bucket.name]
        encryption = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
        assert all(properties["PublicAccessBlockConfiguration"].values())
        assert len(properties["PublicAccessBlockConfiguration"]) == 4
        deny = policies[bucket.name]["Statement"][0]
        assert (deny["Effect"], deny["Action"]) == ("Deny", "s3:*")
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        rules = {rule["Id"]: rule for rule in properties["LifecycleConfiguration"]["Rules"]}
        assert rules["abort-abandoned-uploads"]["AbortIncompleteMultipartUpload"] == {
            "DaysAfterInitiation": ABANDONED_UPLOAD_DAYS
        }
        transitions = [t for rule in rules.values() for t in rule.get("Transitions", [])]
        if bucket.glacier_after_days:
            assert transitions == [{"StorageClass": "GLACIER", "TransitionInDays": bucket.glacier_after_days}]
        else:
            assert transitions == []
        versioned = properties.get("VersioningConfiguration", {}).get("Status") == "Enabled"
        assert versioned == (bucket.name == settings.bucket("landing"))
    expiring = [
        name
        for name, p in buckets.items()
        for rule in p["LifecycleConfiguration"]["Rules"]
        if "ExpirationInDays" in rule
    ]
    assert expiring == [settings.bucket("quarantine")]


def test_every_queue_is_there_with_its_dead_letter_queue_receives_and_visibility(cfn, settings):
    # GIVEN the declared queues
    declared = resources(settings).queues

    # WHEN the template's queues are read
    queues = named(cfn, "AWS::SQS::Queue", "QueueName")

    # THEN each is there and nothing else, with the same values
    assert set(queues) == {queue.name for queue in declared}
    for queue in declared:
        properties = queues[queue.name]
        assert properties["VisibilityTimeout"] == queue.visibility_seconds
        assert properties["MessageRetentionPeriod"] == 14 * 24 * 3600
        if queue.dead_letter_queue:
            assert properties["RedrivePolicy"] == {
                "deadLetterTargetArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue.dead_letter_queue}",
                "maxReceiveCount": queue.max_receive_count,
            }
        else:
            assert "RedrivePolicy" not in properties


def test_every_notification_is_there_and_its_queue_lets_that_bucket_send_without_a_cycle(cfn, settings):
    # GIVEN the declared notifications
    declared = resources(settings).notifications
    queue_ids = {
        resolve(q["Properties"]["QueueName"], cfn): q_id
        for q_id, q in of_type(cfn, "AWS::SQS::Queue").items()
    }
    policies = of_type(cfn, "AWS::SQS::QueuePolicy")

    # WHEN the buckets' notification configurations are read
    found = set()
    for bucket in of_type(cfn, "AWS::S3::Bucket").values():
        properties = resolve(bucket["Properties"], cfn)
        for entry in properties.get("NotificationConfiguration", {}).get("QueueConfigurations", []):
            queue = entry["Queue"].rsplit(":", 1)[-1]
            (rule,) = entry["Filter"]["S3Key"]["Rules"]
            found.add((properties["BucketName"], queue, rule["Name"], rule["Value"], entry["Event"]))
            # S3 checks the queue's policy when the notification is created: the policy comes first.
            waited_for = [policies[name] for name in bucket["DependsOn"] if name in policies]
            assert {"Ref": queue_ids[queue]} in [q for p in waited_for for q in p["Properties"]["Queues"]]

    # THEN they are the declared ones, on created objects, by suffix
    assert found == {(n.bucket, n.queue, "suffix", n.suffix, "s3:ObjectCreated:*") for n in declared}

    # AND each queue lets exactly its bucket send, naming the bucket by ARN (no !GetAtt, no cycle)
    for notification in declared:
        statements = [
            statement
            for policy in policies.values()
            for statement in resolve(policy["Properties"]["PolicyDocument"], cfn)["Statement"]
            if statement["Principal"] == {"Service": "s3.amazonaws.com"}
            and statement["Resource"].endswith(f":{notification.queue}")
        ]
        assert len(statements) == 1
        assert statements[0]["Action"] == "sqs:SendMessage"
        assert statements[0]["Condition"]["ArnLike"] == {
            "aws:SourceArn": f"arn:aws:s3:::{notification.bucket}"
        }
    for policy in policies.values():
        referenced = references(policy["Properties"])
        assert not [
            name for name in referenced if cfn["Resources"].get(name, {}).get("Type") == "AWS::S3::Bucket"
        ]


def test_the_alerts_topic_emails_the_alert_address_and_feeds_its_subscribed_queues(cfn, settings):
    # GIVEN the declared topic
    (topic,) = resources(settings).topics

    # WHEN the template's subscriptions are read
    subscriptions = [resolve(s["Properties"], cfn) for s in of_type(cfn, "AWS::SNS::Subscription").values()]

    # THEN the topic has an email subscription to AlertEmail and one raw SQS subscription per queue
    (topic_id,) = of_type(cfn, "AWS::SNS::Topic")
    assert all(s["TopicArn"] == topic_id for s in subscriptions)
    assert [s["Protocol"] for s in subscriptions].count("email") == 1
    email = next(s for s in subscriptions if s["Protocol"] == "email")
    assert email["Endpoint"] == "<AlertEmail>"
    assert {s["Endpoint"].rsplit(":", 1)[-1] for s in subscriptions if s["Protocol"] == "sqs"} == set(
        topic.queue_subscribers
    )
    assert all(s["RawMessageDelivery"] for s in subscriptions if s["Protocol"] == "sqs")


def test_every_table_is_there_with_its_key_indexes_and_time_to_live(cfn, settings):
    # GIVEN the declared tables
    declared = resources(settings).tables

    # WHEN the template's tables are read
    tables = named(cfn, "AWS::DynamoDB::Table", "TableName")

    # THEN each is there and nothing else, keyed, indexed and expiring as declared
    assert set(tables) == {table.name for table in declared}
    for table in declared:
        properties = tables[table.name]
        assert properties["BillingMode"] == "PAY_PER_REQUEST"
        assert properties["KeySchema"] == [{"AttributeName": table.key, "KeyType": "HASH"}]
        indexes = {
            index["IndexName"]: [key["AttributeName"] for key in index["KeySchema"]]
            for index in properties.get("GlobalSecondaryIndexes", [])
        }
        assert indexes == {index.name: [index.partition, index.sort] for index in table.indexes}
        typed = {a["AttributeName"]: a["AttributeType"] for a in properties["AttributeDefinitions"]}
        assert typed == dict.fromkeys(
            {table.key, *(n for i in table.indexes for n in (i.partition, i.sort))}, "S"
        )
        ttl = properties.get("TimeToLiveSpecification")
        assert ttl == (
            {"AttributeName": table.expires_attribute, "Enabled": True} if table.expires_attribute else None
        )


# -- least privilege: each role allows exactly what its service's code touches ----------------------

S3_ACCESS = {
    "s3:GetObject": "read",
    "s3:GetObjectVersion": "read",
    "s3:ListBucket": "read",
    "s3:PutObject": "write",
    "s3:AbortMultipartUpload": "write",
    "s3:DeleteObject": "delete",
}
DYNAMODB_ACCESS = {
    "dynamodb:DescribeTable": "read",
    "dynamodb:GetItem": "read",
    "dynamodb:Query": "read",
    "dynamodb:PutItem": "write",
    "dynamodb:UpdateItem": "write",
    "dynamodb:DeleteItem": "write",
}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allowed(role: dict[str, Any], cfn: dict[str, Any]) -> dict[str, set]:
    """What a role's inline policy allows, by kind: ``s3`` (bucket, access), ``sqs`` (queue, access),
    ``dynamodb`` (table, access), ``sns`` topics, ``glue`` resources, and ``other`` (action, resource)."""
    found: dict[str, set] = {
        "s3": set(),
        "sqs": set(),
        "dynamodb": set(),
        "sns": set(),
        "glue": set(),
        "other": set(),
    }
    for policy in role["Properties"].get("Policies", []):
        for statement in resolve(policy["PolicyDocument"], cfn)["Statement"]:
            assert statement["Effect"] == "Allow"
            actions = _listed(statement["Action"])
            for resource in _listed(statement["Resource"]):
                for action in actions:
                    service = action.split(":")[0]
                    if service == "s3":
                        bucket = resource.removeprefix("arn:aws:s3:::").split("/")[0]
                        found["s3"].add((bucket, S3_ACCESS[action]))
                    elif service == "sqs":
                        access = (
                            "consume"
                            if "sqs:ReceiveMessage" in actions
                            else "send"
                            if "sqs:SendMessage" in actions
                            else "watch"
                        )
                        found["sqs"].add((resource.rsplit(":", 1)[-1], access))
                    elif service == "dynamodb":
                        table = resource.split(":table/")[1].split("/")[0]
                        found["dynamodb"].add((table, DYNAMODB_ACCESS[action]))
                    elif service == "sns":
                        found["sns"].add(resource.rsplit(":", 1)[-1])
                    elif service == "glue":
                        found["glue"].add(resource.split(":", 5)[-1])
                    else:
                        found["other"].add((action, resource))
    return found


def expected_access(s: Settings) -> dict[str, dict[str, set]]:
    """Per role, what the services' code needs (see deploy/aws/workloads.py for where each comes from)."""
    b, q, dlq = s.bucket, s.queue, s.dead_letter_queue

    def both(name: str) -> set:
        return {(name, "read"), (name, "write")}

    def consumer(stage: str) -> set:
        return {(q(stage), "consume"), (dlq(stage), "watch")}

    progress, alert_claims, alerts = both(s.extracts_table), {(s.alerts_table, "write")}, {s.alerts_topic}
    nothing = {"s3": set(), "sqs": set(), "dynamodb": set(), "sns": set(), "glue": set(), "other": set()}
    unzipper = {
        **nothing,
        "s3": {(b("landing"), "read")} | both(b("processed")) | both(b("quarantine")),
        "sqs": consumer("unzipper"),
        "dynamodb": progress | both(s.idempotency_table) | alert_claims,
        "sns": alerts,
    }
    database = s.prefix
    return {
        "ExtractorTaskRole": {
            **nothing,
            "s3": both(b("landing")),
            "sqs": consumer("extractor") | {(q("extractor"), "send")},
            "dynamodb": progress | both(s.sources_table) | alert_claims,
            "sns": alerts,
        },
        "UnzipperTaskRole": unzipper,
        "UnzipperFunctionRole": {
            **unzipper,
            "other": {
                (action, f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{s.prefix}-unzipper:*")
                for action in ("logs:CreateLogStream", "logs:PutLogEvents")
            },
        },
        "TransformerTaskRole": {
            **nothing,
            "s3": both(b("processed")) | both(b("archive")) | both(b("quarantine")),
            "sqs": consumer("transformer"),
            "dynamodb": progress | alert_claims,
            "sns": alerts,
            "glue": {
                f"job/{TransformerSettings().glue_job}",
                "catalog",
                f"database/{database}",
                f"table/{database}/*",
            },
        },
        "LoaderTaskRole": {
            **nothing,
            "s3": {(b("archive"), "read")} | both(b("quarantine")),
            "sqs": consumer("loader"),
            "dynamodb": progress | alert_claims,
            "sns": alerts,
        },
        "DashboardTaskRole": {
            **nothing,
            "s3": {(b("quarantine"), "read")},
            "sqs": {(dlq(stage), "watch") for stage in STAGES},
            "dynamodb": {(s.extracts_table, "read"), (s.alerts_table, "read")},
        },
        "GlueJobRole": {
            **nothing,
            "s3": {(b("processed"), "read"), (b("archive"), "delete")} | both(b("archive")),
            "other": {
                *(
                    (action, f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws-glue/*:*")
                    for action in ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")
                ),
                ("cloudwatch:PutMetricData", "*"),
            },
        },
        "SnowflakeIntegrationRole": {**nothing, "s3": {(b("archive"), "read")}},
        "TaskExecutionRole": {
            **nothing,
            "other": {
                ("secretsmanager:GetSecretValue", secret) for secret in ("ApiTokenSecret", "WarehouseSecret")
            },
        },
    }


ROLES = (
    "ExtractorTaskRole",
    "UnzipperTaskRole",
    "UnzipperFunctionRole",
    "TransformerTaskRole",
    "LoaderTaskRole",
    "DashboardTaskRole",
    "GlueJobRole",
    "SnowflakeIntegrationRole",
    "TaskExecutionRole",
)


def test_every_role_is_checked(cfn):
    assert set(of_type(cfn, "AWS::IAM::Role")) == set(ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_allows_exactly_its_own_buckets_queues_tables_and_topics(cfn, settings, role):
    # GIVEN what the role's service does, read from its code
    expected = expected_access(settings)[role]

    # WHEN its policy is read
    found = allowed(cfn["Resources"][role], cfn)

    # THEN it allows exactly that: no other bucket, queue, table, topic or Glue resource, and no wildcard
    assert found == expected


def test_the_transformer_writes_to_processed_only_the_glue_jobs_code_and_the_catalogs_symlinks(cfn, settings):
    # GIVEN the transformer's role
    policy = resolve(
        cfn["Resources"]["TransformerTaskRole"]["Properties"]["Policies"][0]["PolicyDocument"], cfn
    )

    # WHEN the objects it may put are read
    written = {
        resource
        for statement in policy["Statement"]
        if "s3:PutObject" in statement["Action"]
        for resource in statement["Resource"]
        if settings.bucket("processed") in resource
    }

    # THEN they are the Glue assets' prefix and the catalog's symlink folder, nothing else there
    assets = TransformerSettings().glue_assets_location.removeprefix("s3://")
    assert written == {f"arn:aws:s3:::{assets}/*", f"arn:aws:s3:::{settings.bucket('processed')}/_catalog/*"}


def test_a_snowflake_role_exists_only_once_snowflake_said_who_assumes_it(cfn):
    # GIVEN the role Snowflake's storage integration assumes
    role = cfn["Resources"]["SnowflakeIntegrationRole"]

    # WHEN its condition and trust are read
    condition = cfn["Conditions"][role["Condition"]]
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]

    # THEN it needs SnowflakeIamUserArn given, trusts that principal with its external id, and has the name
    # deploy/snowflake/README.md tells Snowflake
    assert condition == {"Fn::Not": [{"Fn::Equals": [{"Ref": "SnowflakeIamUserArn"}, ""]}]}
    assert trust["Principal"] == {"AWS": {"Ref": "SnowflakeIamUserArn"}}
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "SnowflakeExternalId"}}}
    assert resolve(role["Properties"]["RoleName"], cfn) == "moviepipe-snowflake"


# -- the services: commands, health checks, settings, secrets ----------------------------------------


def container_of(cfn: dict[str, Any], service: str) -> dict[str, Any]:
    (container,) = cfn["Resources"][f"{service.capitalize()}TaskDefinition"]["Properties"][
        "ContainerDefinitions"
    ]
    return container


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_runs_its_app_on_its_port_checked_at_health(cfn, settings, service):
    # GIVEN the service's task definition
    container = container_of(cfn, service)
    task = cfn["Resources"][f"{service.capitalize()}TaskDefinition"]["Properties"]
    port = settings.port(service)

    # WHEN its command, health check and logs are read
    command, health = [*container["EntryPoint"], *container["Command"]], container["HealthCheck"]["Command"]

    # THEN it is the image's uvicorn app on its usual port, health-checked as docker-compose does, on Fargate
    assert command[:2] == ["uvicorn", f"services.{service}.app:app"]
    assert command[command.index("--port") + 1] == str(port)
    assert health[0] == "CMD-SHELL"
    assert f"http://127.0.0.1:{port}/health" in health[1] and "urllib" in health[1]
    assert container["Image"] == {"Ref": "ImageUri"}
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    assert task["RequiresCompatibilities"] == ["FARGATE"]
    assert task["Cpu"] == {"Ref": f"{service.capitalize()}Cpu"}


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_starts_in_prod_with_the_environment_and_only_the_secrets_it_uses(
    cfn, settings, monkeypatch, service
):
    # GIVEN the service's container: its environment, and its secrets as ECS would fill them in
    container = container_of(cfn, service)
    environment = {e["Name"]: resolve(e["Value"], cfn) for e in container["Environment"]}
    secrets = {s["Name"]: f"secret-{s['Name'].lower()}" for s in container.get("Secrets", [])}

    # WHEN the service's settings are read from them
    for name, value in {**environment, **secrets}.items():
        monkeypatch.setenv(name, str(value))
    started = SETTINGS[service]()

    # THEN they validate (outside local), name the deployment's resources, and only the extractor holds the
    # API token, only the loader and the dashboard the Snowflake credentials
    assert (started.environment, started.prefix, started.region) == ("prod", settings.prefix, REGION)
    assert started.aws_endpoint_url is None
    uses = {
        "extractor": {"MOVIEPIPE_API_TOKEN"},
        "loader": {"MOVIEPIPE_WAREHOUSE_ACCOUNT", "MOVIEPIPE_WAREHOUSE_USER", "MOVIEPIPE_WAREHOUSE_PASSWORD"},
        "dashboard": {
            "MOVIEPIPE_WAREHOUSE_ACCOUNT",
            "MOVIEPIPE_WAREHOUSE_USER",
            "MOVIEPIPE_WAREHOUSE_PASSWORD",
        },
    }.get(service, set())
    assert set(secrets) == uses
    if "MOVIEPIPE_WAREHOUSE_PASSWORD" in uses:
        assert started.warehouse_password == "secret-moviepipe_warehouse_password"
        assert (started.warehouse_protocol, started.warehouse_port) == ("https", 443)
        assert started.warehouse_host.endswith(".snowflakecomputing.com")


def test_a_service_not_given_a_secret_its_settings_require_fails_the_generator():
    # GIVEN the loader's workload as declared, but without the Snowflake secret
    from dataclasses import replace

    from deploy.aws.environment import service_values
    from deploy.aws.workloads import loader as loader_workload

    loader = loader_workload(Settings())

    # WHEN its environment is generated THEN the generator refuses, naming the setting
    with pytest.raises(ValueError, match=r"loader needs secret setting.*warehouse_password"):
        service_values(replace(loader, secrets=()))


def test_the_transformer_submits_the_glue_job_the_template_defines(cfn, settings):
    # GIVEN the Glue job, its database and the transformer's environment
    job = resolve(cfn["Resources"]["GlueJob"]["Properties"], cfn)
    database = resolve(cfn["Resources"]["GlueDatabase"]["Properties"]["DatabaseInput"], cfn)
    environment = {e["Name"]: e["Value"] for e in container_of(cfn, "transformer")["Environment"]}
    defaults = TransformerSettings()

    # WHEN they are compared with what the transformer's code would create itself
    # THEN the job has its default name, Glue version, entry script, --conf and size, and the catalog database
    assert job["Name"] == defaults.glue_job == "moviepipe-transform"
    assert job["GlueVersion"] == GLUE_VERSION == "5.0"
    assert job["Command"] == {
        "Name": "glueetl",
        "PythonVersion": "3",
        "ScriptLocation": f"{defaults.glue_assets_location}/glue_entry.py",
    }
    assert job["DefaultArguments"]["--conf"] == GLUE_CONF_ARGUMENT
    assert (job["WorkerType"], job["NumberOfWorkers"]) == (defaults.glue_worker_type, defaults.glue_workers)
    assert job["MaxRetries"] == 0
    assert database["Name"] == settings.prefix
    assert environment["MOVIEPIPE_GLUE_JOB_NAME"] == {"Ref": "GlueJob"}
    assert resolve(environment["MOVIEPIPE_GLUE_ASSETS"], cfn) == defaults.glue_assets_location
    assert environment["MOVIEPIPE_TRANSFORM_LARGE_RUNNER"] == "glue"


# -- the unzipper runs on ECS or on Lambda, never both -----------------------------------------------


def test_the_unzipper_runs_on_ecs_or_on_lambda_never_both(cfn):
    # GIVEN the UnzipperRuntime parameter and the two conditions on it
    runtime = cfn["Parameters"]["UnzipperRuntime"]
    on_ecs, on_lambda = cfn["Conditions"]["UnzipperOnEcs"], cfn["Conditions"]["UnzipperOnLambda"]

    # WHEN the unzipper's resources are read
    unzipper = {
        name: r.get("Condition") for name, r in cfn["Resources"].items() if name.startswith("Unzipper")
    }

    # THEN the conditions are one parameter equal to each of its only two values: exactly one holds
    assert sorted(runtime["AllowedValues"]) == ["ecs", "lambda"] and runtime["Default"] == "ecs"
    assert on_ecs == {"Fn::Equals": [{"Ref": "UnzipperRuntime"}, "ecs"]}
    assert on_lambda == {"Fn::Equals": [{"Ref": "UnzipperRuntime"}, "lambda"]}

    # AND the ECS service and its task definition exist under one, the function and its queue's mapping
    # under the other; the queue (and its wiring) under neither
    assert unzipper["UnzipperService"] == unzipper["UnzipperTaskDefinition"] == "UnzipperOnEcs"
    assert unzipper["UnzipperFunction"] == unzipper["UnzipperEventSourceMapping"] == "UnzipperOnLambda"
    assert unzipper["UnzipperQueue"] is None and unzipper["UnzipperQueuePolicy"] is None
    for name, condition in unzipper.items():
        kind = cfn["Resources"][name]["Type"]
        if kind.startswith(("AWS::ECS::", "AWS::Lambda::")):
            assert condition == ("UnzipperOnEcs" if kind.startswith("AWS::ECS::") else "UnzipperOnLambda")


def test_the_lambda_unzipper_runs_the_handler_on_its_queue_reporting_failed_messages_only(cfn, settings):
    # GIVEN the unzipper's Lambda function and its event source mapping
    function = resolve(cfn["Resources"]["UnzipperFunction"]["Properties"], cfn)
    mapping = resolve(cfn["Resources"]["UnzipperEventSourceMapping"]["Properties"], cfn)
    visibility = next(
        q.visibility_seconds for q in resources(settings).queues if q.name == settings.queue("unzipper")
    )

    # WHEN the handler it names is imported
    module, _, name = function["Handler"].rpartition(".")
    handler = getattr(__import__(module, fromlist=[name]), name)

    # THEN it is the unzipper's Lambda contract, fed by its queue, answering batchItemFailures, and done
    # before the queue hands the message out again
    assert callable(handler) and function["Handler"] == "services.unzipper.handler.handler"
    assert function["Code"] == {"S3Bucket": "", "S3Key": ""} and "LambdaCodeBucket" in cfn["Parameters"]
    assert mapping["EventSourceArn"] == f"arn:aws:sqs:{REGION}:{ACCOUNT}:{settings.queue('unzipper')}"
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert function["Timeout"] <= visibility
    variables = function["Environment"]["Variables"]
    assert (variables["MOVIEPIPE_ENVIRONMENT"], variables["MOVIEPIPE_PREFIX"]) == ("prod", settings.prefix)


# -- alarms: every failure reaches the alerts topic --------------------------------------------------


def alarms(cfn: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: resolve(a["Properties"], cfn) for name, a in of_type(cfn, "AWS::CloudWatch::Alarm").items()}


def test_every_alarm_notifies_the_alerts_topic(cfn):
    (topic,) = of_type(cfn, "AWS::SNS::Topic")
    assert alarms(cfn) and all(alarm["AlarmActions"] == [topic] for alarm in alarms(cfn).values())


def test_a_message_in_any_dead_letter_queue_raises_an_alarm(cfn, settings):
    # GIVEN every declared dead-letter queue
    dead_letters = {q.dead_letter_queue for q in resources(settings).queues if q.dead_letter_queue}

    # WHEN the SQS alarms are read
    watched = {
        alarm["Dimensions"][0]["Value"]: alarm
        for alarm in alarms(cfn).values()
        if alarm.get("Namespace") == "AWS/SQS"
    }

    # THEN each DLQ's visible messages above 0 raise one
    assert set(watched) == dead_letters
    for alarm in watched.values():
        assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)


def test_an_error_logged_by_any_service_raises_an_alarm(cfn):
    # GIVEN a line a service logs at error level
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", None, None)
    line = json.loads(JsonFormatter("loader").format(record))

    # WHEN the template's log metric filters and error alarms are read
    filters = [f["Properties"] for f in of_type(cfn, "AWS::Logs::MetricFilter").values()]
    errors = [f for f in filters if "$.level" in f["FilterPattern"]]
    alarmed = {
        a["Dimensions"][0]["Value"] for a in alarms(cfn).values() if a.get("MetricName") == "ErrorLogLines"
    }

    # THEN every service's log group is filtered for that level, counted by the line's stage, and alarmed
    assert line["level"] == "error" and line["stage"] == "loader"
    assert '$.level = "error"' in errors[0]["FilterPattern"]
    logged = {f["LogGroupName"]["Ref"] for f in errors}
    assert logged == {f"{s.capitalize()}LogGroup" for s in SERVICES} | {"UnzipperFunctionLogGroup"}
    assert all(
        f["MetricTransformations"][0]["Dimensions"] == [{"Key": "Stage", "Value": "$.stage"}] for f in errors
    )
    assert alarmed == set(SERVICES)


def test_a_missing_task_and_a_long_time_without_a_load_raise_alarms(cfn):
    # GIVEN the loader's own code and the template's alarms
    loader_code = (ROOT / "services/loader/handler.py").read_text()
    found = alarms(cfn)
    (loads,) = [
        f["Properties"]
        for f in of_type(cfn, "AWS::Logs::MetricFilter").values()
        if "$.event" in f["Properties"]["FilterPattern"]
    ]

    # WHEN the no-load alarm and the task alarms are read
    no_load = found["NoLoadAlarm"]
    tasks = [
        name
        for name, alarm in found.items()
        if any(m.get("Expression") == "desired - running" for m in alarm.get("Metrics", []))
    ]

    # THEN loads are counted from the event the loader logs, an alarm fires after NoLoadHours hours without
    # one (or without any log), and every ECS service has a running-below-desired alarm
    event = re.search(r'\$\.event = "(\w+)"', loads["FilterPattern"]).group(1)
    assert f'"{event}"' in loader_code
    assert (no_load["Period"], no_load["EvaluationPeriods"]) == (
        3600,
        cfn["Parameters"]["NoLoadHours"]["Default"],
    )
    assert (no_load["ComparisonOperator"], no_load["Threshold"], no_load["TreatMissingData"]) == (
        "LessThanThreshold",
        1,
        "breaching",
    )
    assert sorted(tasks) == sorted(f"{s.capitalize()}TasksAlarm" for s in SERVICES)
    rule = cfn["Resources"]["TaskStoppedRule"]["Properties"]
    assert rule["EventPattern"]["detail"]["lastStatus"] == ["STOPPED"]
    assert rule["Targets"][0]["Arn"] == {"Ref": "AlertsTopic"}
