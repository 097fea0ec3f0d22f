"""IAM replay, part 1: the recorder. Every AWS request the pipeline makes in the sandbox is
turned into the IAM requests AWS authorizes for it; sandbox/iam_policies.py (part 2) evaluates
them against the synthesised stack's policies.

`Recorder` hooks botocore's `provide-client-params` event on the default session (the one
`rds_s3_export.aws.client` makes its clients from). Each call made while a principal is set in
the `PRINCIPAL` context variable is turned into the IAM requests AWS authorizes for it, through
`OPERATIONS`: action, resource ARN(s) as the Service Authorization Reference defines them for
that action, and the condition keys the request carries. The sandbox sets the principal around
each handler (`function:<module>`) and around the files the RDS simulation writes in RDS's name
(`export-role`). The state machine's invocations and its own StartExecution (a purge that
continues in a new execution) are derived from each execution's history
(`state_machine_requests`), the scheduler's starts from each start (`scheduler_requests`). A
call missing from `OPERATIONS` fails loudly.

The sandbox records into this module; it imports nothing of the sandbox back (what it needs of
the sandbox's state, the tags of a snapshot, it is handed in `Env`), so the recorder and the
evaluator can be used and tested on their own. What this proves and what still needs an
account: docs/sandbox.md, "IAM replay".
"""

from __future__ import annotations

import contextvars
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3

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


# The tags RDS holds on a snapshot: (resource type `snapshot` or `cluster-snapshot`, id) -> tags
SnapshotTags = Callable[[str, str], Mapping[str, str]]


def _no_tags(kind: str, ident: str) -> Mapping[str, str]:
    return {}


@dataclass(frozen=True)
class Env:
    """The sandbox's account, region and the export bucket and key (their default encryption
    decides which KMS requests S3 makes on the caller's behalf), and how to read a snapshot's
    tags (the sandbox reads them from its simulated RDS; a client call would be recorded)."""

    account: str
    region: str
    bucket: str
    key_arn: str
    partition: str = "aws"
    snapshot_tags: SnapshotTags = field(default=_no_tags, compare=False, repr=False)


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


def _rds_delete_snapshot(action: str, param: str, kind: str) -> Mapper:
    def mapper(p: Mapping[str, Any], env: Env) -> list[Access]:
        tags = env.snapshot_tags(kind, p[param])
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


# --- Glue Data Catalog -------------------------------------------------------------------------
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsglue.html and
# https://docs.aws.amazon.com/glue/latest/dg/glue-specifying-resource-arns.html: a table call is
# authorized against the catalog, the database and the table (GetTables: every table of the
# database, `table/<database>/*`), each one an IAM request of its own.
def _glue_table(action: str, name_param: str | None) -> Mapper:
    def mapper(p: Mapping[str, Any], env: Env) -> list[Access]:
        base = f"arn:{env.partition}:glue:{env.region}:{env.account}"
        database = p["DatabaseName"]
        if name_param is None:
            table = "*"
        elif name_param == "TableInput":
            table = p["TableInput"]["Name"]
        else:
            table = p[name_param]
        return [
            (action, f"{base}:catalog", {}),
            (action, f"{base}:database/{database}", {}),
            (action, f"{base}:table/{database}/{table}", {}),
        ]

    return mapper


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
    ("glue", "GetTables"): _glue_table("glue:GetTables", None),
    ("glue", "CreateTable"): _glue_table("glue:CreateTable", "TableInput"),
    ("glue", "UpdateTable"): _glue_table("glue:UpdateTable", "TableInput"),
    ("glue", "DeleteTable"): _glue_table("glue:DeleteTable", "Name"),
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
        Request(principal, f"{service}:{operation}", action, resource, freeze_context(context))
        for action, resource, context in mapper(params, env)
    ]


def freeze_context(context: Mapping[str, Any]) -> tuple[tuple[str, str | tuple[str, ...]], ...]:
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


def _invoke_function(parameters: Mapping[str, Any]) -> tuple[str, str]:
    # https://docs.aws.amazon.com/service-authorization/latest/reference/list_awslambda.html
    return "lambda:InvokeFunction", parameters["FunctionName"]


def _start_execution(parameters: Mapping[str, Any]) -> tuple[str, str]:
    # The request-response startExecution integration needs states:StartExecution on the
    # state machine it starts (no DescribeExecution / StopExecution: those are for `.sync`):
    # https://docs.aws.amazon.com/step-functions/latest/dg/stepfunctions-iam.html
    return "states:StartExecution", parameters["StateMachineArn"]


def _publish(parameters: Mapping[str, Any]) -> tuple[str, str]:
    # The sns:publish integration (notify_success) needs sns:Publish on the topic:
    # https://docs.aws.amazon.com/step-functions/latest/dg/sns-iam.html. SNS's own use of the
    # topic's key (kms:GenerateDataKey, kms:Decrypt for the caller) is not observable here.
    return "sns:Publish", parameters["TopicArn"]


# (resourceType, resource) of a TaskScheduled event -> the IAM request the state machine's role
# makes for it, read from the task's resolved parameters
INTEGRATIONS: dict[tuple[str, str], Callable[[Mapping[str, Any]], tuple[str, str]]] = {
    ("lambda", "invoke"): _invoke_function,
    ("states", "startExecution"): _start_execution,
    ("sns", "publish"): _publish,
}


def state_machine_requests(history: Iterable[Mapping[str, Any]]) -> list[Request]:
    """The request of every Task the execution history shows scheduled: lambda:InvokeFunction
    of a step's function, states:StartExecution of a purge continued in a new execution. A
    Task of another integration fails loudly, as an unmapped API call does."""
    found = []
    for event in history:
        if event.get("type") != "TaskScheduled":
            continue
        details = event["taskScheduledEventDetails"]
        integration = (details.get("resourceType", ""), details.get("resource", ""))
        mapper = INTEGRATIONS.get(integration)
        if mapper is None:
            raise UnmappedOperation(
                f"a Task of the integration {integration}, which sandbox/iam_replay.py "
                f"INTEGRATIONS does not map to an IAM request: {details}"
            )
        action, resource = mapper(json.loads(details.get("parameters") or "{}"))
        found.append(Request(STATE_MACHINE, f"states:{integration[1]}", action, resource))
    return found


def scheduler_requests(state_machine_arn: str) -> list[Request]:
    """The scheduler's start of one execution.
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsstepfunctions.html"""
    return [Request(SCHEDULER, "scheduler:Schedule", "states:StartExecution", state_machine_arn)]
