"""CloudFormation's intrinsic functions as Python values, ARNs built from names, and the YAML they print as.

Names reach the template as ``Settings(prefix="${Prefix}")`` spells them (``${Prefix}-landing``), so a
name is a ``!Sub`` of the same string ``Settings`` builds, and an ARN built from a name never needs the
resource itself (no ``!GetAtt``, so no dependency cycle between a bucket and its queue's policy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

PREFIX = "${Prefix}"
"""What ``Settings.prefix`` is while the template is built: the ``Prefix`` parameter, as ``!Sub`` reads it."""


@dataclass(frozen=True)
class Fn:
    """An intrinsic function in its short YAML form: ``!Sub …``, ``!Ref …``, ``!If [...]``."""

    tag: str
    value: Any


def sub(text: str) -> Fn:
    return Fn("Sub", text)


def ref(name: str) -> Fn:
    return Fn("Ref", name)


def get_att(resource: str, attribute: str) -> Fn:
    return Fn("GetAtt", f"{resource}.{attribute}")


def equals(left: Any, right: Any) -> Fn:
    return Fn("Equals", [left, right])


def not_(condition: Fn) -> Fn:
    return Fn("Not", [condition])


RETAINED = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
"""Data outlives the stack: deleting or replacing it never deletes a bucket's objects or a table's items."""
DELETED = {"DeletionPolicy": "Delete", "UpdateReplacePolicy": "Delete"}
"""Said rather than defaulted, for what goes with the stack: queued messages (their objects stay in S3,
where a replay finds them), logs past their retention anyway, generated secrets."""


def unprefixed(name: str) -> str:
    """``${Prefix}-unzipper-dlq`` → ``unzipper-dlq``: the part of a name every deployment shares."""
    return name.removeprefix(f"{PREFIX}-")


def logical_id(name: str, kind: str) -> str:
    """The template's id for a named resource: ``${Prefix}-unzipper-dlq`` → ``UnzipperDeadLetterQueue``."""
    words = unprefixed(name).split("-")
    if words[-1] == "dlq" and kind == "Queue":
        words, kind = words[:-1], "DeadLetterQueue"
    return "".join(word.capitalize() for word in words) + kind


# -- ARNs from names --------------------------------------------------------------------------------


def bucket_arn(bucket: str, keys: str | None = None) -> Fn:
    """The bucket's ARN, or with ``keys`` (``*``, ``_glue/*``) the ARN of those objects."""
    suffix = f"/{keys}" if keys else ""
    return sub(f"arn:${{AWS::Partition}}:s3:::{bucket}{suffix}")


def queue_arn(queue: str) -> Fn:
    return sub(f"arn:${{AWS::Partition}}:sqs:${{AWS::Region}}:${{AWS::AccountId}}:{queue}")


def topic_arn(topic: str) -> Fn:
    return sub(f"arn:${{AWS::Partition}}:sns:${{AWS::Region}}:${{AWS::AccountId}}:{topic}")


def table_arn(table: str, indexes: bool = False) -> Fn:
    """The table's ARN, or with ``indexes`` the ARN of all its indexes (which ``Query`` on one needs)."""
    suffix = "/index/*" if indexes else ""
    return sub(f"arn:${{AWS::Partition}}:dynamodb:${{AWS::Region}}:${{AWS::AccountId}}:table/{table}{suffix}")


def glue_arn(resource: str) -> Fn:
    """A Glue resource's ARN: ``catalog``, ``database/NAME``, ``table/DB/NAME``, ``job/NAME``."""
    return sub(f"arn:${{AWS::Partition}}:glue:${{AWS::Region}}:${{AWS::AccountId}}:{resource}")


def log_group_arn(group: str) -> Fn:
    return sub(f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:{group}:*")


# -- YAML ------------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block-style YAML with indented lists, no anchors, and intrinsic functions in their short form."""

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def choose_scalar_style(self) -> str:
        """``!Ref ImageUri``, not ``!Ref 'ImageUri'``: a tagged scalar is plain wherever YAML allows."""
        event = self.event
        if event.tag and event.tag.startswith("!") and event.style is None:
            if self.analysis is None:
                self.analysis = self.analyze_scalar(event.value)
            if self.analysis.allow_block_plain and not self.analysis.empty and not self.analysis.multiline:
                return ""
        return super().choose_scalar_style()


def _represent_fn(dumper: yaml.SafeDumper, fn: Fn) -> yaml.Node:
    tag = f"!{fn.tag}"
    if isinstance(fn.value, list):
        return dumper.represent_sequence(tag, fn.value)
    if isinstance(fn.value, dict):
        return dumper.represent_mapping(tag, fn.value)
    return dumper.represent_scalar(tag, str(fn.value))


_Dumper.add_representer(Fn, _represent_fn)


def to_yaml(document: dict[str, Any]) -> str:
    """The template as YAML, keys in the order they were built (a stable text for the drift test)."""
    return yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=4096, allow_unicode=True
    )
