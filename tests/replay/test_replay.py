"""IAM replay: every AWS request the pipeline's scenarios make in the sandbox is evaluated against
the synthesised stack's own policies (sandbox/iam_replay.py records, sandbox/iam_policies.py
evaluates; docs/sandbox.md "IAM replay").

Each configuration is synthesised once; its sandbox is configured as that stack would configure
its functions (`settings_for`), runs every scenario of the configuration, and the recorded
requests, with the sts:AssumeRole each acting role's service made, are evaluated in one batch.
A configuration passes with 0 denied requests and 0 unused grants that `ACKNOWLEDGED_UNUSED`
does not excuse. `pytest -k replay` runs exactly these tests.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest

import infra.storage
from infra.application import create_stacks, read_context_file
from infra.config import ENV_ACCOUNT, ENV_REGION, PipelineConfig
from rds_s3_export.steps import purge_prefix
from sandbox import events as sb_events
from sandbox import export_files, iam_policies, iam_replay
from sandbox.backup_sim import BackupSimulation
from sandbox.iam_policies import SNOWFLAKE_ROLE, Policies
from sandbox.iam_replay import EXPORT_ROLE, SCHEDULER, STATE_MACHINE, Request
from sandbox.rds_sim import ExportOutcome, Timing
from sandbox.runtime import ACCOUNT, REGION, Sandbox, Settings
from tests.fixtures.aws_docs import rds_events
from tests.helpers import seed_objects

pytestmark = pytest.mark.skipif(
    not iam_policies.node_available(), reason="the IAM replay needs node and `npm ci` (make setup)"
)
ROOT = Path(__file__).resolve().parents[2]

FAST = Timing(snapshot_seconds=300, export_starting_seconds=120, export_running_seconds=600)
ANY_FUNCTION = "function:*"

# Granted, never used by a recorded request, and why that is right. (principal, action as
# written in the policy); principal `function:*` stands for every function.
ACKNOWLEDGED_UNUSED: dict[tuple[str, str], str] = {
    (ANY_FUNCTION, "logs:CreateLogStream"): "The Lambda service writes the function's logs "
    "with its role; the sandbox runs handlers in-process and writes no CloudWatch logs.",
    (ANY_FUNCTION, "logs:PutLogEvents"): "As logs:CreateLogStream.",
    (ANY_FUNCTION, "xray:PutTraceSegments"): "Active X-Ray tracing: the Lambda service sends "
    "the traces; not simulated.",
    (ANY_FUNCTION, "xray:PutTelemetryRecords"): "As xray:PutTraceSegments.",
    ("function:create_snapshot", "rds:ListTagsForResource"): "rds.iter_snapshots asks "
    "ListTagsForResource only when a Describe response lacks TagList; RDS always includes it.",
    ("function:prune_snapshots", "rds:ListTagsForResource"): "As for create_snapshot.",
    ("function:create_snapshot", "s3:GetObject"): "Reads <prefix>/_manifest.json only when "
    "the source picks an existing snapshot (is it exported already?); the 'many' "
    "configuration's scenarios take new snapshots only. The other configurations use it.",
    ("function:create_snapshot", "kms:Decrypt"): "As its s3:GetObject (the manifest is SSE-KMS).",
    (EXPORT_ROLE, "s3:GetObject*"): "AWS documents it for the export role (StartExportTask, "
    "IamRoleArn); which of these RDS itself calls is not observable outside AWS.",
    (EXPORT_ROLE, "s3:DeleteObject*"): "As s3:GetObject*.",
    (EXPORT_ROLE, "s3:ListBucket"): "As s3:GetObject*.",
    (EXPORT_ROLE, "s3:GetBucketLocation"): "As s3:GetObject*.",
    (EXPORT_ROLE, "kms:Encrypt"): "RDS's own use of the key for the export is not observable "
    "outside AWS; the sandbox records only the SSE-KMS data keys of the objects it writes.",
    (EXPORT_ROLE, "kms:Decrypt"): "As kms:Encrypt.",
    (EXPORT_ROLE, "kms:ReEncryptFrom"): "As kms:Encrypt.",
    (EXPORT_ROLE, "kms:ReEncryptTo"): "As kms:Encrypt.",
    (EXPORT_ROLE, "kms:GenerateDataKeyWithoutPlaintext"): "As kms:Encrypt.",
    (EXPORT_ROLE, "kms:DescribeKey"): "As kms:Encrypt.",
    (SNOWFLAKE_ROLE, "s3:GetObjectVersion"): "Snowflake's documented policy for a storage "
    "integration grants it (reads of an object version); the export bucket is unversioned and "
    "the replay models Snowflake's reads as GetObject.",
    (SNOWFLAKE_ROLE, "s3:GetBucketLocation"): "Snowflake's documented policy grants it; which "
    "bucket calls Snowflake makes besides listing and reading is not observable outside AWS.",
    (SCHEDULER, "sqs:SendMessage"): "Only a start that fails every retry lands in the "
    "dead-letter queue; the sandbox starts executions directly.",
    **{
        (STATE_MACHINE, action): "CDK's statement for execution logging and X-Ray tracing: "
        "the Step Functions service uses it; not simulated."
        for action in (
            "logs:CreateLogDelivery",
            "logs:DeleteLogDelivery",
            "logs:DescribeLogGroups",
            "logs:DescribeResourcePolicies",
            "logs:GetLogDelivery",
            "logs:ListLogDeliveries",
            "logs:PutResourcePolicy",
            "logs:UpdateLogDelivery",
            "xray:GetSamplingRules",
            "xray:GetSamplingTargets",
            "xray:PutTelemetryRecords",
            "xray:PutTraceSegments",
        )
    },
}

# The same, for one configuration only: (configuration, principal, action) -> why.
ACKNOWLEDGED_UNUSED_IN: dict[tuple[str, str, str], str] = {
    ("many", STATE_MACHINE, "states:StartExecution"): "The same statement as in every "
    "configuration; the single-database configurations replay a purge that continues in a new "
    "execution, and a continued run of one database is no different among several.",
    ("cross-account", STATE_MACHINE, "states:StartExecution"): "The same statement as in "
    "every configuration; the continuation of a purge does not touch the bucket or the key, so "
    "the cross-account configuration does not replay it (the instance configuration does).",
    ("events", STATE_MACHINE, "states:StartExecution"): "The same statement as in every "
    "configuration; the instance, cluster and imported configurations replay a purge that "
    "continues in a new execution, and the event triggers do not change how a purge continues.",
    ("imported", STATE_MACHINE, "kms:GenerateDataKey"): "notify_success: SNS uses the alert "
    "topic's key for the publisher when it stores the message "
    "(https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html); SNS's own KMS calls "
    "are not observable in the sandbox, which records the sns:Publish itself.",
    ("imported", STATE_MACHINE, "kms:Decrypt"): "As kms:GenerateDataKey.",
    ("glue", STATE_MACHINE, "states:StartExecution"): "The same statement as in every "
    "configuration; a catalog changes nothing in how a purge continues (the continued "
    "execution's purge reads the catalog again, with the same grant as the first).",
}

# --- configurations and their scenarios ------------------------------------------------------

CLUSTER = {
    "db_instance_identifier": "",
    "db_cluster_identifier": "mycluster",
    "snapshot_prefix": "mycluster-nightly",
    "s3_prefix": "exports/mycluster",
}
MANY = {
    "databases": [
        {
            "db_instance_identifier": "orders",
            "s3_prefix": "exports/orders",
            "snapshot_prefix": "orders-nightly",
        },
        {
            "db_instance_identifier": "billing",
            "s3_prefix": "exports/billing",
            "snapshot_prefix": "billing-nightly",
        },
        {
            "db_cluster_identifier": "events",
            "s3_prefix": "exports/events",
            "snapshot_prefix": "events-nightly",
        },
    ],
}
MANY["keep_snapshots"] = 0  # the second night prunes the first night's snapshots
# An imported bucket and key (their policies are not the stack's) and a Snowflake role. The key
# policy is the one docs/deploy.md tells the key's owner to write: no root delegation, one
# statement per role that uses the key (`Policies.key_policy_naming_each_role`).
IMPORTED_KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SNOWFLAKE_USER = "arn:aws:iam::123456789001:user/abc1-b-self1234"
SNOWFLAKE_EXTERNAL_ID = "MYACCOUNT_SFCRole=2_a123456/s0aBCDEfGHIJklmNoPq="
IMPORTED = {
    "bucket_name": "rds-s3-export-sandbox",  # the sandbox's bucket (Settings.bucket)
    "kms_key_arn": IMPORTED_KEY_ARN,
    "snowflake_iam_user_arn": SNOWFLAKE_USER,
    "snowflake_external_id": SNOWFLAKE_EXTERNAL_ID,
    # a successful run publishes its summary to the alert topic (sns:Publish of the role)
    "notify_success": "true",
}
# event triggers on, the schedule a catch-up (latest-automated), AWS Backup as a source
EVENTS = {"snapshot_events": "true", "backup_vault": "nightly", "source": "latest-automated"}
# the Glue catalog of issue 20: tables created, updated and deleted after each export
GLUE = {"glue_database": "shop_exports"}
# Cross-account delivery (issue 19): the bucket, the key and the Snowflake role in a data
# account; the pipeline in the sandbox's account, made explicit as the CDK CLI makes it.
DATA_ACCOUNT = "222222222222"
PIPELINE_ENVIRONMENT = {ENV_ACCOUNT: ACCOUNT, ENV_REGION: REGION}
CROSS_ACCOUNT = {
    "data_account_id": DATA_ACCOUNT,
    "snowflake_iam_user_arn": SNOWFLAKE_USER,
    "snowflake_external_id": SNOWFLAKE_EXTERNAL_ID,
}
CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "instance": {},
    "cluster": CLUSTER,
    "many": MANY,
    "imported": IMPORTED,
    "events": EVENTS,
    "glue": GLUE,
    "cross-account": CROSS_ACCOUNT,
}


@dataclass
class Outcome:
    """What one scenario did: its runs' statuses (to show the scenario really ran)."""

    statuses: list[str] = field(default_factory=list)


Scenario = Callable[[Sandbox, PipelineConfig, Outcome], None]


def _run(sb: Sandbox, outcome: Outcome, execution_input: dict[str, Any] | None = None) -> None:
    result = sb.run(execution_input or {})
    outcome.statuses.append(f"{result.status} {result.error or ''}".strip())


def _manual_snapshot(sb: Sandbox, cluster: bool, database: str, ident: str) -> None:
    rds = sb.client("rds")
    if cluster:
        rds.create_db_cluster_snapshot(
            DBClusterIdentifier=database, DBClusterSnapshotIdentifier=ident
        )
    else:
        rds.create_db_snapshot(DBInstanceIdentifier=database, DBSnapshotIdentifier=ident)
    sb.clock.advance(sb.rds.timing.snapshot_seconds)


def happy_path(sb: Sandbox, config: PipelineConfig, outcome: Outcome) -> None:
    _run(sb, outcome)
    _run(sb, outcome)  # purges the first export


def latest_automated(sb: Sandbox, config: PipelineConfig, outcome: Outcome) -> None:
    db = config.databases[0]
    sb.add_automated_snapshot(db.identifier, age_hours=3, cluster=db.kind == "cluster")
    _run(sb, outcome, {"source": "latest-automated"})


def named_snapshot(sb: Sandbox, config: PipelineConfig, outcome: Outcome) -> None:
    # any name: a snapshot taken by hand before an upgrade (README's example)
    db = config.databases[0]
    ident = f"{db.identifier}-before-upgrade"
    _manual_snapshot(sb, db.kind == "cluster", db.identifier, ident)
    _run(sb, outcome, {"source": "snapshot", "snapshot_identifier": ident})


def another_databases_snapshot(sb: Sandbox, config: PipelineConfig, outcome: Outcome) -> None:
    # IAM lets the functions read and export any snapshot (its ARN does not name its
    # database): the create-snapshot step is what refuses another database's snapshot
    sb.add_instance("otherdb")
    _manual_snapshot(sb, False, "otherdb", "otherdb-before-upgrade")
    _run(sb, outcome, {"source": "snapshot", "snapshot_identifier": "otherdb-before-upgrade"})


def retention(sb: Sandbox, config: PipelineConfig, outcome: Outcome) -> None:
    _run(sb, outcome, {"keep_snapshots": 0})
    _run(sb, outcome, {"keep_snapshots": 0})  # deletes the first run's snapshot


def dry_run(sb: Sandbox, config: PipelineConfig, outcome: Outcome) -> None:
    _run(sb, outcome, {"dry_run": True})


def faults(sb: Sandbox, config: PipelineConfig, outcome: Outcome) -> None:
    _run(sb, outcome)  # a previous export to keep
    sb.rds.next_export(ExportOutcome(status="FAILED", failure_cause="simulated"))
    _run(sb, outcome)  # DiscardFailedExport removes the partial files
    sb.rds.fail_next_snapshot("failed")
    _run(sb, outcome)
    sb.faults.api("rds", "CreateDBSnapshot", "Throttling", times=1)
    _run(sb, outcome)


def failed_export(sb: Sandbox, config: PipelineConfig, outcome: Outcome) -> None:
    first = config.schedule_input(config.databases[0])  # `{}` where one database is configured
    _run(sb, outcome, first)  # a previous export to keep
    sb.rds.next_export(ExportOutcome(status="FAILED", failure_cause="simulated"))
    _run(sb, outcome, first)  # DiscardFailedExport removes the partial files


def overlapping_runs(sb: Sandbox, config: PipelineConfig, outcome: Outcome) -> None:
    # the younger run reads the older one (states:DescribeExecution) and stops
    arns = [sb.start({}, name="overlap-a"), sb.start({}, name="overlap-b")]
    for arn in arns:
        result = sb.wait(arn)
        outcome.statuses.append(f"{result.status} {result.error or ''}".strip())


def many_databases(sb: Sandbox, config: PipelineConfig, outcome: Outcome) -> None:
    arns = [sb.start(config.schedule_input(db)) for db in config.databases]
    for arn in arns:
        result = sb.wait(arn, timeout=300)
        outcome.statuses.append(f"{result.status} {result.error or ''}".strip())
    # a second night: purge and prune for every database
    arns = [sb.start(config.schedule_input(db)) for db in config.databases]
    for arn in arns:
        result = sb.wait(arn, timeout=300)
        outcome.statuses.append(f"{result.status} {result.error or ''}".strip())


def continued_purge(sb: Sandbox, config: PipelineConfig, outcome: Outcome) -> None:
    # An old export of 40 objects, purged 4 keys a call with a history budget the fifth call
    # would pass: the purge continues in new executions (states:StartExecution of the state
    # machine's role), as tests/pipeline/test_purge_scale.py shows in detail.
    prefix = config.databases[0].s3_prefix
    old = "mysnapshot-2020-01-01-00-00-abcdef"
    keys = [f"{prefix}/{old}/export_info_{old}.json"]
    keys += [f"{prefix}/{old}/shop/t/1/part-{i:06d}.gz.parquet" for i in range(39)]
    seed_objects(sb.settings.bucket, keys, b"")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(purge_prefix, "PAGE_SIZE", 4)
        patch.setattr(purge_prefix, "TIME_MARGIN_MS", 10**9)
        patch.setenv("PURGE_HISTORY_EVENTS_MAX", "250")
        result = sb.wait(sb.start({}), timeout=600)
        while True:
            outcome.statuses.append(f"{result.status} {result.error or ''}".strip())
            output = result.output or {}
            if output.get("status") != "CONTINUED":
                break
            outcome.statuses.append("continued")
            result = sb.wait(output["continued_in"], timeout=600)


def snowflake_reads(sb: Sandbox, config: PipelineConfig, outcome: Outcome) -> None:
    # A night, then Snowflake reading it as its storage integration does: list the prefix, get
    # each object (S3 decrypts it with the export key for the caller: kms:Decrypt via S3).
    # https://docs.snowflake.com/en/user-guide/data-load-s3-config-storage-integration
    _run(sb, outcome)
    assert sb.iam is not None
    prefix = f"{config.databases[0].s3_prefix}/"
    env = sb.iam.env
    if config.data_account_id:  # the role is the data account's: S3 calls KMS as that account
        env = dataclasses.replace(env, account=config.data_account_id)
    reads = iam_replay.requests_for(
        SNOWFLAKE_ROLE, "s3", "ListObjectsV2", {"Bucket": sb.settings.bucket, "Prefix": prefix}, env
    )
    for key in sb.listing(prefix):
        reads += iam_replay.requests_for(
            SNOWFLAKE_ROLE, "s3", "GetObject", {"Bucket": sb.settings.bucket, "Key": key}, env
        )
    sb.iam.add(reads)


def _wait_all(sb: Sandbox, outcome: Outcome, arns: list[str]) -> None:
    for arn in arns:
        result = sb.wait(arn)
        outcome.statuses.append(f"{result.status} {result.error or ''}".strip())
        if result.output and result.output.get("status") != "SUCCEEDED":
            outcome.statuses[-1] += f" {result.output['status']}"


def event_then_catch_up(sb: Sandbox, config: PipelineConfig, outcome: Outcome) -> None:
    # RDS's event for tonight's automated snapshot starts a run of it; the schedule after it
    # finds the manifest naming that snapshot (UP_TO_DATE); then an event of another
    # database's snapshot that the automated rule's prefix matches (mydb-2)
    sb.clock.advance(3600)
    tonight = sb.add_automated_snapshot("mydb", age_hours=0)
    _wait_all(
        sb, outcome, sb_events.deliver(sb, rds_events.created("instance", "automated", tonight))
    )
    _wait_all(sb, outcome, [sb.start({})])
    sb.add_instance("mydb-2")
    other = sb.add_automated_snapshot("mydb-2", age_hours=0)
    _wait_all(
        sb, outcome, sb_events.deliver(sb, rds_events.created("instance", "automated", other))
    )


def backup_job(sb: Sandbox, config: PipelineConfig, outcome: Outcome) -> None:
    with BackupSimulation(sb.clock).installed() as backup:
        point = backup.add_recovery_point("mydb", "nightly")
        _wait_all(sb, outcome, sb_events.deliver(sb, backup.job_event(point)))
        _wait_all(sb, outcome, [sb.start({"source": "backup", "recovery_point_arn": point.arn})])


def catalog_nights(sb: Sandbox, config: PipelineConfig, outcome: Outcome) -> None:
    """Night 1 creates a table per exported table; night 2, with one table gone from the
    export, updates the others and deletes its table; every run's purge reads the catalog."""
    _run(sb, outcome)
    source = export_files.sample_database()
    sb.rds.database = dataclasses.replace(source, tables=source.tables[:-1])
    _run(sb, outcome)
    sb.rds.database = None


def new_snapshots(sb: Sandbox, config: PipelineConfig, outcome: Outcome) -> None:
    _run(sb, outcome, {"source": "new-snapshot", "keep_snapshots": 0})
    sb.rds.next_export(ExportOutcome(status="FAILED", failure_cause="simulated"))
    _run(sb, outcome, {"source": "new-snapshot", "keep_snapshots": 0})
    _run(sb, outcome, {"source": "new-snapshot", "keep_snapshots": 0})  # purges, prunes


SCENARIOS: dict[str, dict[str, Scenario]] = {
    "instance": {
        "happy path": happy_path,
        "latest-automated": latest_automated,
        "named snapshot": named_snapshot,
        "another database's snapshot": another_databases_snapshot,
        "retention": retention,
        "dry run": dry_run,
        "faults": faults,
        "overlapping runs": overlapping_runs,
        "continued purge": continued_purge,
    },
    "cluster": {
        "happy path": happy_path,
        "latest-automated": latest_automated,
        "named snapshot": named_snapshot,
        "retention": retention,
        "failed export": failed_export,
        "overlapping runs": overlapping_runs,
        "continued purge": continued_purge,
    },
    "many": {"many databases": many_databases, "failed export": failed_export},
    "imported": {
        "happy path": happy_path,
        "failed export": failed_export,
        "retention": retention,
        "continued purge": continued_purge,
        "snowflake reads": snowflake_reads,
    },
    "glue": {
        "catalog nights": catalog_nights,
        "dry run": dry_run,
        "failed export": failed_export,
        "retention": retention,
    },
    # the calls that reach the data account's bucket and key, from each role that makes them
    "cross-account": {
        "happy path": happy_path,
        "latest-automated": latest_automated,
        "dry run": dry_run,
        "failed export": failed_export,
        "retention": retention,
        "snowflake reads": snowflake_reads,
    },
    "events": {
        "event, catch-up, near miss": event_then_catch_up,
        "backup job": backup_job,
        "new snapshots": new_snapshots,
        "overlapping runs": overlapping_runs,
    },
}

# --- synthesis, sandbox, replay --------------------------------------------------------------


@dataclass
class Replay:
    config: PipelineConfig
    template: dict[str, Any]
    # scenario -> its requests, the sandbox's names, what it did
    requests: dict[str, list[Request]]
    names: dict[str, iam_policies.Names]
    outcomes: dict[str, Outcome]
    data_template: dict[str, Any] | None = None  # cross-account delivery: the data stack's

    def policies(
        self,
        scenario: str,
        template: dict[str, Any] | None = None,
        data_template: dict[str, Any] | None = None,
    ) -> Policies:
        """The stack's policies for `scenario`'s names; an imported key's policy is the one
        docs/deploy.md asks for (each role that uses the key named, no root delegation). In
        cross-account delivery, the identity policies of the pipeline's template and the
        bucket and key policies of the data stack's (`Policies.cross_account`)."""
        policies = Policies.from_template(template or self.template, self.names[scenario])
        data = data_template or self.data_template
        if data is not None:
            names = self.names[scenario]
            data_names = dataclasses.replace(
                names, account=DATA_ACCOUNT, function_arns={}, state_machine_arn=""
            )
            return Policies.cross_account(policies, Policies.from_template(data, data_names))
        if self.config.kms_key_arn:
            policies = policies.with_key_policy(policies.key_policy_naming_each_role())
        return policies

    def with_trust(self, scenario: str, policies: Policies) -> list[Request]:
        """The scenario's requests, the sts:AssumeRole of each role that acted, and
        Snowflake's, with its external id, where the stack has a Snowflake role."""
        requests = list(self.requests[scenario])
        requests += policies.assume_role_requests(r.principal for r in requests)
        if SNOWFLAKE_ROLE in policies.principal_arns:
            requests.append(policies.snowflake_assume_role(SNOWFLAKE_USER, SNOWFLAKE_EXTERNAL_ID))
        return requests

    def denied(self, policies: Callable[[str], Policies] | None = None) -> list[str]:
        """Every request of every scenario that its policies deny (one evaluator run)."""
        scenarios = list(self.requests)
        batches = []
        for scenario in scenarios:
            chosen = (policies or self.policies)(scenario)
            batches.append((self.with_trust(scenario, chosen), chosen))
        return [
            f"[{scenarios[index]}] {decision.result}: {decision.request.describe()}"
            + (f" {decision.detail}" if decision.detail else "")
            for index, decision in iam_policies.evaluate_each(batches)
            if not decision.allowed
        ]

    def unused(self) -> list[tuple[str, str]]:
        all_requests = [r for requests in self.requests.values() for r in requests]
        policies = self.policies(next(iter(self.requests)))
        return iam_policies.unused_grants(policies, all_requests)


def settings_for(name: str) -> Settings:
    """The sandbox configured with the very context the stack was synthesised from. The
    sandbox has one account: in cross-account delivery it runs the same calls in it, and
    `_in_the_data_account` moves the bucket and the key to the data account afterwards."""
    context = {**read_context_file(), **CONFIGURATIONS[name]}
    context.pop("data_account_id", None)
    return Settings(**context)


Synthesised = tuple[PipelineConfig, dict[str, Any], dict[str, Any] | None]


def synthesise_stacks(context: dict[str, Any], outdir: Path) -> Synthesised:
    """The configuration, the pipeline stack's template and the data stack's (or None), for
    the sandbox's account and region (CDK_DEFAULT_ACCOUNT / CDK_DEFAULT_REGION)."""
    stacks = create_stacks(context, outdir=str(outdir), environment=PIPELINE_ENVIRONMENT)
    try:
        stacks.app.synth()
    except RuntimeError as err:  # validation findings: the compliance tests report them
        raise AssertionError(f"synthesis into {outdir.name} failed: {err}") from err
    data = (
        json.loads((outdir / stacks.data.template_file).read_text())
        if stacks.data is not None
        else None
    )
    template = json.loads((outdir / stacks.pipeline.template_file).read_text())
    return stacks.pipeline.config, template, data


def synthesise(context: dict[str, Any], outdir: Path) -> tuple[PipelineConfig, dict[str, Any]]:
    config, template, _ = synthesise_stacks(context, outdir)
    return config, template


@cache
def _synth(name: str, tmp: Path) -> Synthesised:
    return synthesise_stacks(
        {**read_context_file(), **CONFIGURATIONS[name]}, tmp / f"cdk.out.{name}"
    )


def _in_the_data_account(
    requests: Iterable[Request], renamed: Mapping[str, str], data_account: str
) -> list[Request]:
    """The sandbox's requests with its key and export role renamed to the data account's key
    and the role's fixed name (`renamed`: sandbox ARN -> deployed ARN); the Snowflake role's
    KMS requests are made as the data account (kms:CallerAccount)."""
    moved = []
    for request in requests:
        context = request.context_dict()
        if request.principal == SNOWFLAKE_ROLE and "kms:CallerAccount" in context:
            context["kms:CallerAccount"] = data_account
        moved.append(
            dataclasses.replace(
                request,
                resource=renamed.get(request.resource, request.resource),
                context=iam_replay.freeze_context(context),
            )
        )
    return moved


def _replay(name: str, tmp: Path, only: tuple[str, ...] = ()) -> Replay:
    config, template, data_template = _synth(name, tmp)
    replay = Replay(config, template, {}, {}, {}, data_template)
    for scenario, play in SCENARIOS[name].items():
        if only and scenario not in only:
            continue
        with Sandbox(settings_for(name), FAST, record_iam=True) as sb:
            for db in config.databases:
                if db.kind == "cluster":
                    sb.add_cluster(db.identifier)
                else:
                    sb.add_instance(db.identifier)
            outcome = Outcome()
            play(sb, config, outcome)
            assert sb.iam is not None
            assert not sb.iam.errors, sb.iam.errors
            replay.requests[scenario] = list(sb.iam.requests)
            replay.names[scenario] = iam_policies.Names(
                ACCOUNT,
                REGION,
                sb.settings.bucket,
                sb.key_arn,
                sb.role_arn,
                dict(sb.function_arns),
                sb.state_machine_arn,
                # an imported key is named by its configured ARN: the sandbox's key stands in
                literals={config.kms_key_arn: sb.key_arn} if config.kms_key_arn else {},
                alert_topic_arn=sb.alert_topic_arn,
            )
            if config.data_account_id:
                # the data account's key (same id), the export role by its fixed name; the
                # templates' fixed bucket name and the key's alias ARN stand for the sandbox's
                key_arn = sb.key_arn.replace(f":{ACCOUNT}:", f":{config.data_account_id}:")
                role_arn = config.role_arns()["export_role"]
                renamed = {sb.key_arn: key_arn, sb.role_arn: role_arn}
                replay.requests[scenario] = _in_the_data_account(
                    replay.requests[scenario], renamed, config.data_account_id
                )
                replay.names[scenario] = dataclasses.replace(
                    replay.names[scenario],
                    key_arn=key_arn,
                    export_role_arn=role_arn,
                    literals={
                        config.data_bucket_name: sb.settings.bucket,
                        config.data_key_alias_arn: key_arn,
                    },
                )
            replay.outcomes[scenario] = outcome
    return replay


_REPLAYS: dict[tuple[str, tuple[str, ...]], Replay] = {}


@pytest.fixture(scope="module")
def replays(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Replay]:
    """`replays(name, only=(scenario, ...))`: a configuration's replay, cached in the worker."""
    tmp = tmp_path_factory.mktemp("replay")

    def get(name: str, only: tuple[str, ...] = ()) -> Replay:
        if (name, only) not in _REPLAYS:
            _REPLAYS[(name, only)] = _replay(name, tmp, only)
        return _REPLAYS[(name, only)]

    return get


def _acknowledged(principal: str, action: str) -> set[tuple[str, str]]:
    """The acknowledgements that excuse `principal`'s unused `action` (empty: none)."""
    keys = {(principal, action)}
    if principal.startswith("function:"):
        keys.add((ANY_FUNCTION, action))
    return keys & set(ACKNOWLEDGED_UNUSED)


# What each scenario's runs ended with (a scenario failing early would record less).
EXPECTED_OUTCOMES = {
    ("instance", "happy path"): ["SUCCEEDED", "SUCCEEDED"],
    ("instance", "named snapshot"): ["SUCCEEDED"],
    ("instance", "another database's snapshot"): ["FAILED SourceNotFound"],
    ("instance", "faults"): [
        "SUCCEEDED",
        "FAILED ExportFailed",
        "FAILED SnapshotFailed",
        "SUCCEEDED",
    ],
    ("instance", "overlapping runs"): ["FAILED AlreadyRunning", "SUCCEEDED"],
    ("cluster", "named snapshot"): ["SUCCEEDED"],
    ("many", "many databases"): ["SUCCEEDED"] * 6,
    ("imported", "happy path"): ["SUCCEEDED", "SUCCEEDED"],
    ("imported", "snowflake reads"): ["SUCCEEDED"],
    ("cross-account", "happy path"): ["SUCCEEDED", "SUCCEEDED"],
    ("cross-account", "failed export"): ["SUCCEEDED", "FAILED ExportFailed"],
    ("cross-account", "snowflake reads"): ["SUCCEEDED"],
    ("events", "event, catch-up, near miss"): [
        "SUCCEEDED",
        "SUCCEEDED UP_TO_DATE",
        "SUCCEEDED NOT_THIS_DATABASE",
    ],
    ("events", "backup job"): ["SUCCEEDED", "SUCCEEDED UP_TO_DATE"],
    ("events", "new snapshots"): ["SUCCEEDED", "FAILED ExportFailed", "SUCCEEDED"],
    ("glue", "catalog nights"): ["SUCCEEDED", "SUCCEEDED"],
}


# --- the tests -------------------------------------------------------------------------------


@pytest.mark.slow
def test_replay_every_pipeline_request_is_allowed_and_every_grant_used(
    replays: Callable[..., Replay],
) -> None:
    """One test for every configuration and scenario (so that pytest -n 2 does not replay a
    configuration twice); its message names the scenario, function, action and resource."""
    denied: list[str] = []
    unused: list[str] = []
    needed: set[tuple[str, str]] = set()
    needed_in: set[tuple[str, str, str]] = set()
    for name in sorted(CONFIGURATIONS):
        replay = replays(name)
        for scenario, outcome in replay.outcomes.items():
            expected = EXPECTED_OUTCOMES.get((name, scenario))
            assert outcome.statuses, f"{name}/{scenario} ran nothing"
            if expected is not None:
                assert sorted(outcome.statuses) == sorted(expected), (name, scenario)
        denied += [f"{name} {line}" for line in replay.denied()]
        for principal, action in replay.unused():
            excused = _acknowledged(principal, action)
            needed |= excused
            if (name, principal, action) in ACKNOWLEDGED_UNUSED_IN:
                needed_in.add((name, principal, action))
            elif not excused:
                unused.append(f"{name}: {principal}: {action}")
    assert denied == [], "denied by the stack's policies:\n" + "\n".join(denied)
    assert unused == [], (
        "granted but used by no scenario (remove the grant, or add it with its reason to "
        "ACKNOWLEDGED_UNUSED):\n" + "\n".join(unused)
    )
    stale = sorted(set(ACKNOWLEDGED_UNUSED) - needed) + sorted(
        set(ACKNOWLEDGED_UNUSED_IN) - needed_in
    )
    assert stale == [], f"acknowledged but used, or no longer granted: remove {stale}"
    # with the wider snapshot grants, the code is what refuses another database's snapshot
    refused = replays("instance").requests["another database's snapshot"]
    assert not [r for r in refused if r.action == "rds:StartExportTask"]
    # the purge did continue in a new execution, started by the state machine's own role
    continued = replays("instance")
    assert "continued" in continued.outcomes["continued purge"].statuses
    starts = [
        r
        for r in continued.requests["continued purge"]
        if (r.principal, r.action) == (STATE_MACHINE, "states:StartExecution")
    ]
    assert starts, "the continuation's StartExecution was not recorded"
    assert {r.resource for r in starts} == {continued.names["continued purge"].state_machine_arn}
    # notify_success: the state machine's role published each successful run's summary
    imported = replays("imported")
    published = [
        r
        for r in imported.requests["happy path"]
        if (r.principal, r.action) == (STATE_MACHINE, "sns:Publish")
    ]
    assert len(published) == imported.outcomes["happy path"].statuses.count("SUCCEEDED") > 0
    assert {r.resource for r in published} == {imported.names["happy path"].alert_topic_arn}
    # and every role that acted was assumed by its service (trust policies evaluated)
    counts = {
        name: sum(
            len(replays(name).with_trust(s, replays(name).policies(s)))
            - len(replays(name).requests[s])
            for s in replays(name).requests
        )
        for name in sorted(CONFIGURATIONS)
    }
    print(f"sts:AssumeRole requests evaluated per configuration: {counts}")
    assert all(counts.values()), counts


def test_replay_reports_a_denial_when_a_statement_is_missing(
    replays: Callable[..., Replay],
) -> None:
    replay = replays("instance", ("happy path",))
    assert replay.denied() == []

    # When purge_prefix's s3:DeleteObject statement is dropped from the resolved policy
    def without_delete(scenario: str) -> Policies:
        return replay.policies(scenario).drop_statement("function:purge_prefix", "s3:DeleteObject")

    # Then the replay reports the purge's deletes as denied, naming function and resource
    denied = replay.denied(without_delete)
    assert denied
    assert all(" function:purge_prefix: s3:DeleteObject on " in line for line in denied), denied
    assert any(
        line.startswith(
            "[happy path] ImplicitlyDenied: function:purge_prefix: s3:DeleteObject on "
            "arn:aws:s3:::rds-s3-export-sandbox/exports/mydb/"
        )
        for line in denied
    ), denied

    # And a delete outside the prefix is denied by the unchanged policies
    outside = Request(
        "function:purge_prefix",
        "s3:DeleteObjects",
        "s3:DeleteObject",
        "arn:aws:s3:::rds-s3-export-sandbox/exports/other/x.parquet",
    )
    (decision,) = iam_policies.evaluate([outside], replay.policies("happy path"))
    assert decision.result == "ImplicitlyDenied"


def test_replay_an_unmapped_call_fails_loudly() -> None:
    env = iam_replay.Env(ACCOUNT, REGION, "bucket", "arn:aws:kms:us-east-1:1:key/k")
    with pytest.raises(iam_replay.UnmappedOperation, match="s3:CopyObject"):
        iam_replay.requests_for("function:purge_prefix", "s3", "CopyObject", {}, env)


def test_replay_maps_the_calls_other_steps_are_adding() -> None:
    """publish_manifest writes `_manifest.json` and puts an EventBridge event; purge deletes
    many keys per DeleteObjects call, each authorized as s3:DeleteObject."""
    env = iam_replay.Env(ACCOUNT, REGION, "b", "arn:aws:kms:us-east-1:123456789012:key/k")
    put = iam_replay.requests_for(
        "function:publish_manifest",
        "s3",
        "PutObject",
        {"Bucket": "b", "Key": "p/_manifest.json"},
        env,
    )
    assert [(r.action, r.resource) for r in put] == [
        ("s3:PutObject", "arn:aws:s3:::b/p/_manifest.json"),
        ("kms:GenerateDataKey", env.key_arn),
    ]
    events = iam_replay.requests_for(
        "function:publish_manifest",
        "events",
        "PutEvents",
        {
            "Entries": [
                {"Source": "rds-s3-export", "DetailType": "Export published", "Detail": "{}"}
            ]
        },
        env,
    )
    assert [(r.action, r.resource) for r in events] == [
        ("events:PutEvents", "arn:aws:events:us-east-1:123456789012:event-bus/default")
    ]
    assert events[0].context_dict() == {
        "events:source": "rds-s3-export",
        "events:detail-type": "Export published",
    }
    deleted = iam_replay.requests_for(
        "function:purge_prefix",
        "s3",
        "DeleteObjects",
        {"Bucket": "b", "Delete": {"Objects": [{"Key": "p/a"}, {"Key": "p/b"}]}},
        env,
    )
    assert [(r.action, r.resource) for r in deleted] == [
        ("s3:DeleteObject", "arn:aws:s3:::b/p/a"),
        ("s3:DeleteObject", "arn:aws:s3:::b/p/b"),
    ]


def test_replay_maps_a_glue_table_call_to_catalog_database_and_table() -> None:
    """Glue authorizes a table call against the catalog, the database and the table
    (https://docs.aws.amazon.com/glue/latest/dg/glue-specifying-resource-arns.html)."""
    env = iam_replay.Env(ACCOUNT, REGION, "b", "arn:aws:kms:us-east-1:123456789012:key/k")
    base = f"arn:aws:glue:{REGION}:{ACCOUNT}"
    listed = iam_replay.requests_for(
        "function:update_catalog", "glue", "GetTables", {"DatabaseName": "db"}, env
    )
    assert [(r.action, r.resource) for r in listed] == [
        ("glue:GetTables", f"{base}:catalog"),
        ("glue:GetTables", f"{base}:database/db"),
        ("glue:GetTables", f"{base}:table/db/*"),
    ]
    deleted = iam_replay.requests_for(
        "function:update_catalog", "glue", "DeleteTable", {"DatabaseName": "db", "Name": "t"}, env
    )
    assert deleted[-1].resource == f"{base}:table/db/t"
    updated = iam_replay.requests_for(
        "function:update_catalog",
        "glue",
        "UpdateTable",
        {"DatabaseName": "db", "TableInput": {"Name": "t"}},
        env,
    )
    assert [r.action for r in updated] == ["glue:UpdateTable"] * 3


# --- trust policies --------------------------------------------------------------------------


def _denials(requests: Iterable[Request], policies: Policies) -> list[str]:
    return [
        f"{d.result}: {d.request.describe()}"
        for d in iam_policies.evaluate(requests, policies)
        if not d.allowed
    ]


def _trust_requests(replay: Replay, scenario: str, policies: Policies) -> list[Request]:
    return [r for r in replay.with_trust(scenario, policies) if r.action == "sts:AssumeRole"]


def test_replay_each_service_assumes_its_role_with_the_keys_aws_documents(
    replays: Callable[..., Replay],
) -> None:
    replay = replays("instance", ("happy path",))
    policies = replay.policies("happy path")
    trusts = _trust_requests(replay, "happy path", policies)

    # Then each acting role was assumed by its own service, and allowed
    by_service = {r.principal.removeprefix("service:") for r in trusts}
    assert by_service == {
        "export.rds.amazonaws.com",
        "lambda.amazonaws.com",
        "states.amazonaws.com",
        "scheduler.amazonaws.com",
    }
    assert _denials(trusts, policies) == []
    # the export role's ARN is the one StartExportTask passes, in the trust as in the requests
    export = [r for r in trusts if r.principal == "service:export.rds.amazonaws.com"]
    assert [r.resource for r in export] == [replay.names["happy path"].export_role_arn]
    assert export[0].context == ()  # AWS documents no key RDS sends (iam_policies.SERVICE_TRUST)

    # And no role can be assumed by another service, or by its own from another account
    role = policies.principal_arns
    foreign = [
        Request("service:rds.amazonaws.com", "test", "sts:AssumeRole", role[EXPORT_ROLE]),
        Request("service:lambda.amazonaws.com", "test", "sts:AssumeRole", role[EXPORT_ROLE]),
        Request("service:export.rds.amazonaws.com", "test", "sts:AssumeRole", role[SCHEDULER]),
        Request(
            "service:states.amazonaws.com",
            "test",
            "sts:AssumeRole",
            role[STATE_MACHINE],
            iam_replay.freeze_context(
                {
                    "aws:SourceAccount": "210987654321",
                    "aws:SourceArn": "arn:aws:states:us-east-1:210987654321:stateMachine:x",
                }
            ),
        ),
    ]
    assert len(_denials(foreign, policies)) == len(foreign)


def test_replay_snowflake_assumes_its_role_only_with_the_external_id(
    replays: Callable[..., Replay],
) -> None:
    replay = replays("imported", ("snowflake reads",))
    policies = replay.policies("snowflake reads")
    assert SNOWFLAKE_ROLE in policies.principal_arns
    assert policies.principal_arns[SNOWFLAKE_ROLE].endswith(":role/rds-s3-export-snowflake")

    with_id = policies.snowflake_assume_role(SNOWFLAKE_USER, SNOWFLAKE_EXTERNAL_ID)
    without_id = policies.snowflake_assume_role(SNOWFLAKE_USER, None)
    wrong_id = policies.snowflake_assume_role(SNOWFLAKE_USER, "another-external-id")
    other_user = policies.snowflake_assume_role(
        "arn:aws:iam::123456789001:user/someone-else", SNOWFLAKE_EXTERNAL_ID
    )
    results = {
        d.request: d.result
        for d in iam_policies.evaluate([with_id, without_id, wrong_id, other_user], policies)
    }
    assert results[with_id] == "Allowed"
    assert results[without_id] != "Allowed"
    assert results[wrong_id] != "Allowed"
    assert results[other_user] != "Allowed"


def test_replay_fails_when_the_export_role_trusts_another_service(
    replays: Callable[..., Replay], tmp_path: Path
) -> None:
    """Done-when of issue 17: the trusted service changed in infra/ is caught by the replay."""
    replay = replays("instance", ("happy path",))
    assert replay.denied() == []

    # When infra/storage.py's export role trusts another service, and the stack is synthesised
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(infra.storage, "EXPORT_SERVICE", "rds.amazonaws.com")
        _, template = synthesise(
            {**read_context_file(), **CONFIGURATIONS["instance"]}, tmp_path / "cdk.out"
        )

    # Then the replay reports RDS's export service refused the role, and nothing else
    denied = replay.denied(lambda scenario: replay.policies(scenario, template))
    assert denied, "the changed trust went unnoticed"
    assert all("service:export.rds.amazonaws.com: sts:AssumeRole on " in line for line in denied), (
        denied
    )


def test_replay_fails_on_a_trust_condition_the_service_does_not_send(
    replays: Callable[..., Replay],
) -> None:
    """The audit's defect: aws:SourceAccount on the export role's trust, which AWS's documented
    policy for export.rds.amazonaws.com does not have: a condition on a key RDS is not
    documented to send refuses every export."""
    replay = replays("instance", ("happy path",))
    template = json.loads(json.dumps(replay.template))
    export_role = next(  # the role the start-export function passes to RDS
        env["EXPORT_ROLE_ARN"]["Fn::GetAtt"][0]
        for r in _functions(template).values()
        if "EXPORT_ROLE_ARN" in (env := r["Properties"].get("Environment", {}).get("Variables", {}))
    )
    statement = template["Resources"][export_role]["Properties"]["AssumeRolePolicyDocument"]
    statement["Statement"][0]["Condition"] = {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    }
    denied = replay.denied(lambda scenario: replay.policies(scenario, template))
    assert denied
    assert all("service:export.rds.amazonaws.com: sts:AssumeRole" in line for line in denied)


def _functions(template: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Lambda::Function"}


# --- statements that name a role ---------------------------------------------------------------


def test_replay_resolves_role_arns_to_the_arns_the_requests_carry(
    replays: Callable[..., Replay],
) -> None:
    replay = replays("instance", ("happy path",))
    policies = replay.policies("happy path")
    # no reference is left unresolved in any policy the replay evaluates
    text = json.dumps([policies.identity, policies.resource, policies.trust])
    assert "unresolved" not in text
    # every role's ARN is an IAM role ARN of the sandbox's account
    for principal, arn in policies.principal_arns.items():
        assert re.fullmatch(rf"arn:aws:iam::{ACCOUNT}:role/[\w+=,.@-]+", arn), (principal, arn)
    # and the StartExportTask's iam:PassRole names the very ARN the export role resolves to
    passes = [r for r in replay.requests["happy path"] if r.action == "iam:PassRole"]
    assert {r.resource for r in passes} == {policies.principal_arns[EXPORT_ROLE]}


def _key_users(replay: Replay) -> list[str]:
    return sorted(replay.policies(next(iter(replay.requests))).key_grants())


def test_replay_an_imported_key_policy_naming_each_role_allows_every_request(
    replays: Callable[..., Replay],
) -> None:
    replay = replays("imported")
    policies = replay.policies("happy path")
    key_policy = policies.resource[policies.names.key_arn]
    # the key policy has no root delegation: only the named roles may use the key
    principals = [s["Principal"]["AWS"] for s in key_policy["Statement"]]
    assert all(":role/" in p for p in principals), principals
    print(f"roles an imported key's policy names: {_key_users(replay)}")
    assert _key_users(replay) == sorted(
        [
            EXPORT_ROLE,
            "function:create_snapshot",
            "function:publish_manifest",
            "function:purge_prefix",
            "function:start_export",
            SNOWFLAKE_ROLE,
        ]
    )
    assert replay.denied() == []


@pytest.mark.parametrize(
    "principal",
    [
        EXPORT_ROLE,
        "function:publish_manifest",
        "function:purge_prefix",
        "function:start_export",
        SNOWFLAKE_ROLE,
    ],
)
def test_replay_fails_when_the_key_policy_leaves_out_a_role_that_uses_the_key(
    replays: Callable[..., Replay], principal: str
) -> None:
    """Done-when of issue 17: a key-policy statement naming a role is really tested."""
    replay = replays("imported")

    def without(scenario: str) -> Policies:
        policies = replay.policies(scenario)
        return policies.with_key_policy(policies.key_policy_naming_each_role(without=[principal]))

    denied = replay.denied(without)
    assert denied, f"the key policy without {principal} went unnoticed"
    assert all(f"] ImplicitlyDenied: {principal}: kms:" in line for line in denied), denied


def test_the_stack_created_key_names_no_role_of_the_same_deploy(
    replays: Callable[..., Replay],
) -> None:
    """KMS refuses a key policy whose principals do not exist yet or are not yet visible; the
    root delegation plus each role's IAM policy already grant what the pipeline needs:
    https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html"""
    replay = replays("instance", ("happy path",))
    for resource in replay.template["Resources"].values():
        if resource["Type"] != "AWS::KMS::Key":
            continue
        for statement in resource["Properties"]["KeyPolicy"]["Statement"]:
            principal = json.dumps(statement.get("Principal", {}))
            assert "Role" not in principal, statement
    assert replay.denied() == []


# --- the continuation, and the module structure ------------------------------------------------


def test_replay_maps_the_state_machines_own_integrations() -> None:
    history = [
        {
            "type": "TaskScheduled",
            "taskScheduledEventDetails": {
                "resourceType": "lambda",
                "resource": "invoke",
                "parameters": json.dumps({"FunctionName": "arn:aws:lambda:r:1:function:f"}),
            },
        },
        {
            "type": "TaskScheduled",
            "taskScheduledEventDetails": {
                "resourceType": "states",
                "resource": "startExecution",
                "parameters": json.dumps({"StateMachineArn": "arn:aws:states:r:1:stateMachine:p"}),
            },
        },
        {
            "type": "TaskScheduled",
            "taskScheduledEventDetails": {
                "resourceType": "sns",
                "resource": "publish",
                "parameters": json.dumps({"TopicArn": "arn:aws:sns:r:1:alerts", "Message": "m"}),
            },
        },
    ]
    assert [(r.action, r.resource) for r in iam_replay.state_machine_requests(history)] == [
        ("lambda:InvokeFunction", "arn:aws:lambda:r:1:function:f"),
        ("states:StartExecution", "arn:aws:states:r:1:stateMachine:p"),
        ("sns:Publish", "arn:aws:sns:r:1:alerts"),
    ]
    unknown = [
        {
            "type": "TaskScheduled",
            "taskScheduledEventDetails": {"resourceType": "sqs", "resource": "sendMessage"},
        }
    ]
    with pytest.raises(iam_replay.UnmappedOperation, match="sendMessage"):
        iam_replay.state_machine_requests(unknown)


def _sandbox_imports(path: Path) -> set[str]:
    """The sandbox modules `path` imports, at any depth of the file (lazy imports too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "sandbox":
                found |= {f"sandbox.{alias.name}" for alias in node.names}
            elif node.module.startswith("sandbox."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("sandbox.")}
    return found


def test_the_replay_imports_nothing_of_the_sandbox_back() -> None:
    """The sandbox records into the replay; the replay never imports the sandbox's runtime (the
    recorder imports no sandbox module, the evaluator only the recorder), and no sandbox
    module imports another in a circle."""
    modules = {p.stem: p for p in (ROOT / "sandbox").glob("*.py") if p.stem != "__init__"}
    graph = {f"sandbox.{name}": _sandbox_imports(path) for name, path in modules.items()}
    assert graph["sandbox.iam_replay"] == set()
    assert graph["sandbox.iam_policies"] == {"sandbox.iam_replay"}

    def cycle_from(start: str, node: str, seen: tuple[str, ...]) -> tuple[str, ...] | None:
        for target in sorted(graph.get(node, ())):
            if target == start:
                return (*seen, target)
            if target not in seen:
                found = cycle_from(start, target, (*seen, target))
                if found:
                    return found
        return None

    cycles = [c for m in sorted(graph) if (c := cycle_from(m, m, (m,)))]
    assert cycles == [], cycles


def test_replay_leaves_out_the_roles_of_cdk_helper_functions(
    replays: Callable[..., Replay],
) -> None:
    """A function CloudFormation runs at deploy time (a CDK custom resource: a bucket
    notification's handler, say) is not a principal of the pipeline: its grants are neither
    replayed nor reported unused."""
    replay = replays("instance", ("happy path",))
    template = json.loads(json.dumps(replay.template))
    template["Resources"]["HelperRole"] = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "sts:AssumeRole",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                    }
                ]
            }
        },
    }
    template["Resources"]["HelperPolicy"] = {
        "Type": "AWS::IAM::Policy",
        "Properties": {
            "PolicyDocument": {
                "Statement": [
                    {"Effect": "Allow", "Action": "s3:PutBucketNotification", "Resource": "*"}
                ]
            },
            "Roles": [{"Ref": "HelperRole"}],
        },
    }
    template["Resources"]["Helper"] = {
        "Type": "AWS::Lambda::Function",
        "Properties": {"Handler": "index.handler", "Role": {"Fn::GetAtt": ["HelperRole", "Arn"]}},
    }
    policies = replay.policies("happy path", template)
    assert "function:index" not in policies.principal_arns
    assert iam_policies.unused_grants(policies, replay.requests["happy path"]) == (
        iam_policies.unused_grants(replay.policies("happy path"), replay.requests["happy path"])
    )


# --- cross-account delivery (issue 19) ----------------------------------------------------------


def _without_statement(template: dict[str, Any], sid: str) -> dict[str, Any]:
    """A copy of the data stack's template without the bucket or key policy statement `sid`."""
    changed = json.loads(json.dumps(template))
    found = 0
    for resource in changed["Resources"].values():
        props = resource.get("Properties", {})
        document = props.get("PolicyDocument") or props.get("KeyPolicy")
        if resource["Type"] in ("AWS::S3::BucketPolicy", "AWS::KMS::Key") and document:
            kept = [s for s in document["Statement"] if s.get("Sid") != sid]
            found += len(document["Statement"]) - len(kept)
            document["Statement"] = kept
    assert found == 1, f"{sid}: {found} statements"
    return changed


def test_replay_cross_account_requests_are_evaluated_across_accounts(
    replays: Callable[..., Replay],
) -> None:
    """The bucket and key are the data account's: a pipeline role's request on them is a
    cross-account request, and the bucket and key policies evaluated are the data stack's."""
    replay = replays("cross-account", ("happy path",))
    assert replay.data_template is not None
    policies = replay.policies("happy path")
    assert replay.outcomes["happy path"].statuses == ["SUCCEEDED", "SUCCEEDED"]
    across = [
        r
        for r in replay.requests["happy path"]
        if policies.resource_account(r) == DATA_ACCOUNT
        and policies.principal_arns.get(r.principal, "").split(":")[4] == ACCOUNT
    ]
    kinds = {(r.principal, r.action) for r in across}
    print(f"cross-account requests of the happy path: {len(across)}, {len(kinds)} kinds")
    for expected in [
        (EXPORT_ROLE, "s3:PutObject"),
        ("function:purge_prefix", "s3:DeleteObject"),
        ("function:publish_manifest", "s3:PutObject"),
        ("function:start_export", "kms:CreateGrant"),
        ("function:publish_manifest", "kms:GenerateDataKey"),
    ]:
        assert expected in kinds, expected
    # the bucket's and the key's policies are the data stack's, naming the roles by ARN
    bucket = policies.resource[f"arn:aws:s3:::{policies.names.bucket}"]
    key = policies.resource[policies.names.key_arn]
    principals = {
        json.dumps(s["Principal"])
        for s in bucket["Statement"] + key["Statement"]
        if s["Effect"] == "Allow"
    }
    assert all(f":{ACCOUNT}:role/" in p or f":{DATA_ACCOUNT}:root" in p for p in principals)
    assert replay.denied() == []


# (a statement of the data stack's bucket or key policy, the role it names, an action it grants)
DATA_SIDE_GRANTS = [
    ("ExportRoleS30", EXPORT_ROLE, "s3:PutObject*"),
    ("PurgePrefixS31", "function:purge_prefix", "s3:DeleteObject"),
    ("PublishManifestS32", "function:publish_manifest", "s3:PutObject"),
    ("ValidateInputS30", "function:validate_input", "s3:ListBucket"),
    ("StartExportKey1", "function:start_export", "kms:CreateGrant"),
    ("PublishManifestKey0", "function:publish_manifest", "kms:GenerateDataKey"),
]


@pytest.mark.parametrize(("sid", "principal", "action"), DATA_SIDE_GRANTS)
def test_replay_cross_account_fails_without_the_data_accounts_grant(
    replays: Callable[..., Replay], sid: str, principal: str, action: str
) -> None:
    """Done-when of issue 19: a grant removed from the data account's bucket or key policy
    fails the replay, though the pipeline's IAM policy still allows it."""
    replay = replays("cross-account", ("happy path",))
    assert replay.data_template is not None
    data = _without_statement(replay.data_template, sid)

    denied = replay.denied(lambda scenario: replay.policies(scenario, data_template=data))

    assert denied, f"{sid} removed from the data stack went unnoticed"
    assert all(f"] ImplicitlyDenied: {principal}: " in line for line in denied), denied
    assert any(f": {principal}: {action.rstrip('*')} on " in line for line in denied), denied


@pytest.mark.parametrize(("sid", "principal", "action"), DATA_SIDE_GRANTS)
def test_replay_cross_account_fails_without_the_pipeline_roles_grant(
    replays: Callable[..., Replay], sid: str, principal: str, action: str
) -> None:
    """Done-when of issue 19: the same grant removed from the pipeline role's IAM policy fails
    the replay, though the data account's policy still allows it (both sides must allow)."""
    replay = replays("cross-account", ("happy path",))

    def without(scenario: str) -> Policies:
        return replay.policies(scenario).drop_statement(principal, action)

    denied = replay.denied(without)

    assert denied, f"{principal}'s {action} removed from its IAM policy went unnoticed"
    # the action as the policy writes it (the export role's s3:PutObject* is AWS's own)
    requested = action.rstrip("*")
    assert all(f"] ImplicitlyDenied: {principal}: {requested}" in line for line in denied), denied
    assert any(f"] ImplicitlyDenied: {principal}: {requested} on " in line for line in denied)


def test_replay_cross_account_a_bucket_of_that_name_in_another_account_gets_nothing(
    replays: Callable[..., Replay],
) -> None:
    """The bucket's name is known in advance: anyone may make a bucket of that name in their
    own account first. The pipeline roles' S3 statements hold only for the data account's
    bucket (`s3:ResourceAccount`), so even a bucket policy that lets everyone write gets no
    export and no manifest."""
    replay = replays("cross-account", ("happy path",))
    policies = replay.policies("happy path")
    bucket = f"arn:aws:s3:::{policies.names.bucket}"
    writes = [
        r
        for r in replay.requests["happy path"]
        if r.action in ("s3:PutObject", "s3:DeleteObject", "s3:ListBucket")
    ]
    assert {r.principal for r in writes} >= {EXPORT_ROLE, "function:publish_manifest"}
    open_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:*", "Resource": "*"}
        ],
    }
    squatted = policies.replace(
        resource={**policies.resource, bucket: open_policy},
        resource_accounts={**policies.resource_accounts, bucket: "333333333333"},
    )

    decisions = iam_policies.evaluate(writes, squatted)

    assert decisions and all(d.result == "ImplicitlyDenied" for d in decisions), [
        d.request.describe() for d in decisions if d.allowed
    ]
    # the same requests, the same open policy, on the data account's bucket: allowed
    owned = policies.replace(resource={**policies.resource, bucket: open_policy})
    assert all(d.allowed for d in iam_policies.evaluate(writes, owned))
