"""The stack: composes the constructs and publishes what a user needs to use the pipeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Environment, Stack
from constructs import Construct

from infra.alerts import PipelineAlerts
from infra.common import logs_key
from infra.config import PipelineConfig
from infra.events import PipelineEventTriggers, enabled
from infra.functions import PipelineFunctions
from infra.schedule import PipelineSchedules
from infra.snowflake import ManifestNotification, SnowflakeAccess
from infra.storage import ExportStorage
from infra.workflow import ASL_PATH, ExportWorkflow


class RdsS3ExportStack(Stack):
    """Scheduled RDS snapshot export to S3 (Parquet), orchestrated by Step Functions."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PipelineConfig,
        definition_path: Path = ASL_PATH,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            stack_name=config.pipeline_name,
            description=(
                f"{config.pipeline_name}: scheduled RDS snapshot export to S3 as Parquet, "
                "orchestrated by Step Functions"
            ),
            # explicit only in cross-account delivery (the data account's policies name this
            # account's roles); otherwise environment-agnostic, as before
            env=Environment(account=config.account, region=config.region)
            if config.cross_account
            else None,
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
        self.snowflake: SnowflakeAccess | None = None
        # with data_account_id the data stack has the Snowflake role and the notification
        if (
            config.snowflake_iam_user_arn
            and config.snowflake_external_id
            and not config.cross_account
        ):
            self.snowflake = SnowflakeAccess(
                self,
                "Snowflake",
                config=config,
                storage=self.storage,
                iam_user_arn=config.snowflake_iam_user_arn,
                external_id=config.snowflake_external_id,
            )
        self.manifest_notification: ManifestNotification | None = None
        if config.snowflake_stage_sqs_arn and not config.cross_account:
            self.manifest_notification = ManifestNotification(
                self, "ManifestNotification", config=config, storage=self.storage
            )
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
        CfnOutput(
            self,
            "SnowflakeStageUrl",
            value=", ".join(f"s3://{bucket}/{prefix}/" for prefix in prefixes),
            description="URL for a Snowflake external stage (its storage integration needs "
            "kms:Decrypt on KmsKeyArn)",
        )
        CfnOutput(self, "KmsKeyArn", value=self.storage.key.key_arn)
        if self.snowflake is not None:
            CfnOutput(
                self,
                "SnowflakeRoleArn",
                value=self.snowflake.role.role_arn,
                description="STORAGE_AWS_ROLE_ARN of the Snowflake storage integration",
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
