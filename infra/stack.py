"""The app's stack: the pipeline construct (infra/construct.py), named after the pipeline."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import Environment, Stack
from constructs import Construct

from infra.construct import DEFAULT_ID, PipelineProps, RdsSnapshotExportPipeline
from infra.workflow import ASL_PATH


class RdsS3ExportStack(Stack):
    """Scheduled RDS snapshot export to S3 (Parquet), orchestrated by Step Functions.

    It holds the construct under DEFAULT_ID, so the resources keep the logical IDs they had
    before the construct existed; its attributes are the construct's, for the tests.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: PipelineProps,
        definition_path: Path = ASL_PATH,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        config = props.config(environment)
        super().__init__(
            scope,
            construct_id,
            stack_name=config.pipeline_name,
            # explicit only in cross-account delivery (the data account's policies name this
            # account's roles); otherwise environment-agnostic, as before
            env=Environment(account=config.account, region=config.region)
            if config.cross_account
            else None,
        )
        self.pipeline = RdsSnapshotExportPipeline(
            self, DEFAULT_ID, props, definition_path=definition_path, environment=environment
        )
        self.config = self.pipeline.config
        self.storage = self.pipeline.storage
        self.logs_key = self.pipeline.logs_key
        self.functions = self.pipeline.functions
        self.workflow = self.pipeline.workflow
        self.schedules = self.pipeline.schedules
        self.event_triggers = self.pipeline.event_triggers
        self.alerts = self.pipeline.alerts
        self.snowflake = self.pipeline.snowflake
        self.manifest_notification = self.pipeline.manifest_notification
