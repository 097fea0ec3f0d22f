"""The pipeline as a construct: typed properties in, every resource of the pipeline out.

`RdsSnapshotExportPipeline` is what another CDK app imports (docs/deploy.md, "Your own CDK
app"); this repository's own app puts it in `RdsS3ExportStack` (infra/stack.py), so there is one
way the pipeline is built. Its properties (`PipelineProps`) are the CDK context keys of
docs/deploy.md, with the same names and defaults (rules.DEFAULTS), and they are checked by the
same code (`infra.config.load_config`): a bad property raises `ConfigError` naming it.

Logical IDs: CDK leaves a construct whose id is `Default` out of its children's logical IDs
(https://docs.aws.amazon.com/cdk/v2/guide/identifiers.html#identifiers_logical_ids). The app
adds the pipeline under that id, so its resources keep the logical IDs they had when they sat
directly in the stack; an app that does the same gets app.py's template for the same settings.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import jsii
from aws_cdk import CfnOutput, IStableStringProducer, Lazy, Stack
from constructs import Construct

from infra.alerts import PipelineAlerts
from infra.common import logs_key
from infra.config import CONTEXT_KEYS, PipelineConfig, check_known_keys, load_config
from infra.events import PipelineEventTriggers, enabled
from infra.functions import PipelineFunctions
from infra.schedule import PipelineSchedules
from infra.snowflake import (
    ManifestNotification,
    SnowflakeAccess,
    snowflake_side,
    stage_outputs,
)
from infra.storage import ExportStorage
from infra.workflow import ASL_PATH, ExportWorkflow

# The construct id under which the app adds the pipeline: it keeps the logical IDs the
# resources had before the construct existed (see the module's docstring).
DEFAULT_ID: Final = "Default"

# CDK feature flags the pipeline relies on. The construct sets them on itself, so they hold for
# its resources whatever the enclosing app's cdk.json says.
FEATURE_FLAGS: Final[Mapping[str, Any]] = {
    # S3 access-log delivery is granted by a bucket policy, not the legacy LogDeliveryWrite ACL
    # (the log bucket has ACLs disabled).
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
    # one statement per grant, never merged: the cdk-nag acknowledgements, the security review
    # and the IAM replay read them one by one (docs/decisions.md, "The recommended CDK feature
    # flags, but one"); `cdk init` turns it on for a new app
    "@aws-cdk/aws-iam:minimizePolicies": False,
}


@dataclass(frozen=True)
class PipelineProps:
    """The pipeline's settings: one property per CDK context key, same name, same default.

    docs/deploy.md ("Configuration") describes each key; the summary here says what it sets.
    Every property also accepts the string spelling a `-c key=value` gives (`"true"`, `"30"`,
    a JSON list), exactly as the context does. Nothing is checked until the construct is built,
    and then by `infra.config.load_config`, the code that checks the context.
    """

    pipeline_name: str = "rds-s3-export"
    """Names the state machine, its schedule group, roles and log groups (and the app's stack)."""
    db_instance_identifier: str = "mydb"
    """The RDS DB instance to export (or give `db_cluster_identifier`)."""
    db_cluster_identifier: str = ""
    """The Aurora DB cluster to export, instead of an instance."""
    snapshot_prefix: str = "mysnapshot"
    """The pipeline's own snapshots are named `<snapshot_prefix>-<date>`."""
    s3_prefix: str = "exports/mydb"
    """Where the exports land in the bucket; the purge works under it only."""
    source: str = "new-snapshot"
    """Which snapshot a scheduled run exports: new-snapshot, latest-automated or backup."""
    export_only: Sequence[str] = ()
    """Export only these databases, schemas or tables (empty: everything)."""
    keep_snapshots: int | str = 3
    """How many of the pipeline's own snapshots to keep, or "all"."""
    bucket_name: str = ""
    """An existing bucket to export to (empty: the construct creates one)."""
    kms_key_arn: str = ""
    """An existing KMS key for the exports (empty: the construct creates one)."""
    schedule_expression: str = "cron(0 21 * * ? *)"
    """EventBridge Scheduler expression of the nightly run."""
    schedule_timezone: str = "UTC"
    """IANA time zone the schedule expression is read in."""
    schedule_enabled: bool = True
    """False creates the schedule disabled."""
    poll_min_seconds: int = 30
    """Shortest wait between two looks at the snapshot or the export."""
    poll_max_seconds: int = 300
    """Longest wait between two looks."""
    snapshot_timeout_seconds: int = 4 * 3600
    """How long a run waits for its snapshot."""
    export_timeout_seconds: int = 12 * 3600
    """How long a run waits for its export."""
    skipped_tables_policy: str = "warn"
    """What a table the export skipped does to the run: warn or fail."""
    alert_email: str = ""
    """An address subscribed to the alert topic (AWS e-mails a confirmation link)."""
    log_retention_days: int = 30
    """Retention of the functions' and the state machine's log groups."""
    snowflake_iam_user_arn: str = ""
    """STORAGE_AWS_IAM_USER_ARN of the Snowflake storage integration (with the external id)."""
    snowflake_external_id: str = ""
    """STORAGE_AWS_EXTERNAL_ID of the Snowflake storage integration."""
    snowflake_stage_sqs_arn: str = ""
    """The Snowflake stage's notification queue: told when a manifest is written."""
    databases: Sequence[Mapping[str, Any]] | None = None
    """Several databases, each with its own s3_prefix (None: the one database above)."""
    allow_export_only_override: bool = False
    """A run started by hand may name another export_only than its database's."""
    snapshot_events: bool = False
    """Start a run when RDS reports a new automated snapshot of a configured database."""
    snapshot_events_manual: bool = False
    """With snapshot_events: manual snapshots start a run too."""
    backup_vault: str = ""
    """An AWS Backup vault whose completed jobs start a run (and the `backup` source reads)."""
    notify_success: bool = False
    """A successful run publishes a one-line summary to the alert topic (off: failures only)."""
    glue_database: str = ""
    """A Glue database kept with one table per exported table, at the newest export (Athena)."""
    data_account_id: str = ""
    """Cross-account delivery: the account of the data stack (bucket, key, Snowflake role)."""
    data_region: str = ""
    """The data stack's region: only the pipeline's own is accepted (RDS's rule)."""
    pipeline_account_id: str = ""
    """Cross-account: the pipeline's account, when CDK_DEFAULT_ACCOUNT is the data account's."""

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> PipelineProps:
        """The properties a CDK context gives (keys it does not name keep their default).

        A misspelt key is refused here, as `load_config` refuses it: CDK's own context
        (feature flags and the like) is left out."""
        check_known_keys(context)
        return cls(**{key: context[key] for key in CONTEXT_KEYS if key in context})

    def as_context(self) -> dict[str, Any]:
        """These properties as the CDK context that would set them (every key)."""
        values = asdict(self)
        # sequences as the JSON lists the context holds; a string (a `-c` spelling) unchanged
        if not isinstance(self.export_only, str):
            values["export_only"] = list(self.export_only)
        if isinstance(self.databases, Sequence) and not isinstance(self.databases, str):
            values["databases"] = [
                dict(entry) if isinstance(entry, Mapping) else entry for entry in self.databases
            ]
        return values

    def config(self, environment: Mapping[str, str] | None = None) -> PipelineConfig:
        """The checked configuration; ConfigError names a bad property.

        `environment` (default: this process's) is read only with data_account_id: the
        pipeline's account and region, CDK_DEFAULT_ACCOUNT and CDK_DEFAULT_REGION."""
        return load_config(self.as_context(), os.environ if environment is None else environment)


@jsii.implements(IStableStringProducer)
class _AlertTopicArn:
    """The alert topic's ARN, read when the template is written (the state machine is made
    before the topic, whose failure rule names the state machine)."""

    def __init__(self, pipeline: RdsSnapshotExportPipeline) -> None:
        self._pipeline = pipeline

    def produce(self) -> str:
        return self._pipeline.alerts.topic.topic_arn


class RdsSnapshotExportPipeline(Construct):
    """Scheduled RDS snapshot export to S3 (Parquet), orchestrated by Step Functions.

    Everything docs/deploy.md lists under "What the stack creates", in any stack: the bucket
    and keys (or the given ones), the functions, the state machine, its schedules and event
    triggers, the alert topic, the Snowflake role and the stack outputs. If the stack has no
    description yet, the construct gives it one.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        props: PipelineProps | None = None,
        *,
        definition_path: Path = ASL_PATH,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        self.props = props or PipelineProps()
        # checked before any resource: a bad property builds nothing
        config = self.props.config(environment)
        super().__init__(scope, construct_id)
        for flag, value in FEATURE_FLAGS.items():
            self.node.set_context(flag, value)
        stack = Stack.of(self)
        if stack.template_options.description is None:
            stack.template_options.description = (
                f"{config.pipeline_name}: scheduled RDS snapshot export to S3 as Parquet, "
                "orchestrated by Step Functions"
            )

        self.config = config
        self.storage = ExportStorage(self, "Storage", config=config)
        self.logs_key = logs_key(self, "LogsKey", config)
        self.functions = PipelineFunctions(
            self, "Functions", config=config, storage=self.storage, logs_key=self.logs_key
        )
        self.workflow = ExportWorkflow(
            self,
            "Workflow",
            config=config,
            functions=self.functions,
            logs_key=self.logs_key,
            # the topic is made below, with the rule that watches this state machine
            alert_topic_arn=Lazy.string(_AlertTopicArn(self)),
            definition_path=definition_path,
        )
        self.schedules = PipelineSchedules(
            self, "Schedules", config=config, state_machine=self.workflow.state_machine
        )
        # event triggers: only with -c snapshot_events=true or -c backup_vault=<name>
        self.event_triggers: PipelineEventTriggers | None = None
        if enabled(config):
            self.event_triggers = PipelineEventTriggers(
                self, "EventTriggers", config=config, state_machine=self.workflow.state_machine
            )
        self.alerts = PipelineAlerts(
            self,
            "Alerts",
            config=config,
            state_machine=self.workflow.state_machine,
            dead_letter_queue=self.schedules.dead_letter_queue,
        )
        if self.event_triggers is not None:
            self.alerts.alarm_on_failed_event_starts(self.event_triggers.dead_letter_queue)
        if config.notify_success:
            self.workflow.allow_success_message(self.alerts.topic, self.alerts.key)
        self.snowflake: SnowflakeAccess | None = None
        self.manifest_notification: ManifestNotification | None = None
        if not config.cross_account:  # else the data stack, which holds the bucket, has them
            self.snowflake, self.manifest_notification = snowflake_side(self, config, self.storage)
        self._outputs()

    def _outputs(self) -> None:
        config, bucket = self.config, self.storage.bucket.bucket_name
        state_machine_arn = self.workflow.state_machine.state_machine_arn
        prefixes = config.s3_prefixes
        CfnOutput(self, "StateMachineArn", value=state_machine_arn)
        CfnOutput(self, "BucketName", value=bucket)
        CfnOutput(
            self,
            "S3Prefix",
            value=", ".join(prefixes),
            description="Where exports land in the bucket (one prefix per database)",
        )
        stage_outputs(
            self,
            bucket_name=bucket,
            key_arn=self.storage.key.key_arn,
            prefixes=prefixes,
            snowflake=self.snowflake,
        )
        CfnOutput(self, "AlertTopicArn", value=self.alerts.topic.topic_arn)
        example: dict[str, Any] = (
            {**config.databases[0].execution_input(), "dry_run": True}
            if config.multi_database
            else {"dry_run": True}
        )
        CfnOutput(
            self,
            "StartExecutionCommand",
            value=(
                f"aws stepfunctions start-execution --state-machine-arn {state_machine_arn} "
                f"--input '{json.dumps(example, sort_keys=True)}'"
            ),
            description="Start a dry run by hand (drop dry_run to export for real)",
        )
