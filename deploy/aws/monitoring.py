"""CloudWatch: what raises an alarm, and every alarm emails the alerts topic.

- an error logged by any service: a metric filter on the JSON log lines (``shared/logs.py``) counts the
  lines whose ``level`` is ``error`` or ``critical``, by their ``stage``;
- a message in any dead-letter queue;
- a service running fewer tasks than it should (Container Insights), and a task stopped because its
  essential container exited, failed to start or failed its health checks (an EventBridge rule);
- the unzipper's Lambda function failing (when it runs there);
- no extract loaded for ``NoLoadHours`` hours: a metric filter counts the loader's ``extract_loaded``.
"""

from __future__ import annotations

from typing import Any

from deploy.aws.ecs import CLUSTER, condition_of, title
from deploy.aws.intrinsics import get_att, logical_id, ref, sub, unprefixed
from deploy.aws.parameters import UNZIPPER_ON_LAMBDA
from deploy.aws.workloads import Service
from deploy.resources import Resources

ERROR_PATTERN = '{ $.level = "error" || $.level = "critical" }'
LOADED_EVENT = "extract_loaded"
"""What ``services/loader/handler.py`` logs once an extract is loaded."""
ERRORS_METRIC = "ErrorLogLines"
LOADS_METRIC = "ExtractsLoaded"
NAMESPACE = sub("${Prefix}")
TOPIC = "AlertsTopic"
STOPPED_TASKS_RULE = "TaskStoppedRule"


ANY_IN_FIVE_MINUTES: dict[str, Any] = {
    "Period": 300,
    "EvaluationPeriods": 1,
    "Threshold": 0,
    "ComparisonOperator": "GreaterThanThreshold",
    "TreatMissingData": "notBreaching",
}
"""An alarm that fires on any occurrence within five minutes, and stays quiet while nothing is reported."""


def _alarm(name: str, description: str, condition: str | None = None, **properties: Any) -> dict[str, Any]:
    """An alarm named ``{Prefix}-{name}`` that emails the alerts topic."""
    alarm: dict[str, Any] = {"Type": "AWS::CloudWatch::Alarm"}
    if condition:
        alarm["Condition"] = condition
    return {
        **alarm,
        "Properties": {
            "AlarmName": sub(f"${{Prefix}}-{name}"),
            "AlarmDescription": description,
            "AlarmActions": [ref(TOPIC)],
            **properties,
        },
    }


def _errors_filter(log_group: str, condition: str | None) -> dict[str, Any]:
    resource: dict[str, Any] = {"Type": "AWS::Logs::MetricFilter"}
    if condition:
        resource["Condition"] = condition
    resource["Properties"] = {
        "LogGroupName": ref(log_group),
        "FilterPattern": ERROR_PATTERN,
        "MetricTransformations": [
            {
                "MetricNamespace": NAMESPACE,
                "MetricName": ERRORS_METRIC,
                "MetricValue": "1",
                "Dimensions": [{"Key": "Stage", "Value": "$.stage"}],
            }
        ],
    }
    return resource


def error_alarms(services: tuple[Service, ...]) -> dict[str, dict[str, Any]]:
    """Per service, its log group's error lines counted, and an alarm at the first."""
    declared: dict[str, dict[str, Any]] = {}
    for service in services:
        name = title(service)
        declared[f"{name}ErrorsFilter"] = _errors_filter(f"{name}LogGroup", condition_of(service))
        declared[f"{name}ErrorsAlarm"] = _alarm(
            f"{service.name}-errors",
            f"The {service.name} logged an error: see its log group",
            Namespace=NAMESPACE,
            MetricName=ERRORS_METRIC,
            Dimensions=[{"Name": "Stage", "Value": service.name}],
            Statistic="Sum",
            **ANY_IN_FIVE_MINUTES,
        )
    declared["UnzipperFunctionErrorsFilter"] = _errors_filter("UnzipperFunctionLogGroup", UNZIPPER_ON_LAMBDA)
    return declared


def dead_letter_alarms(resources: Resources) -> dict[str, dict[str, Any]]:
    """Any message in a dead-letter queue: a stage gave up on it after its retries."""
    dead_letters = [queue.dead_letter_queue for queue in resources.queues if queue.dead_letter_queue]
    return {
        logical_id(dlq, "Alarm"): _alarm(
            unprefixed(dlq),
            f"A message is in {unprefixed(dlq)}: moviepipe dlq list, then redrive or discard",
            Namespace="AWS/SQS",
            MetricName="ApproximateNumberOfMessagesVisible",
            Dimensions=[{"Name": "QueueName", "Value": get_att(logical_id(dlq, "Queue"), "QueueName")}],
            Statistic="Maximum",
            **ANY_IN_FIVE_MINUTES,
        )
        for dlq in dead_letters
    }


def _container_insights(metric: str, service: Service, stat: str) -> dict[str, Any]:
    return {
        "Metric": {
            "Namespace": "ECS/ContainerInsights",
            "MetricName": metric,
            "Dimensions": [
                {"Name": "ClusterName", "Value": ref(CLUSTER)},
                {"Name": "ServiceName", "Value": get_att(f"{title(service)}Service", "Name")},
            ],
        },
        "Period": 60,
        "Stat": stat,
    }


def task_alarms(services: tuple[Service, ...]) -> dict[str, dict[str, Any]]:
    """Per service, fewer tasks running than desired for five minutes."""
    declared = {}
    for service in services:
        alarm = _alarm(
            f"{service.name}-tasks-missing",
            f"The {service.name} has run fewer tasks than desired for 5 minutes (ECS service events say why)",
            Metrics=[
                {
                    "Id": "running",
                    "MetricStat": _container_insights("RunningTaskCount", service, "Minimum"),
                    "ReturnData": False,
                },
                {
                    "Id": "desired",
                    "MetricStat": _container_insights("DesiredTaskCount", service, "Maximum"),
                    "ReturnData": False,
                },
                {
                    "Id": "missing",
                    "Expression": "desired - running",
                    "Label": "tasks missing",
                    "ReturnData": True,
                },
            ],
            EvaluationPeriods=5,
            DatapointsToAlarm=5,
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="missing",
            condition=condition_of(service),
        )
        declared[f"{title(service)}TasksAlarm"] = alarm
    return declared


def stopped_tasks() -> dict[str, dict[str, Any]]:
    """A task that stopped on its own (not a deployment or scale-in): the event itself goes to the topic."""
    return {
        STOPPED_TASKS_RULE: {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "Description": "moviepipe: a task stopped on its own (exited, failed to start, unhealthy)",
                "EventPattern": {
                    "source": ["aws.ecs"],
                    "detail-type": ["ECS Task State Change"],
                    "detail": {
                        "clusterArn": [get_att(CLUSTER, "Arn")],
                        "lastStatus": ["STOPPED"],
                        "$or": [
                            {"stopCode": ["EssentialContainerExited", "TaskFailedToStart"]},
                            {"stoppedReason": [{"prefix": "Task failed container health checks"}]},
                        ],
                    },
                },
                "Targets": [{"Id": "alerts", "Arn": ref(TOPIC)}],
            },
        },
        "AlertsTopicPolicy": {
            "Type": "AWS::SNS::TopicPolicy",
            "Properties": {
                "Topics": [ref(TOPIC)],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "StoppedTasks",
                            "Effect": "Allow",
                            "Principal": {"Service": "events.amazonaws.com"},
                            "Action": "sns:Publish",
                            "Resource": ref(TOPIC),
                            "Condition": {"ArnEquals": {"aws:SourceArn": get_att(STOPPED_TASKS_RULE, "Arn")}},
                        },
                        {
                            "Sid": "Alarms",
                            "Effect": "Allow",
                            "Principal": {"Service": "cloudwatch.amazonaws.com"},
                            "Action": "sns:Publish",
                            "Resource": ref(TOPIC),
                            "Condition": {"StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")}},
                        },
                    ],
                },
            },
        },
    }


def lambda_alarm() -> dict[str, dict[str, Any]]:
    """The unzipper's function failing outright (a timeout, an import error), which its logs may not say."""
    return {
        "UnzipperFunctionAlarm": _alarm(
            "unzipper-function-errors",
            "The unzipper's Lambda function failed (timeout, crash): see its log group",
            condition=UNZIPPER_ON_LAMBDA,
            Namespace="AWS/Lambda",
            MetricName="Errors",
            Dimensions=[{"Name": "FunctionName", "Value": ref("UnzipperFunction")}],
            Statistic="Sum",
            **ANY_IN_FIVE_MINUTES,
        )
    }


def no_loads() -> dict[str, dict[str, Any]]:
    """Loads counted per hour from the loader's logs; an alarm when ``NoLoadHours`` hours had none."""
    return {
        "LoaderLoadsFilter": {
            "Type": "AWS::Logs::MetricFilter",
            "Properties": {
                "LogGroupName": ref("LoaderLogGroup"),
                "FilterPattern": f'{{ $.event = "{LOADED_EVENT}" }}',
                "MetricTransformations": [
                    {
                        "MetricNamespace": NAMESPACE,
                        "MetricName": LOADS_METRIC,
                        "MetricValue": "1",
                        "DefaultValue": 0,
                    }
                ],
            },
        },
        "NoLoadAlarm": _alarm(
            "no-load",
            "No extract has been loaded for NoLoadHours hours: is anything being extracted?",
            Namespace=NAMESPACE,
            MetricName=LOADS_METRIC,
            Statistic="Sum",
            Period=3600,
            EvaluationPeriods=ref("NoLoadHours"),
            DatapointsToAlarm=ref("NoLoadHours"),
            Threshold=1,
            ComparisonOperator="LessThanThreshold",
            # No log line at all (the loader is down) is no load either.
            TreatMissingData="breaching",
        ),
    }


def monitoring(services: tuple[Service, ...], resources: Resources) -> dict[str, dict[str, Any]]:
    return {
        **error_alarms(services),
        **dead_letter_alarms(resources),
        **task_alarms(services),
        **stopped_tasks(),
        **lambda_alarm(),
        **no_loads(),
    }
