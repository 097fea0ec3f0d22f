"""IAM replay, part 2: the evaluator. The synthesised template's policies, resolved to the
sandbox's names, and every recorded request (sandbox/iam_replay.py) evaluated against them.

1. `Policies.from_template` resolves the template's intrinsic functions to the sandbox's
   concrete names and ARNs and collects each role's identity policies, its trust policy, and
   the bucket policy and the key policy as resource policies. Every role's `Fn::GetAtt Arn`
   resolves to the ARN the requests carry (`arn:aws:iam::<account>:role/<name>`, the export
   role to the one StartExportTask passes), so a key, bucket or trust statement that names a
   role is really tested.
2. `Policies.assume_role_requests` adds, for every role that acted, the `sts:AssumeRole` its
   service makes to get it, with the context keys AWS documents for that service
   (`SERVICE_TRUST`); `snowflake_assume_role` the same for Snowflake's IAM user, with or
   without its external id.
3. `evaluate` hands every request to `@cloud-copilot/iam-simulate` (pinned in package.json,
   run by sandbox/iam_simulate.mjs, one Node process per batch).
4. `unused_grants` lists, per role, every allowed action that no request used.

It imports the recorder's data types only, nothing of the sandbox's runtime.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import shutil
import subprocess  # nosec B404
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.iam_replay import (
    EXPORT_ROLE,
    SCHEDULER,
    STATE_MACHINE,
    Request,
    freeze_context,
    function_principal,
)

ROOT = Path(__file__).resolve().parent.parent
SIMULATOR = Path(__file__).resolve().parent / "iam_simulate.mjs"
SNOWFLAKE_ROLE = "snowflake-role"
PIPELINE_HANDLERS = "rds_s3_export.steps."  # the pipeline's functions: one per step module
SERVICE = "service:"  # a request's principal `service:<name>`: an AWS service principal
USER = "user:"  # a request's principal `user:<ARN>`: an IAM user of another account


# --- who assumes each role, and what AWS documents that it sends -----------------------------
@dataclass(frozen=True)
class Trust:
    """The service that assumes a kind of role, and the context keys AWS documents it sends."""

    service: str
    context: Callable[[Names, Mapping[str, Any]], list[dict[str, str]]]
    source: str  # the AWS page that documents the trust policy and its keys


def _no_keys(names: Names, template: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{}]


def _state_machine_keys(names: Names, template: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{"aws:SourceAccount": names.account, "aws:SourceArn": names.state_machine_arn}]


def _scheduler_keys(names: Names, template: Mapping[str, Any]) -> list[dict[str, str]]:
    # The page names the schedule group's ARN as aws:SourceArn; an earlier version of it named
    # the schedule's ARN. Both are replayed, and the trust policy must accept both.
    found = []
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Scheduler::Schedule":
            continue
        props = resource["Properties"]
        group, name = props.get("GroupName", "default"), props["Name"]
        prefix = f"arn:{names.partition}:scheduler:{names.region}:{names.account}"
        for source in (f"{prefix}:schedule-group/{group}", f"{prefix}:schedule/{group}/{name}"):
            found.append({"aws:SourceAccount": names.account, "aws:SourceArn": source})
    return found


# principal kind -> who assumes it. The lambda and the RDS export pages show trust policies
# without conditions and name no context key the service sends when it assumes the role: the
# replay sends none, so a trust policy conditioned on one fails here as it would in AWS.
SERVICE_TRUST: dict[str, Trust] = {
    EXPORT_ROLE: Trust(
        "export.rds.amazonaws.com",
        _no_keys,
        "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.html",
    ),
    "function:": Trust(
        "lambda.amazonaws.com",
        _no_keys,
        "https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html",
    ),
    STATE_MACHINE: Trust(
        "states.amazonaws.com",
        _state_machine_keys,
        "https://docs.aws.amazon.com/step-functions/latest/dg/procedure-create-iam-role.html",
    ),
    SCHEDULER: Trust(
        "scheduler.amazonaws.com",
        _scheduler_keys,
        "https://docs.aws.amazon.com/scheduler/latest/UserGuide/cross-service-confused-deputy-prevention.html",
    ),
}

# Snowflake's side: its IAM user may assume roles (Snowflake's own account grants that; it is
# not the stack's to check). The stack's trust policy is what decides.
_SNOWFLAKE_SIDE = {
    "name": "SnowflakeAccountSide",
    "policy": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
    },
}


def trust_of(principal: str) -> Trust:
    return SERVICE_TRUST["function:" if principal.startswith("function:") else principal]


# --- the template's policies, resolved to the sandbox's names --------------------------------


@dataclass
class Names:
    """The sandbox's concrete names for what the template names by reference."""

    account: str
    region: str
    bucket: str
    key_arn: str
    export_role_arn: str
    function_arns: Mapping[str, str]  # step module -> function ARN
    state_machine_arn: str
    partition: str = "aws"
    # a literal of the template (an imported bucket's name, key's ARN) -> the sandbox's value
    literals: Mapping[str, str] = field(default_factory=dict)
    # the sandbox's alert topic (notify_success publishes there); empty: named by logical id
    alert_topic_arn: str = ""


class Resolver:
    """Resolves Ref / Fn::GetAtt / Fn::Join / Fn::Sub / pseudo parameters to sandbox values."""

    def __init__(self, template: Mapping[str, Any], names: Names) -> None:
        self.resources: Mapping[str, Any] = template["Resources"]
        self.names = names
        self.refs: dict[str, str] = {
            "AWS::Partition": names.partition,
            "AWS::Region": names.region,
            "AWS::AccountId": names.account,
            "AWS::URLSuffix": "amazonaws.com",
        }
        self.attrs: dict[tuple[str, str], str] = {}
        self._map_known()

    def _map_known(self) -> None:
        n = self.names
        for logical_id, resource in self.resources.items():
            kind, props = resource["Type"], resource.get("Properties", {})
            if kind == "AWS::Lambda::Function":
                handler = str(props.get("Handler", ""))
                arn = n.function_arns.get(handler.rsplit(".", 2)[-2] if "." in handler else "")
                if arn:
                    self.refs[logical_id] = arn.rsplit(":", 1)[-1]
                    self.attrs[(logical_id, "Arn")] = arn
            elif kind == "AWS::StepFunctions::StateMachine":
                self.refs[logical_id] = n.state_machine_arn
                self.attrs[(logical_id, "Name")] = n.state_machine_arn.rsplit(":", 1)[-1]
            elif kind == "AWS::Scheduler::ScheduleGroup":
                name = str(self(props["Name"]))
                self.refs[logical_id] = name
                self.attrs[(logical_id, "Arn")] = (
                    f"arn:{n.partition}:scheduler:{n.region}:{n.account}:schedule-group/{name}"
                )
            elif kind == "AWS::SNS::Topic":  # Ref gives a topic's ARN
                self.refs[logical_id] = n.alert_topic_arn or (
                    f"arn:{n.partition}:sns:{n.region}:{n.account}:{logical_id}"
                )
            elif kind == "AWS::SQS::Queue":  # the sandbox makes none: named by its logical id
                self.attrs[(logical_id, "Arn")] = (
                    f"arn:{n.partition}:sqs:{n.region}:{n.account}:{logical_id}"
                )
            elif kind == "AWS::KMS::Key":  # the export key is bound to the sandbox's below
                self.attrs[(logical_id, "Arn")] = (
                    f"arn:{n.partition}:kms:{n.region}:{n.account}:key/{logical_id}"
                )
            elif kind == "AWS::Logs::LogGroup":
                name = str(self(props.get("LogGroupName", logical_id)))
                self.refs[logical_id] = name
                self.attrs[(logical_id, "Arn")] = (
                    f"arn:{n.partition}:logs:{n.region}:{n.account}:log-group:{name}:*"
                )
            elif kind == "AWS::IAM::Role":
                # the name IAM gives it: RoleName, or (in the sandbox) its logical id
                name = str(self(props.get("RoleName", logical_id)))
                self.refs[logical_id] = name
                self.attrs[(logical_id, "Arn")] = self.role_arn(name)
        # A bucket with a fixed name (the data stack's, cross-account delivery): the export
        # bucket when its name is the sandbox's, and then the key it encrypts with is the
        # export key.
        for logical_id, resource in self.resources.items():
            props = resource.get("Properties", {})
            if resource["Type"] != "AWS::S3::Bucket" or "BucketName" not in props:
                continue
            name = str(self(props["BucketName"]))
            self.refs[logical_id] = name
            self.attrs[(logical_id, "Arn")] = f"arn:{n.partition}:s3:::{name}"
            if name != n.bucket:
                continue
            for rule in props.get("BucketEncryption", {}).get(
                "ServerSideEncryptionConfiguration", []
            ):
                key = rule.get("ServerSideEncryptionByDefault", {}).get("KMSMasterKeyID")
                if key is not None:
                    self._bind(key, n.key_arn, n.key_arn)
        # The export bucket, key and role are the ones the start-export function is given.
        for resource in self.resources.values():
            env = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
            if "EXPORT_ROLE_ARN" in env:
                self._bind(env["EXPORT_BUCKET"], n.bucket, f"arn:{n.partition}:s3:::{n.bucket}")
                self._bind(env["EXPORT_KMS_KEY_ARN"], n.key_arn, n.key_arn)
                self._bind(env["EXPORT_ROLE_ARN"], n.export_role_arn, n.export_role_arn)

    def role_arn(self, name: str) -> str:
        n = self.names
        return f"arn:{n.partition}:iam::{n.account}:role/{name}"

    def _bind(self, value: Any, ref: str, arn: str) -> None:
        if isinstance(value, Mapping) and "Ref" in value:
            self.refs[value["Ref"]] = ref
            self.attrs[(value["Ref"], "Arn")] = arn
        elif isinstance(value, Mapping) and "Fn::GetAtt" in value:
            logical_id = value["Fn::GetAtt"][0]
            self.refs[logical_id] = ref
            self.attrs[(logical_id, "Arn")] = arn
        # a literal (imported bucket or key): Names.literals maps it

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._literal(value)
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, Mapping):
            return value
        if "Ref" in value:
            return self.refs.get(value["Ref"], f"unresolved-ref-{value['Ref']}")
        if "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            return self.attrs.get(
                (logical_id, attribute),
                f"arn:{self.names.partition}:unresolved:::{logical_id}.{attribute}",
            )
        if "Fn::Join" in value:
            delimiter, items = value["Fn::Join"]
            return str(delimiter).join(str(self(item)) for item in items)
        if "Fn::Sub" in value:
            body = value["Fn::Sub"]
            text, variables = (body, {}) if isinstance(body, str) else (body[0], body[1])
            for name, replacement in variables.items():
                text = text.replace(f"${{{name}}}", str(self(replacement)))
            for name in list(self.refs):
                text = text.replace(f"${{{name}}}", self.refs[name])
            for (logical_id, attribute), resolved in self.attrs.items():
                text = text.replace(f"${{{logical_id}.{attribute}}}", resolved)
            return self._literal(text)
        return {k: self(v) for k, v in value.items()}

    def _literal(self, text: str) -> str:
        for literal, value in self.names.literals.items():
            text = text.replace(literal, value)
        return text


@dataclass
class Policies:
    """Each principal's identity policies, each role's trust policy, and the resource policies
    of the bucket and key."""

    principal_arns: dict[str, str]  # principal -> role ARN
    identity: dict[str, list[dict[str, Any]]]  # principal -> [{name, policy}]
    resource: dict[str, dict[str, Any]]  # ARN of the bucket or key -> its policy
    trust: dict[str, dict[str, Any]]  # role ARN -> its trust policy
    names: Names
    template: Mapping[str, Any] = field(repr=False)
    # ARN of a bucket or key in another account -> that account (cross-account delivery);
    # every other resource is in `names.account`
    resource_accounts: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_template(cls, template: Mapping[str, Any], names: Names) -> Policies:
        resolve = Resolver(template, names)
        resources: Mapping[str, Any] = template["Resources"]
        role_of = _principals_of_roles(resources)
        identity: dict[str, list[dict[str, Any]]] = {p: [] for p in role_of.values()}
        for logical_id, resource in resources.items():
            if resource["Type"] != "AWS::IAM::Policy":
                continue
            for role in resource["Properties"].get("Roles", []):
                principal = role_of.get(role.get("Ref", ""))
                if principal is not None:
                    identity[principal].append(
                        {
                            "name": logical_id,
                            "policy": resolve(resource["Properties"]["PolicyDocument"]),
                        }
                    )
        resource_policies: dict[str, dict[str, Any]] = {}
        trust: dict[str, dict[str, Any]] = {}
        for logical_id, resource in resources.items():
            props = resource.get("Properties", {})
            if resource["Type"] == "AWS::S3::BucketPolicy":
                bucket = resolve(props["Bucket"])
                if bucket == names.bucket:
                    resource_policies[f"arn:{names.partition}:s3:::{bucket}"] = resolve(
                        props["PolicyDocument"]
                    )
            elif resource["Type"] == "AWS::KMS::Key":
                arn = resolve({"Fn::GetAtt": [logical_id, "Arn"]})
                resource_policies[arn] = resolve(props["KeyPolicy"])
            elif resource["Type"] == "AWS::IAM::Role":
                arn = resolve({"Fn::GetAtt": [logical_id, "Arn"]})
                trust[arn] = resolve(props["AssumeRolePolicyDocument"])
        arns = {
            principal: resolve({"Fn::GetAtt": [logical_id, "Arn"]})
            for logical_id, principal in role_of.items()
        }
        return cls(arns, identity, resource_policies, trust, names, template)

    @classmethod
    def cross_account(cls, pipeline: Policies, data: Policies) -> Policies:
        """Cross-account delivery: the identity and trust policies of both accounts' roles,
        the bucket policy and the key policy from the data account's template only (its
        bucket and key), each resource of the data account marked as such, so that the
        evaluator applies the cross-account rule: a request of a pipeline role on them is
        allowed only when its IAM policy and the resource's policy both allow it
        (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html)."""
        bucket = f"arn:{data.names.partition}:s3:::{data.names.bucket}"
        owned = dict.fromkeys((bucket, data.names.key_arn), data.names.account)
        return cls(
            {**pipeline.principal_arns, **data.principal_arns},
            {**pipeline.identity, **data.identity},
            {
                **{k: v for k, v in pipeline.resource.items() if k not in owned},
                **{k: v for k, v in data.resource.items() if k in owned},
            },
            {**pipeline.trust, **data.trust},
            pipeline.names,
            pipeline.template,
            owned,
        )

    def resource_account(self, request: Request) -> str:
        """The account that owns the request's resource."""
        resource = request.resource
        if request.action.startswith("s3:"):
            resource = (
                f"arn:{self.names.partition}:s3:::" + resource.split(":::", 1)[-1].split("/", 1)[0]
            )
        return self.resource_accounts.get(resource, self.names.account)

    def without_resource_statement(self, sid: str) -> Policies:
        """A copy whose bucket and key policies lack the statement `sid` (for tests)."""
        resource = copy.deepcopy(self.resource)
        found = False
        for policy in resource.values():
            kept = [s for s in policy.get("Statement", []) if s.get("Sid") != sid]
            found |= len(kept) != len(policy.get("Statement", []))
            policy["Statement"] = kept
        if not found:
            raise KeyError(f"no resource policy statement {sid}")
        return self.replace(resource=resource)

    def replace(self, **changes: Any) -> Policies:
        """A deep copy with some fields replaced (for tests that mutate a policy)."""
        copied = copy.deepcopy(self)
        for name, value in changes.items():
            setattr(copied, name, copy.deepcopy(value))
        return copied

    def drop_statement(self, principal: str, action: str) -> Policies:
        """A copy in which no statement of `principal` allows `action` any more (for tests):
        the action leaves its statements, and a statement left with no action goes too (CDK
        may have merged statements that share their resources)."""
        identity = copy.deepcopy(self.identity)
        for entry in identity[principal]:
            kept = []
            for statement in entry["policy"]["Statement"]:
                actions = [a for a in _as_list(statement.get("Action", [])) if a != action]
                if actions:
                    kept.append({**statement, "Action": actions})
            entry["policy"]["Statement"] = kept
        return self.replace(identity=identity)

    # --- trust ------------------------------------------------------------------------------
    def assume_role_requests(self, principals: Iterable[str]) -> list[Request]:
        """For every principal that acted, the sts:AssumeRole its service made to act as it,
        with the context keys AWS documents for that service (`SERVICE_TRUST`)."""
        found = []
        for principal in sorted(set(principals)):
            if principal not in self.principal_arns or principal == SNOWFLAKE_ROLE:
                continue  # not a role of the template; Snowflake's: `snowflake_assume_role`
            trust = trust_of(principal)
            for context in trust.context(self.names, self.template):
                found.append(
                    Request(
                        f"{SERVICE}{trust.service}",
                        f"sts:AssumeRole as {principal}",
                        "sts:AssumeRole",
                        self.principal_arns[principal],
                        freeze_context(context),
                    )
                )
        return found

    def snowflake_assume_role(self, user_arn: str, external_id: str | None) -> Request:
        """Snowflake's IAM user assuming the Snowflake role; Snowflake passes the
        integration's external id as sts:ExternalId:
        https://docs.snowflake.com/en/user-guide/data-load-s3-config-storage-integration"""
        context = {"sts:ExternalId": external_id} if external_id is not None else {}
        return Request(
            f"{USER}{user_arn}",
            "sts:AssumeRole as the Snowflake role",
            "sts:AssumeRole",
            self.principal_arns[SNOWFLAKE_ROLE],
            freeze_context(context),
        )

    # --- the key ----------------------------------------------------------------------------
    def key_grants(self) -> dict[str, list[dict[str, Any]]]:
        """principal -> the Allow statements of its identity policies that name the export key
        (what an imported key's policy must grant each role that uses it)."""
        found: dict[str, list[dict[str, Any]]] = {}
        for principal, entries in self.identity.items():
            for entry in entries:
                for statement in entry["policy"].get("Statement", []):
                    if statement.get("Effect") != "Allow":
                        continue
                    if self.names.key_arn in _as_list(statement.get("Resource", [])):
                        found.setdefault(principal, []).append(statement)
        return found

    def key_policy_naming_each_role(self, without: Iterable[str] = ()) -> dict[str, Any]:
        """A key policy without the root delegation: one statement per role that uses the key,
        naming the role, with the actions and conditions its IAM policy has on the key (what
        docs/deploy.md tells the owner of an imported key to allow). `without`: principals
        left out (for tests)."""
        skipped = set(without)
        statements = []
        for principal, grants in sorted(self.key_grants().items()):
            if principal in skipped:
                continue
            for grant in grants:
                statement = {
                    "Effect": "Allow",
                    "Principal": {"AWS": self.principal_arns[principal]},
                    "Action": grant["Action"],
                    "Resource": "*",
                }
                if "Condition" in grant:
                    statement["Condition"] = grant["Condition"]
                statements.append(statement)
        return {"Version": "2012-10-17", "Statement": statements}

    def with_key_policy(self, policy: Mapping[str, Any]) -> Policies:
        return self.replace(resource={**self.resource, self.names.key_arn: dict(policy)})


def _principals_of_roles(resources: Mapping[str, Any]) -> dict[str, str]:
    """role logical id -> principal (`function:<module>`, the state machine, the scheduler, the
    export role, the Snowflake role)."""
    role_of: dict[str, str] = {}
    for logical_id, resource in resources.items():
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::Lambda::Function":
            handler = str(props.get("Handler", ""))
            if not handler.startswith(PIPELINE_HANDLERS):
                continue  # a CDK helper run by CloudFormation at deploy time, not the pipeline
            module = handler.rsplit(".", 2)[-2]
            role_of[props["Role"]["Fn::GetAtt"][0]] = function_principal(module)
            env = props.get("Environment", {}).get("Variables", {})
            export_role = env.get("EXPORT_ROLE_ARN")
            # the export role is the one the start-export function passes, whatever it trusts
            if isinstance(export_role, Mapping) and "Fn::GetAtt" in export_role:
                role_of[export_role["Fn::GetAtt"][0]] = EXPORT_ROLE
        elif kind == "AWS::StepFunctions::StateMachine":
            role_of[props["RoleArn"]["Fn::GetAtt"][0]] = STATE_MACHINE
        elif kind == "AWS::Scheduler::Schedule":
            role_of[props["Target"]["RoleArn"]["Fn::GetAtt"][0]] = SCHEDULER
        elif kind == "AWS::IAM::Role" and _trusts_an_account_principal(props):
            role_of[logical_id] = SNOWFLAKE_ROLE
    return role_of


def _trusts_an_account_principal(role_props: Mapping[str, Any]) -> bool:
    statements = role_props.get("AssumeRolePolicyDocument", {}).get("Statement", [])
    return any("AWS" in statement.get("Principal", {}) for statement in statements)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- evaluation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    request: Request
    result: str  # Allowed, ImplicitlyDenied, ExplicitlyDenied, Error
    detail: str = ""

    @property
    def allowed(self) -> bool:
        return self.result == "Allowed"


def node_available() -> bool:
    return shutil.which("node") is not None and (ROOT / "node_modules" / "@cloud-copilot").is_dir()


Caller = tuple[str, list[dict[str, Any]], dict[str, str]]


def _caller(request: Request, policies: Policies) -> Caller:
    """(principal as the evaluator names it, its identity policies, its principal keys)."""
    if request.principal.startswith(SERVICE):
        return request.principal.removeprefix(SERVICE), [], {}
    if request.principal.startswith(USER):
        arn = request.principal.removeprefix(USER)
        account = arn.split(":")[4]
        return arn, [_SNOWFLAKE_SIDE], {"aws:PrincipalArn": arn, "aws:PrincipalAccount": account}
    if request.principal not in policies.identity:
        raise KeyError(f"no role in the template for principal {request.principal}")
    arn = policies.principal_arns[request.principal]
    # the role's own account (the data account's Snowflake role, cross-account delivery)
    keys = {"aws:PrincipalArn": arn, "aws:PrincipalAccount": arn.split(":")[4]}
    return arn, policies.identity[request.principal], keys


def evaluate(requests: Iterable[Request], policies: Policies) -> list[Decision]:
    """Every distinct request, evaluated by iam-simulate in one Node process."""
    return [d for _, d in evaluate_each([(list(dict.fromkeys(requests)), policies)])]


def evaluate_each(
    batches: Iterable[tuple[Iterable[Request], Policies]],
) -> list[tuple[int, Decision]]:
    """(index of the batch, decision) of every distinct request of each batch, each against its
    batch's policies, all in one Node process (one process start instead of one a batch)."""
    unique = [
        (index, request, policies)
        for index, (requests, policies) in enumerate(batches)
        for request in dict.fromkeys(requests)
    ]
    batch = []
    for _, request, policies in unique:
        principal, identity, keys = _caller(request, policies)
        batch.append(
            {
                "principal": principal,
                "action": request.action,
                "resource": request.resource,
                "accountId": policies.resource_account(request),
                "context": {
                    **keys,
                    "aws:RequestedRegion": policies.names.region,
                    # S3 sends the bucket owner's account with every bucket and object request
                    # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html
                    **(
                        {"s3:ResourceAccount": policies.resource_account(request)}
                        if request.action.startswith("s3:")
                        else {}
                    ),
                    **request.context_dict(),
                },
                "identityPolicies": identity,
                "resourcePolicy": _resource_policy(request, policies),
            }
        )
    if not batch:
        return []
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not installed: the IAM replay needs Node.js (make setup)")
    completed = subprocess.run(  # noqa: S603  # nosec B603
        [node, str(SIMULATOR)],
        input=json.dumps(batch),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{SIMULATOR.name} failed: {completed.stderr.strip()}")
    results = json.loads(completed.stdout)
    decisions = []
    for (index, request, _), result in zip(unique, results, strict=True):
        detail = json.dumps(result.get("errors")) if result["result"] == "Error" else ""
        ignored = result.get("ignoredContextKeys") or []
        if ignored:
            detail = f"context keys ignored by the evaluator: {ignored}"
        decisions.append((index, Decision(request, result["result"], detail)))
    return decisions


def _resource_policy(request: Request, policies: Policies) -> dict[str, Any] | None:
    if request.action == "sts:AssumeRole":
        return policies.trust.get(request.resource)
    if request.action.startswith("s3:"):
        bucket = request.resource.split(":::", 1)[-1].split("/", 1)[0]
        return policies.resource.get(f"arn:{policies.names.partition}:s3:::{bucket}")
    if request.action.startswith("kms:"):
        return policies.resource.get(request.resource)
    return None


def granted_actions(policies: Policies) -> dict[str, set[str]]:
    """principal -> every action (as written, wildcards kept) an Allow statement grants."""
    found: dict[str, set[str]] = {}
    for principal, entries in policies.identity.items():
        for entry in entries:
            for statement in entry["policy"].get("Statement", []):
                if statement.get("Effect") == "Allow":
                    found.setdefault(principal, set()).update(_as_list(statement["Action"]))
    return found


def unused_grants(policies: Policies, requests: Iterable[Request]) -> list[tuple[str, str]]:
    """(principal, granted action as written) of every grant no request used."""
    used: dict[str, set[str]] = {}
    for request in requests:
        used.setdefault(request.principal, set()).add(request.action.lower())
    return sorted(
        (principal, action)
        for principal, actions in granted_actions(policies).items()
        for action in actions
        if not any(fnmatch.fnmatchcase(a, action.lower()) for a in used.get(principal, ()))
    )
