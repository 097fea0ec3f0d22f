"""IAM replay: every AWS request the pipeline's scenarios make in the sandbox is evaluated against
the synthesised stack's own policies (sandbox/iam_replay.py, docs/sandbox.md "IAM replay").

Each configuration is synthesised once; its sandbox is configured as that stack would configure
its functions (`settings_for`), runs every scenario of the configuration, and the recorded
requests are evaluated in one batch. A configuration passes with 0 denied requests and 0 unused
grants that `ACKNOWLEDGED_UNUSED` does not excuse. `pytest -k replay` runs exactly these tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from infra.application import create_app, read_context_file
from infra.config import PipelineConfig
from sandbox import events as sb_events
from sandbox import iam_replay
from sandbox.backup_sim import BackupSimulation
from sandbox.iam_replay import EXPORT_ROLE, SCHEDULER, STATE_MACHINE, Policies, Request
from sandbox.rds_sim import ExportOutcome, Timing
from sandbox.runtime import ACCOUNT, REGION, Sandbox, Settings
from tests.fixtures.aws_docs import rds_events

pytestmark = pytest.mark.skipif(
    not iam_replay.node_available(), reason="the IAM replay needs node and `npm ci` (make setup)"
)

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
    (STATE_MACHINE, "states:StartExecution"): "Used only when a purge comes near Step "
    "Functions' 25,000 history events and continues in a new execution; "
    "tests/pipeline/test_purge_scale.py forces that, the replay's scenarios do not.",
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
# event triggers on, the schedule a catch-up (latest-automated), AWS Backup as a source
EVENTS = {"snapshot_events": "true", "backup_vault": "nightly", "source": "latest-automated"}
CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "instance": {},
    "cluster": CLUSTER,
    "many": MANY,
    "events": EVENTS,
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
    },
    "cluster": {
        "happy path": happy_path,
        "latest-automated": latest_automated,
        "named snapshot": named_snapshot,
        "retention": retention,
        "failed export": failed_export,
        "overlapping runs": overlapping_runs,
    },
    "many": {"many databases": many_databases, "failed export": failed_export},
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
    names: dict[str, iam_replay.Names]
    outcomes: dict[str, Outcome]

    def policies(self, scenario: str) -> Policies:
        return Policies.from_template(self.template, self.names[scenario])

    def denied(self, policies: Callable[[str], Policies] | None = None) -> list[str]:
        found = []
        for scenario, requests in self.requests.items():
            chosen = (policies or self.policies)(scenario)
            for decision in iam_replay.evaluate(requests, chosen):
                if not decision.allowed:
                    found.append(
                        f"[{scenario}] {decision.result}: {decision.request.describe()}"
                        + (f" {decision.detail}" if decision.detail else "")
                    )
        return found

    def unused(self) -> list[tuple[str, str]]:
        all_requests = [r for requests in self.requests.values() for r in requests]
        policies = self.policies(next(iter(self.requests)))
        return iam_replay.unused_grants(policies, all_requests)


def settings_for(name: str) -> Settings:
    """The sandbox configured with the very context the stack was synthesised from."""
    return Settings(**{**read_context_file(), **CONFIGURATIONS[name]})


@cache
def _synth(name: str, tmp: Path) -> tuple[PipelineConfig, dict[str, Any]]:
    context = {**read_context_file(), **CONFIGURATIONS[name]}
    outdir = tmp / f"cdk.out.{name}"
    app, stack = create_app(context, outdir=str(outdir))
    try:
        app.synth()
    except RuntimeError as err:  # validation findings: the compliance tests report them
        raise AssertionError(f"synthesis of {name} failed: {err}") from err
    return stack.config, json.loads((outdir / stack.template_file).read_text())


def _replay(name: str, tmp: Path, only: tuple[str, ...] = ()) -> Replay:
    config, template = _synth(name, tmp)
    replay = Replay(config, template, {}, {}, {})
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
            replay.names[scenario] = iam_replay.Names(
                ACCOUNT,
                REGION,
                sb.settings.bucket,
                sb.key_arn,
                sb.role_arn,
                dict(sb.function_arns),
                sb.state_machine_arn,
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
    ("events", "event, catch-up, near miss"): [
        "SUCCEEDED",
        "SUCCEEDED UP_TO_DATE",
        "SUCCEEDED NOT_THIS_DATABASE",
    ],
    ("events", "backup job"): ["SUCCEEDED", "SUCCEEDED UP_TO_DATE"],
    ("events", "new snapshots"): ["SUCCEEDED", "FAILED ExportFailed", "SUCCEEDED"],
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
            if not excused:
                unused.append(f"{name}: {principal}: {action}")
    assert denied == [], "denied by the stack's policies:\n" + "\n".join(denied)
    assert unused == [], (
        "granted but used by no scenario (remove the grant, or add it with its reason to "
        "ACKNOWLEDGED_UNUSED):\n" + "\n".join(unused)
    )
    stale = sorted(set(ACKNOWLEDGED_UNUSED) - needed)
    assert stale == [], f"acknowledged but used, or no longer granted: remove {stale}"
    # with the wider snapshot grants, the code is what refuses another database's snapshot
    refused = replays("instance").requests["another database's snapshot"]
    assert not [r for r in refused if r.action == "rds:StartExportTask"]


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
    (decision,) = iam_replay.evaluate([outside], replay.policies("happy path"))
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
