"""The services on ECS/Fargate: cluster, network, internal load balancer, a task definition and service each.

Each container runs the command ``moviepipe up`` runs locally (``uvicorn services.X.app:app``) on its
usual port, with the ``GET /health`` check docker-compose uses. The extractor's API and the dashboard
are reachable through an internal Application Load Balancer, each on a listener at its own port, so
``MOVIEPIPE_HOST`` set to the balancer's name (and ``MOVIEPIPE_API_TOKEN``) points ``moviepipe extract``
and ``moviepipe status`` at AWS as they point at the local stack.
"""

from __future__ import annotations

from typing import Any

from deploy.aws import iam
from deploy.aws.environment import container_environment, container_secrets, secret_arns
from deploy.aws.intrinsics import DELETED, get_att, ref, sub
from deploy.aws.parameters import UNZIPPER_ON_ECS
from deploy.aws.workloads import Service
from shared.settings import Settings

HEALTH_CHECK = (
    "python -c \"import urllib.request as u; u.urlopen('http://127.0.0.1:{port}/health', timeout=4)\""
)
"""docker-compose.yml's check: a non-2xx answer or none at all makes Python exit non-zero."""
STOP_TIMEOUT_SECONDS = 60
"""Time a stopping task gets to finish its batch: the consumer waits ``poll_wait_seconds`` + 30 s."""
EXECUTION_ROLE = "TaskExecutionRole"
CLUSTER = "Cluster"
LOAD_BALANCER = "LoadBalancer"
TASK_SECURITY_GROUP = "TaskSecurityGroup"
BALANCER_SECURITY_GROUP = "LoadBalancerSecurityGroup"


def title(service: Service) -> str:
    return service.name.capitalize()


def condition_of(service: Service) -> str | None:
    """The unzipper's ECS resources exist only when it does not run on Lambda."""
    return UNZIPPER_ON_ECS if service.name == "unzipper" else None


def _conditional(resource: dict[str, Any], condition: str | None) -> dict[str, Any]:
    return {"Type": resource["Type"], "Condition": condition, **resource} if condition else resource


def log_group_name(service: Service) -> Any:
    return sub(f"/${{Prefix}}/{service.name}")


def command(service: Service, port: int) -> list[str]:
    """uvicorn's arguments, as ``moviepipe/stack.py`` starts it (access logs off: the JSON logs say what
    happened). uvicorn itself is the container's entry point, whatever entry point the image has."""
    return [
        f"services.{service.name}.app:app",
        "--host",
        "0.0.0.0",
        "--port",
        str(port),
        "--no-access-log",
    ]


def container(service: Service, port: int) -> dict[str, Any]:
    definition: dict[str, Any] = {
        "Name": service.name,
        "Image": ref("ImageUri"),
        "Essential": True,
        "EntryPoint": ["uvicorn"],
        "Command": command(service, port),
        "PortMappings": [{"ContainerPort": port, "Protocol": "tcp"}],
        "HealthCheck": {
            "Command": ["CMD-SHELL", HEALTH_CHECK.format(port=port)],
            "Interval": 15,
            "Timeout": 5,
            "Retries": 3,
            "StartPeriod": 60,
        },
        "StopTimeout": STOP_TIMEOUT_SECONDS,
        "Environment": container_environment(service),
    }
    secrets = container_secrets(service)
    if secrets:
        definition["Secrets"] = secrets
    definition["LogConfiguration"] = {
        "LogDriver": "awslogs",
        "Options": {
            "awslogs-group": ref(f"{title(service)}LogGroup"),
            "awslogs-region": ref("AWS::Region"),
            "awslogs-stream-prefix": service.name,
        },
    }
    return definition


def task_definition(service: Service, port: int) -> dict[str, Any]:
    name = title(service)
    resource = {
        "Type": "AWS::ECS::TaskDefinition",
        "Properties": {
            "Family": sub(f"${{Prefix}}-{service.name}"),
            "RequiresCompatibilities": ["FARGATE"],
            "NetworkMode": "awsvpc",
            "Cpu": ref(f"{name}Cpu"),
            "Memory": ref(f"{name}Memory"),
            "ExecutionRoleArn": get_att(EXECUTION_ROLE, "Arn"),
            "TaskRoleArn": get_att(f"{name}TaskRole", "Arn"),
            "ContainerDefinitions": [container(service, port)],
        },
    }
    return _conditional(resource, condition_of(service))


def ecs_service(service: Service, port: int) -> dict[str, Any]:
    name = title(service)
    properties: dict[str, Any] = {
        "ServiceName": service.name,
        "Cluster": ref(CLUSTER),
        "TaskDefinition": ref(f"{name}TaskDefinition"),
        "LaunchType": "FARGATE",
        "DesiredCount": 1,
        "PropagateTags": "SERVICE",
        "EnableECSManagedTags": True,
        "DeploymentConfiguration": {
            "MinimumHealthyPercent": 100,
            "MaximumPercent": 200,
            "DeploymentCircuitBreaker": {"Enable": True, "Rollback": True},
        },
        "NetworkConfiguration": {
            "AwsvpcConfiguration": {
                "Subnets": ref("SubnetIds"),
                "SecurityGroups": [ref(TASK_SECURITY_GROUP)],
                "AssignPublicIp": ref("AssignPublicIp"),
            }
        },
    }
    resource: dict[str, Any] = {"Type": "AWS::ECS::Service"}
    if service.load_balanced:
        properties["LoadBalancers"] = [
            {
                "ContainerName": service.name,
                "ContainerPort": port,
                "TargetGroupArn": ref(f"{name}TargetGroup"),
            }
        ]
        properties["HealthCheckGracePeriodSeconds"] = 60
        resource["DependsOn"] = [f"{name}Listener"]  # a target group must belong to a balancer first
    resource["Properties"] = properties
    return _conditional(resource, condition_of(service))


def log_group(service: Service) -> dict[str, Any]:
    resource = {
        "Type": "AWS::Logs::LogGroup",
        **DELETED,
        "Properties": {"LogGroupName": log_group_name(service), "RetentionInDays": ref("LogRetentionDays")},
    }
    return _conditional(resource, condition_of(service))


def task_role(service: Service) -> dict[str, Any]:
    return iam.role(
        f"moviepipe {service.name}: what its code touches, nothing else",
        iam.ECS_TASKS,
        iam.policy(service.grants),
        condition=condition_of(service),
    )


def balanced(service: Service, port: int) -> dict[str, dict[str, Any]]:
    """The service's target group (health checked at ``/health``) and the listener at its port."""
    name = title(service)
    return {
        f"{name}TargetGroup": {
            "Type": "AWS::ElasticLoadBalancingV2::TargetGroup",
            "Properties": {
                "Protocol": "HTTP",
                "Port": port,
                "TargetType": "ip",
                "VpcId": ref("VpcId"),
                "HealthCheckPath": "/health",
                "HealthCheckIntervalSeconds": 15,
                "HealthyThresholdCount": 2,
                "UnhealthyThresholdCount": 3,
                "Matcher": {"HttpCode": "200"},
                "TargetGroupAttributes": [{"Key": "deregistration_delay.timeout_seconds", "Value": "30"}],
            },
        },
        f"{name}Listener": {
            "Type": "AWS::ElasticLoadBalancingV2::Listener",
            "Properties": {
                "LoadBalancerArn": ref(LOAD_BALANCER),
                "Port": port,
                "Protocol": "HTTP",
                "DefaultActions": [{"Type": "forward", "TargetGroupArn": ref(f"{name}TargetGroup")}],
            },
        },
    }


def network(ports: list[int]) -> dict[str, dict[str, Any]]:
    """The internal balancer and the two security groups: clients → balancer → tasks, at these ports only."""
    return {
        BALANCER_SECURITY_GROUP: {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {
                "GroupDescription": "moviepipe internal load balancer: the extractor API and the dashboard",
                "VpcId": ref("VpcId"),
                "SecurityGroupIngress": [
                    {
                        "IpProtocol": "tcp",
                        "FromPort": port,
                        "ToPort": port,
                        "CidrIp": ref("ApiAllowedCidr"),
                        "Description": f"clients to port {port}",
                    }
                    for port in ports
                ],
            },
        },
        TASK_SECURITY_GROUP: {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {
                "GroupDescription": "moviepipe tasks: reached only by the load balancer",
                "VpcId": ref("VpcId"),
                "SecurityGroupIngress": [
                    {
                        "IpProtocol": "tcp",
                        "FromPort": port,
                        "ToPort": port,
                        "SourceSecurityGroupId": ref(BALANCER_SECURITY_GROUP),
                        "Description": f"load balancer to port {port}",
                    }
                    for port in ports
                ],
            },
        },
        LOAD_BALANCER: {
            "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
            "Properties": {
                "Type": "application",
                "Scheme": "internal",
                "Subnets": ref("SubnetIds"),
                "SecurityGroups": [ref(BALANCER_SECURITY_GROUP)],
                "LoadBalancerAttributes": [
                    {"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true"}
                ],
            },
        },
    }


def execution_role(services: tuple[Service, ...]) -> dict[str, Any]:
    """Pulls the image, writes the logs, reads the secrets the services are given (when a task starts)."""
    read_secrets = {
        "Sid": "ReadServiceSecrets",
        "Effect": "Allow",
        "Action": ["secretsmanager:GetSecretValue"],
        "Resource": secret_arns(services),
    }
    return iam.role(
        "moviepipe tasks' execution: image, logs, secrets",
        iam.ECS_TASKS,
        {"Version": "2012-10-17", "Statement": [read_secrets]},
        managed=[sub("arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy")],
    )


def ecs(services: tuple[Service, ...], settings: Settings) -> dict[str, dict[str, Any]]:
    """The cluster and, per service, its log group, role, task definition and service."""
    declared: dict[str, dict[str, Any]] = {
        CLUSTER: {
            "Type": "AWS::ECS::Cluster",
            "Properties": {
                "ClusterName": sub("${Prefix}"),
                # Running and desired task counts per service, which the alarms compare.
                "ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}],
            },
        },
        EXECUTION_ROLE: execution_role(services),
    }
    balanced_ports = [settings.port(s.name) for s in services if s.load_balanced]
    declared.update(network(balanced_ports))
    for service in services:
        port = settings.port(service.name)
        name = title(service)
        declared[f"{name}LogGroup"] = log_group(service)
        declared[f"{name}TaskRole"] = task_role(service)
        declared[f"{name}TaskDefinition"] = task_definition(service, port)
        if service.load_balanced:
            declared.update(balanced(service, port))
        declared[f"{name}Service"] = ecs_service(service, port)
    return declared
