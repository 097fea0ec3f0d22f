"""cdk-nag 3.x acknowledgements, kept next to the resource they concern.

cdk-nag 3 is a CDK validation plugin (`Validations.of(app).add_plugins(AwsSolutionsChecks())`).
A finding is acknowledged on its construct with `Validations.of(construct).acknowledge(...)`,
using the plugin-qualified id `AwsSolutions::<rule>[<finding>]`; synthesis then lists it, with
its reason, under `suppressedViolations` in `validation-report.json`, and fails on any finding
that is not acknowledged.

Wildcards in IAM statements (rule AwsSolutions-IAM5) are the common case. `ScopedPolicy` adds a
statement and acknowledges exactly the wildcard findings that statement produces, with the
reason given next to it, so an acknowledgement can never drift away from the statement it
excuses, and a wildcard added without a reason fails at synth.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_iam as iam
from constructs import Construct, IConstruct

PLUGIN = "AwsSolutions"


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge the cdk-nag finding `rule` (e.g. `AwsSolutions-S1`) on `construct`."""
    if not reason.strip():
        raise ValueError(f"an acknowledgement of {rule} needs a reason")
    Validations.of(construct).acknowledge(Acknowledgment(id=f"{PLUGIN}::{rule}", reason=reason))


def flatten_reference(value: Any) -> str:
    """A resolved CloudFormation value as cdk-nag spells it in a finding id.

    Mirrors cdk-nag's own flattening: `{"Fn::GetAtt": ["X", "Arn"]}` becomes `<X.Arn>`,
    `{"Ref": "AWS::Region"}` becomes `<AWS::Region>`, `Fn::Join` is joined, `${..}` in a
    `Fn::Sub` becomes `<..>`.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value.replace("${", "<").replace("}", ">")
    if isinstance(value, Mapping):
        if "Fn::Join" in value:
            delimiter, items = value["Fn::Join"]
            return str(delimiter).join(flatten_reference(item) for item in items)
        if "Fn::Sub" in value:
            return flatten_reference(value["Fn::Sub"])
        if "Fn::GetAtt" in value:
            resource, attribute = value["Fn::GetAtt"]
            return f"<{flatten_reference(resource)}.{flatten_reference(attribute)}>"
        if "Fn::ImportValue" in value:
            return flatten_reference(value["Fn::ImportValue"])
        if "Ref" in value:
            return f"<{flatten_reference(value['Ref'])}>"
    raise ValueError(f"cannot name a cdk-nag finding for {value!r}")


@dataclass(frozen=True)
class Wildcard:
    """A resource pattern containing `*`, with the reason the pipeline needs it."""

    arn: str
    reason: str


class ScopedPolicy:
    """An `iam.Policy` whose wildcard statements carry their own cdk-nag acknowledgement."""

    def __init__(self, scope: Construct, construct_id: str, role: iam.IRole) -> None:
        self.policy = iam.Policy(scope, construct_id, roles=[role])
        self._reasons: dict[str, str] = {}

    def allow(
        self,
        actions: Sequence[str],
        resources: Sequence[str | Wildcard],
        *,
        conditions: Mapping[str, Mapping[str, Any]] | None = None,
        action_wildcard_reason: str | None = None,
    ) -> iam.PolicyStatement:
        """Allow `actions` on `resources`; acknowledge the wildcards with their reasons."""
        statement = iam.PolicyStatement(
            actions=list(actions),
            resources=[r.arn if isinstance(r, Wildcard) else r for r in resources],
            conditions=dict(conditions) if conditions else None,
        )
        self.policy.add_statements(statement)
        stack = Stack.of(self.policy)
        for action in actions:
            if "*" in action:
                if not action_wildcard_reason:
                    raise ValueError(f"{action} is a wildcard action: give its reason")
                self._acknowledge(f"Action::{action}", action_wildcard_reason)
        for resource in resources:
            finding = f"Resource::{flatten_reference(stack.resolve(_arn_of(resource)))}"
            if "*" not in finding:
                continue
            if not isinstance(resource, Wildcard):
                raise TypeError(f"{finding} is a wildcard resource: wrap it in Wildcard(reason)")
            self._acknowledge(finding, resource.reason)
        return statement

    def deny(self, actions: Sequence[str], resources: Sequence[str]) -> iam.PolicyStatement:
        """An explicit Deny: it holds whatever an Allow of this or any other policy grants."""
        if any("*" in r for r in resources) or any("*" in a for a in actions):
            raise ValueError("a Deny here names exact actions and resources")
        statement = iam.PolicyStatement(
            effect=iam.Effect.DENY, actions=list(actions), resources=list(resources)
        )
        self.policy.add_statements(statement)
        return statement

    def _acknowledge(self, finding: str, reason: str) -> None:
        known = self._reasons.get(finding)
        if known is None:
            self._reasons[finding] = reason
            acknowledge(self.policy, f"{PLUGIN}-IAM5[{finding}]", reason)
        elif known != reason:
            raise ValueError(
                f"{finding} is acknowledged twice on {self.policy.node.path} with different "
                "reasons: put those actions in one statement"
            )


def _arn_of(resource: str | Wildcard) -> str:
    return resource.arn if isinstance(resource, Wildcard) else resource


# Reasons for the wildcards AWS itself requires, shared by the constructs that need them.
XRAY_REASON = (
    "AWS requires Resource '*': xray:PutTraceSegments and xray:PutTelemetryRecords (and the "
    "sampling-rule reads) have no resource-level permissions. CDK adds this statement for "
    "active X-Ray tracing."
)
