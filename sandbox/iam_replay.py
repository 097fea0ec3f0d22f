"""IAM replay: every AWS request the pipeline makes in the sandbox, checked against the stack's
own IAM policies by a real policy evaluator.

1. Record. `Recorder` hooks botocore's `provide-client-params` event on the default session
   (the one `rds_s3_export.aws.client` makes its clients from). Each call made while a principal
   is set in the `PRINCIPAL` context variable is turned into the IAM requests AWS authorizes for
   it, through `OPERATIONS`: action, resource ARN(s) as the Service Authorization Reference
   defines them for that action, and the condition keys the request carries. The principal is
   set by `sandbox.seams` around each handler (`function:<module>`) and by the RDS simulation
   around the files it writes in RDS's name (`export-role`). The state machine's invocations
   and the scheduler's starts are derived from the executions (`state_machine_requests`,
   `scheduler_requests`). A call missing from `OPERATIONS` fails loudly.
2. Evaluate. `Policies.from_template` resolves the synthesised template's intrinsic functions to
   the sandbox's concrete names and ARNs and collects each role's identity policies (plus the
   bucket policy and the key policy as resource policies); `evaluate` hands every request to
   `@cloud-copilot/iam-simulate` (pinned in package.json, run by sandbox/iam_simulate.mjs, one
   Node process per batch).
3. Unused grants: `unused_grants` lists, per role, every allowed action that no request used.

What this proves and what still needs an account: docs/sandbox.md, "IAM replay".
"""

from __future__ import annotations

import contextvars
import fnmatch
import json
import shutil
import subprocess  # nosec B404
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parent.parent
SIMULATOR = Path(__file__).resolve().parent / "iam_simulate.mjs"

# Who is making the current call: `function:<module>`, `export-role`; None: not recorded (the
# sandbox's own set-up and inspection calls).
PRINCIPAL: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "iam_replay_principal", default=None
)
EXPORT_ROLE = "export-role"
STATE_MACHINE = "state-machine"
SCHEDULER = "scheduler"


def function_principal(module: str) -> str:
    return f"function:{module}"


@contextmanager
def acting_as(principal: str) -> Iterator[None]:
    """Calls made inside the block are `principal`'s requests."""
    token = PRINCIPAL.set(principal)
    try:
        yield
    finally:
        PRINCIPAL.reset(token)


class UnmappedOperation(RuntimeError):
    """The pipeline made a call that `OPERATIONS` does not map to IAM requests."""


@dataclass(frozen=True)
class Env:
    """The sandbox's account, region and the export bucket and key (their default encryption
    decides which KMS requests S3 makes on the caller's behalf)."""

    account: str
    region: str
    bucket: str
    key_arn: str
    partition: str = "aws"


@dataclass(frozen=True)
class Request:
    """One IAM authorization: who, which action, on which resource, with which context keys."""

    principal: str
    operation: str  # the API call it came from, `s3:DeleteObjects`; or what derived it
    action: str
    resource: str
    context: tuple[tuple[str, str | tuple[str, ...]], ...] = ()

    def context_dict(self) -> dict[str, str | list[str]]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.context}

    def describe(self) -> str:
        extra = f" with {self.context_dict()}" if self.context else ""
        return f"{self.principal}: {self.action} on {self.resource}{extra} (from {self.operation})"


Access = tuple[str, str, Mapping[str, str | list[str]]]  # action, resource, context keys
Mapper = Callable[[Mapping[str, Any], Env], list[Access]]


def _ctx(**values: Any) -> dict[str, Any]:
    return {k.replace("__", ":"): v for k, v in values.items() if v is not None}


# --- S3 --------------------------------------------------------------------------------------
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html
# Objects are `arn:aws:s3:::<bucket>/<key>`, buckets `arn:aws:s3:::<bucket>`. Requests over TLS
# (botocore's default): aws:SecureTransport and s3:TlsVersion are what the bucket policy checks.
# SSE-KMS by bucket default: S3 calls KMS with the caller's permissions (kms:ViaService s3) -
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#require-sse-kms
def _s3_base() -> dict[str, Any]:
    return {"aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}


def _bucket_arn(env: Env, bucket: str) -> str:
    return f"arn:{env.partition}:s3:::{bucket}"


def _object_arn(env: Env, bucket: str, key: str) -> str:
    return f"arn:{env.partition}:s3:::{bucket}/{key}"


def _via_s3(env: Env, action: str, bucket: str) -> list[Access]:
    """The KMS request S3 makes for the caller on a bucket encrypted with the export key."""
    if bucket != env.bucket:
        return []
    return [
        (
            action,
            env.key_arn,
            {
                "kms:ViaService": f"s3.{env.region}.amazonaws.com",
                "kms:CallerAccount": env.account,
            },
        )
    ]


def _s3_list_objects(p: Mapping[str, Any], env: Env) -> list[Access]:
    # ListObjectsV2 is authorized as s3:ListBucket on the bucket, with s3:prefix etc.
    context = {
        **_s3_base(),
        **_ctx(
            s3__prefix=p.get("Prefix"),
            s3__delimiter=p.get("Delimiter"),
            s3__max_keys=str(p["MaxKeys"]) if "MaxKeys" in p else None,
        ),
    }
    context = {k.replace("max_keys", "max-keys"): v for k, v in context.items()}
    return [("s3:ListBucket", _bucket_arn(env, p["Bucket"]), context)]


def _s3_get_object(p: Mapping[str, Any], env: Env) -> list[Access]:
    return [
        ("s3:GetObject", _object_arn(env, p["Bucket"], p["Key"]), _s3_base()),
        *_via_s3(env, "kms:Decrypt", p["Bucket"]),
    ]


def _s3_head_object(p: Mapping[str, Any], env: Env) -> list[Access]:
    # HeadObject is authorized as s3:GetObject (it decrypts nothing: no KMS request)
    return [("s3:GetObject", _object_arn(env, p["Bucket"], p["Key"]), _s3_base())]


def _s3_delete_objects(p: Mapping[str, Any], env: Env) -> list[Access]:
    # DeleteObjects is authorized as s3:DeleteObject on every key it names
    return [
        ("s3:DeleteObject", _object_arn(env, p["Bucket"], item["Key"]), _s3_base())
        for item in p["Delete"]["Objects"]
    ]


def _s3_delete_object(p: Mapping[str, Any], env: Env) -> list[Access]:
    return [("s3:DeleteObject", _object_arn(env, p["Bucket"], p["Key"]), _s3_base())]


def _s3_put_object(p: Mapping[str, Any], env: Env) -> list[Access]:
    context = {
        **_s3_base(),
        **_ctx(
            s3__x_amz_server_side_encryption=p.get("ServerSideEncryption"),
            s3__x_amz_server_side_encryption_aws_kms_key_id=p.get("SSEKMSKeyId"),
        ),
    }
    context = {k.replace("_", "-") if k.startswith("s3:x") else k: v for k, v in context.items()}
    return [
        ("s3:PutObject", _object_arn(env, p["Bucket"], p["Key"]), context),
        *_via_s3(env, "kms:GenerateDataKey", p["Bucket"]),
    ]


def _s3_bucket(action: str) -> Mapper:
    return lambda p, env: [(action, _bucket_arn(env, p["Bucket"]), _s3_base())]


# --- RDS -------------------------------------------------------------------------------------
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html
# db `arn:aws:rds:<region>:<account>:db:<id>`, cluster `...:cluster:<id>`, snapshot
# `...:snapshot:<id>`, cluster-snapshot `...:cluster-snapshot:<id>`. Identifiers are stored
# in lower case.
def _rds_arn(env: Env, kind: str, ident: str) -> str:
    if ident.startswith("arn:"):
        return ident
    return f"arn:{env.partition}:rds:{env.region}:{env.account}:{kind}:{ident.lower()}"


def _tag_context(tags: Iterable[Mapping[str, str]]) -> dict[str, Any]:
    tags = list(tags)
    if not tags:
        return {}
    context: dict[str, Any] = {f"aws:RequestTag/{t['Key']}": t["Value"] for t in tags}
    context["aws:TagKeys"] = [t["Key"] for t in tags]
    return context


def _rds_describe(kind: str, filters: Mapping[str, str]) -> Mapper:
    """Describe calls: authorized against each resource the call names (by identifier), or
    against `*` when it names none."""

    def mapper(p: Mapping[str, Any], env: Env) -> list[Access]:
        found: list[Access] = [
            (f"rds:{kind}", _rds_arn(env, resource_type, p[param]), {})
            for param, resource_type in filters.items()
            if p.get(param)
        ]
        return found or [(f"rds:{kind}", "*", {})]

    return mapper


def _rds_create_snapshot(action: str, source: tuple[str, str], target: tuple[str, str]) -> Mapper:
    def mapper(p: Mapping[str, Any], env: Env) -> list[Access]:
        snapshot = _rds_arn(env, target[1], p[target[0]])
        tags = _tag_context(p.get("Tags", []))
        found: list[Access] = [
            (action, _rds_arn(env, source[1], p[source[0]]), tags),
            (action, snapshot, tags),
        ]
        if tags:
            # Tags on create are authorized again as rds:AddTagsToResource on the new resource:
            # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/security_iam_id-based-policy-examples-grant-permissions-tags-on-create.html
            found.append(("rds:AddTagsToResource", snapshot, tags))
        return found

    return mapper


def _snapshot_tags(kind: str, ident: str) -> dict[str, str]:
    """The tags RDS holds on a snapshot (read from moto's backend, not through a client: a
    client call here would itself be recorded)."""
    from moto.rds.models import rds_backends  # noqa: PLC0415 - only needed while recording

    from sandbox.runtime import ACCOUNT, REGION  # noqa: PLC0415 - avoids an import cycle

    backend = rds_backends[ACCOUNT][REGION]
    table = backend.cluster_snapshots if kind == "cluster-snapshot" else backend.database_snapshots
    snapshot = table.get(ident) or table.get(ident.lower())
    tags = getattr(snapshot, "tags", None) or []
    return {t["Key"]: t["Value"] for t in tags}


def _rds_delete_snapshot(action: str, param: str, kind: str) -> Mapper:
    def mapper(p: Mapping[str, Any], env: Env) -> list[Access]:
        tags = _snapshot_tags(kind, p[param])
        context = {f"aws:ResourceTag/{k}": v for k, v in tags.items()}
        return [(action, _rds_arn(env, kind, p[param]), context)]

    return mapper


def _rds_start_export(p: Mapping[str, Any], env: Env) -> list[Access]:
    # Authorized against the exported snapshot (or cluster) ARN. RDS then, with the caller's
    # permissions, passes the export role and creates a grant on the key:
    # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.html
    # iam:PassedToService is left out: AWS does not document the value RDS sends for it.
    via_rds = {
        "kms:ViaService": f"rds.{env.region}.amazonaws.com",
        "kms:CallerAccount": env.account,
    }
    return [
        ("rds:StartExportTask", p["SourceArn"], {}),
        ("iam:PassRole", p["IamRoleArn"], {}),
        ("kms:DescribeKey", p["KmsKeyId"], via_rds),
        ("kms:CreateGrant", p["KmsKeyId"], {**via_rds, "kms:GrantIsForAWSResource": "true"}),
    ]


def _rds_describe_export_tasks(p: Mapping[str, Any], env: Env) -> list[Access]:
    # Export tasks have no resource type: a call by identifier (or unfiltered) is `*`; one
    # filtered by SourceArn is authorized against that snapshot or cluster.
    return [("rds:DescribeExportTasks", p.get("SourceArn") or "*", {})]


def _rds_tags(action: str) -> Mapper:
    return lambda p, env: [(action, p["ResourceName"], _tag_context(p.get("Tags", [])))]


# --- Step Functions --------------------------------------------------------------------------
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsstepfunctions.html
def _states(action: str, param: str) -> Mapper:
    return lambda p, env: [(action, p[param], {})]


# --- KMS -------------------------------------------------------------------------------------
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_awskeymanagementservice.html
def _kms(action: str) -> Mapper:
    return lambda p, env: [(action, p["KeyId"], {"kms:CallerAccount": env.account})]


# --- EventBridge -----------------------------------------------------------------------------
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoneventbridge.html
def _put_events(p: Mapping[str, Any], env: Env) -> list[Access]:
    found: list[Access] = []
    for entry in p["Entries"]:
        bus = entry.get("EventBusName") or "default"
        arn = (
            bus
            if bus.startswith("arn:")
            else f"arn:{env.partition}:events:{env.region}:{env.account}:event-bus/{bus}"
        )
        context = _ctx(events__source=entry.get("Source"))
        if entry.get("DetailType"):
            context["events:detail-type"] = entry["DetailType"]
        found.append(("events:PutEvents", arn, context))
    return found


# --- AWS Backup ------------------------------------------------------------------------------
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsbackup.html
# ListRecoveryPointsByBackupVault is authorized against the vault:
# `arn:<partition>:backup:<region>:<account>:backup-vault:<name>`.
def _backup_list_recovery_points(p: Mapping[str, Any], env: Env) -> list[Access]:
    vault = f"arn:{env.partition}:backup:{env.region}:{env.account}:backup-vault:"
    return [("backup:ListRecoveryPointsByBackupVault", vault + p["BackupVaultName"], {})]


def _no_authorization(p: Mapping[str, Any], env: Env) -> list[Access]:
    return []


# (botocore service name, operation) -> the IAM requests AWS authorizes for that call.
OPERATIONS: dict[tuple[str, str], Mapper] = {
    ("s3", "ListObjectsV2"): _s3_list_objects,
    ("s3", "ListObjects"): _s3_list_objects,
    ("s3", "GetObject"): _s3_get_object,
    ("s3", "HeadObject"): _s3_head_object,
    ("s3", "PutObject"): _s3_put_object,
    ("s3", "DeleteObject"): _s3_delete_object,
    ("s3", "DeleteObjects"): _s3_delete_objects,
    ("s3", "HeadBucket"): _s3_bucket("s3:ListBucket"),
    ("s3", "GetBucketLocation"): _s3_bucket("s3:GetBucketLocation"),
    ("rds", "DescribeDBInstances"): _rds_describe(
        "DescribeDBInstances", {"DBInstanceIdentifier": "db"}
    ),
    ("rds", "DescribeDBClusters"): _rds_describe(
        "DescribeDBClusters", {"DBClusterIdentifier": "cluster"}
    ),
    ("rds", "DescribeDBSnapshots"): _rds_describe(
        "DescribeDBSnapshots", {"DBInstanceIdentifier": "db", "DBSnapshotIdentifier": "snapshot"}
    ),
    ("rds", "DescribeDBClusterSnapshots"): _rds_describe(
        "DescribeDBClusterSnapshots",
        {"DBClusterIdentifier": "cluster", "DBClusterSnapshotIdentifier": "cluster-snapshot"},
    ),
    ("rds", "CreateDBSnapshot"): _rds_create_snapshot(
        "rds:CreateDBSnapshot", ("DBInstanceIdentifier", "db"), ("DBSnapshotIdentifier", "snapshot")
    ),
    ("rds", "CreateDBClusterSnapshot"): _rds_create_snapshot(
        "rds:CreateDBClusterSnapshot",
        ("DBClusterIdentifier", "cluster"),
        ("DBClusterSnapshotIdentifier", "cluster-snapshot"),
    ),
    ("rds", "DeleteDBSnapshot"): _rds_delete_snapshot(
        "rds:DeleteDBSnapshot", "DBSnapshotIdentifier", "snapshot"
    ),
    ("rds", "DeleteDBClusterSnapshot"): _rds_delete_snapshot(
        "rds:DeleteDBClusterSnapshot", "DBClusterSnapshotIdentifier", "cluster-snapshot"
    ),
    ("rds", "AddTagsToResource"): _rds_tags("rds:AddTagsToResource"),
    ("rds", "ListTagsForResource"): _rds_tags("rds:ListTagsForResource"),
    ("rds", "StartExportTask"): _rds_start_export,
    ("rds", "DescribeExportTasks"): _rds_describe_export_tasks,
    ("states", "ListExecutions"): _states("states:ListExecutions", "stateMachineArn"),
    ("states", "DescribeExecution"): _states("states:DescribeExecution", "executionArn"),
    ("kms", "DescribeKey"): _kms("kms:DescribeKey"),
    ("kms", "Decrypt"): _kms("kms:Decrypt"),
    ("kms", "GenerateDataKey"): _kms("kms:GenerateDataKey"),
    ("events", "PutEvents"): _put_events,
    ("backup", "ListRecoveryPointsByBackupVault"): _backup_list_recovery_points,
    # https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html
    # "No permissions are required to perform this operation."
    ("sts", "GetCallerIdentity"): _no_authorization,
}


def requests_for(
    principal: str, service: str, operation: str, params: Mapping[str, Any], env: Env
) -> list[Request]:
    """The IAM requests one API call makes (raises UnmappedOperation for an unknown call)."""
    mapper = OPERATIONS.get((service, operation))
    if mapper is None:
        raise UnmappedOperation(
            f"{principal} called {service}:{operation}, which sandbox/iam_replay.py OPERATIONS "
            "does not map to IAM actions: add it (action, resource ARN, condition keys) with "
            "its Service Authorization Reference page"
        )
    return [
        Request(principal, f"{service}:{operation}", action, resource, _freeze(context))
        for action, resource, context in mapper(params, env)
    ]


def _freeze(context: Mapping[str, Any]) -> tuple[tuple[str, str | tuple[str, ...]], ...]:
    return tuple(
        sorted((k, tuple(v) if isinstance(v, list | tuple) else str(v)) for k, v in context.items())
    )


# --- recording -------------------------------------------------------------------------------


@dataclass
class Recorder:
    """Collects the requests of calls made while `PRINCIPAL` is set (see the module docstring).

    Install before the handlers' clients are made (`Sandbox(recorder=...)` does)."""

    env: Env
    requests: list[Request] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _on_call(self, params: Mapping[str, Any], model: Any, **_: Any) -> None:
        principal = PRINCIPAL.get()
        if principal is None:
            return
        service = model.service_model.endpoint_prefix
        try:
            found = requests_for(principal, service, model.name, params, self.env)
        except UnmappedOperation as err:
            with self._lock:
                self.errors.append(str(err))
            raise
        with self._lock:
            self.requests.extend(found)

    def add(self, requests: Iterable[Request]) -> None:
        with self._lock:
            self.requests.extend(requests)

    @contextmanager
    def installed(self) -> Iterator[Recorder]:
        session = boto3._get_default_session()  # what `boto3.client` uses
        events = session._session.get_component("event_emitter")
        events.register("provide-client-params.*.*", self._on_call, unique_id=id(self))
        try:
            yield self
        finally:
            events.unregister("provide-client-params.*.*", unique_id=id(self))


def state_machine_requests(history: Iterable[Mapping[str, Any]]) -> list[Request]:
    """lambda:InvokeFunction for every Task the execution history shows scheduled.
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_awslambda.html"""
    found = []
    for event in history:
        if event.get("type") != "TaskScheduled":
            continue
        details = event["taskScheduledEventDetails"]
        parameters = json.loads(details.get("parameters") or "{}")
        function = parameters.get("FunctionName")
        if not function:
            raise UnmappedOperation(f"a Task without FunctionName: {details}")
        found.append(
            Request(STATE_MACHINE, "states:TaskScheduled", "lambda:InvokeFunction", function)
        )
    return found


def scheduler_requests(state_machine_arn: str) -> list[Request]:
    """The scheduler's start of one execution.
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsstepfunctions.html"""
    return [Request(SCHEDULER, "scheduler:Schedule", "states:StartExecution", state_machine_arn)]


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
                module = str(props.get("Handler", "")).rsplit(".", 2)[-2]
                arn = n.function_arns.get(module)
                if arn:
                    self.refs[logical_id] = arn.rsplit(":", 1)[-1]
                    self.attrs[(logical_id, "Arn")] = arn
            elif kind == "AWS::StepFunctions::StateMachine":
                self.refs[logical_id] = n.state_machine_arn
                self.attrs[(logical_id, "Name")] = n.state_machine_arn.rsplit(":", 1)[-1]
        # The export bucket, key and role are the ones the start-export function is given.
        for resource in self.resources.values():
            env = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
            if "EXPORT_ROLE_ARN" in env:
                self._bind(env["EXPORT_BUCKET"], n.bucket, f"arn:{n.partition}:s3:::{n.bucket}")
                self._bind(env["EXPORT_KMS_KEY_ARN"], n.key_arn, n.key_arn)
                self._bind(env["EXPORT_ROLE_ARN"], n.export_role_arn, n.export_role_arn)

    def _bind(self, value: Any, ref: str, arn: str) -> None:
        if isinstance(value, Mapping) and "Ref" in value:
            self.refs[value["Ref"]] = ref
            self.attrs[(value["Ref"], "Arn")] = arn
        elif isinstance(value, Mapping) and "Fn::GetAtt" in value:
            logical_id = value["Fn::GetAtt"][0]
            self.refs[logical_id] = ref
            self.attrs[(logical_id, "Arn")] = arn
        # a literal (imported bucket or key): nothing to bind

    def __call__(self, value: Any) -> Any:
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
            return text
        return {k: self(v) for k, v in value.items()}


@dataclass
class Policies:
    """Each principal's identity policies, and the resource policies of the bucket and key."""

    principal_arns: dict[str, str]  # principal -> role ARN (a label for the evaluator)
    identity: dict[str, list[dict[str, Any]]]  # principal -> [{name, policy}]
    resource: dict[str, dict[str, Any]]  # ARN of the bucket or key -> its policy
    names: Names

    @classmethod
    def from_template(cls, template: Mapping[str, Any], names: Names) -> Policies:
        resolve = Resolver(template, names)
        resources: Mapping[str, Any] = template["Resources"]
        role_of: dict[str, str] = {}  # role logical id -> principal
        for logical_id, resource in resources.items():
            kind, props = resource["Type"], resource.get("Properties", {})
            if kind == "AWS::Lambda::Function":
                module = str(props["Handler"]).rsplit(".", 2)[-2]
                role_of[props["Role"]["Fn::GetAtt"][0]] = function_principal(module)
            elif kind == "AWS::StepFunctions::StateMachine":
                role_of[props["RoleArn"]["Fn::GetAtt"][0]] = STATE_MACHINE
            elif kind == "AWS::Scheduler::Schedule":
                role_of[props["Target"]["RoleArn"]["Fn::GetAtt"][0]] = SCHEDULER
            elif kind == "AWS::IAM::Role" and _trusts(props, "export.rds.amazonaws.com"):
                role_of[logical_id] = EXPORT_ROLE
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
        for resource in resources.values():
            props = resource.get("Properties", {})
            if resource["Type"] == "AWS::S3::BucketPolicy":
                bucket = resolve(props["Bucket"])
                if bucket == names.bucket:
                    resource_policies[f"arn:{names.partition}:s3:::{bucket}"] = resolve(
                        props["PolicyDocument"]
                    )
            elif resource["Type"] == "AWS::KMS::Key":
                policy = resolve(props["KeyPolicy"])
                arn = resolve({"Fn::GetAtt": [_logical_id(resources, resource), "Arn"]})
                resource_policies[arn] = policy
        arns = {
            principal: f"arn:{names.partition}:iam::{names.account}:role/{logical_id}"
            for logical_id, principal in role_of.items()
        }
        if EXPORT_ROLE in arns:
            arns[EXPORT_ROLE] = names.export_role_arn
        return cls(arns, identity, resource_policies, names)

    def drop_statement(self, principal: str, action: str) -> Policies:
        """A copy in which no statement of `principal` allows `action` any more (for tests):
        the action leaves its statements, and a statement left with no action goes too (CDK
        may have merged statements that share their resources)."""
        identity = json.loads(json.dumps(self.identity))
        for entry in identity[principal]:
            kept = []
            for statement in entry["policy"]["Statement"]:
                actions = [a for a in _as_list(statement.get("Action", [])) if a != action]
                if actions:
                    kept.append({**statement, "Action": actions})
            entry["policy"]["Statement"] = kept
        return Policies(dict(self.principal_arns), identity, self.resource, self.names)


def _logical_id(resources: Mapping[str, Any], resource: Any) -> str:
    return next(k for k, v in resources.items() if v is resource)


def _trusts(role_props: Mapping[str, Any], service: str) -> bool:
    for statement in role_props.get("AssumeRolePolicyDocument", {}).get("Statement", []):
        if service in _as_list(statement.get("Principal", {}).get("Service", [])):
            return True
    return False


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


def evaluate(requests: Iterable[Request], policies: Policies) -> list[Decision]:
    """Every distinct request, evaluated by iam-simulate in one Node process."""
    unique = list(dict.fromkeys(requests))
    batch = []
    for request in unique:
        if request.principal not in policies.identity:
            raise KeyError(f"no role in the template for principal {request.principal}")
        batch.append(
            {
                "principal": policies.principal_arns[request.principal],
                "action": request.action,
                "resource": request.resource,
                "accountId": policies.names.account,
                "context": {
                    "aws:PrincipalArn": policies.principal_arns[request.principal],
                    "aws:PrincipalAccount": policies.names.account,
                    "aws:RequestedRegion": policies.names.region,
                    **request.context_dict(),
                },
                "identityPolicies": policies.identity[request.principal],
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
    for request, result in zip(unique, results, strict=True):
        detail = json.dumps(result.get("errors")) if result["result"] == "Error" else ""
        ignored = result.get("ignoredContextKeys") or []
        if ignored:
            detail = f"context keys ignored by the evaluator: {ignored}"
        decisions.append(Decision(request, result["result"], detail))
    return decisions


def _resource_policy(request: Request, policies: Policies) -> dict[str, Any] | None:
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
