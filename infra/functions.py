"""The pipeline's Lambda functions, one per step, each with only the permissions it uses.

Defaults owned here (the same for every function): the newest Python runtime this CDK version
offers, arm64, one asset built from `lambdas/`, an own IAM role, JSON logs into an own log group
with the configured retention, active X-Ray tracing, and a timeout sized to the step (purge
deletes page after page within its time budget; every other step makes a few API calls).

The calls each function makes are listed in docs/contracts.md ("AWS calls per function"); the
statements below follow that table and scope every RDS action to the configured databases and
their snapshots, every S3 action to the configured prefixes.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from aws_cdk import ArnFormat, CfnResource, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

import rds_s3_export
from infra.catalog import catalog_database, glue_resources
from infra.common import (
    any_snapshot,
    automated_snapshots,
    database_arn,
    depends_on_policies,
    executions_arn,
    log_group,
    own_snapshots,
    state_machine_arn,
)
from infra.config import MEMORY_MB, Database, PipelineConfig
from infra.policies import XRAY_REASON, ScopedPolicy, Wildcard, acknowledge
from infra.storage import ExportStorage
from rds_s3_export.manifest import manifest_key
from rds_s3_export.steps.publish_manifest import EVENT_BUS

LAMBDAS_DIR = Path(__file__).resolve().parent.parent / "lambdas"
# Caches, and the metadata `pip install -e .` may leave beside the package: only the code ships.
ASSET_EXCLUDE = ["**/__pycache__", "**/__pycache__/**", "**/*.pyc", "*.egg-info", "*.egg-info/**"]
RUNTIME = lambda_.Runtime.PYTHON_3_14

# RDS export tasks have no IAM resource type of their own: DescribeExportTasks accepts a
# snapshot or cluster ARN only when the call filters by SourceArn. The pipeline looks its
# tasks up by ExportTaskIdentifier, which IAM authorizes against Resource "*".
DESCRIBE_EXPORT_TASKS_REASON = (
    "AWS requires Resource '*' for rds:DescribeExportTasks called by ExportTaskIdentifier: "
    "export tasks have no IAM resource type (snapshot and cluster ARNs apply only to calls "
    "filtered by SourceArn). The action is read-only."
)


def lambda_code_dir() -> Path:
    """The root of the functions' deployment package, which holds `rds_s3_export/` only.

    In the repository that is lambdas/. From an installed package (another app imports the
    construct) the installed `rds_s3_export` sits in site-packages beside every other package,
    so it is copied alone into a fresh directory. CDK hashes an asset by its files' paths and
    contents, so both give the same asset, and the same template.
    """
    if (LAMBDAS_DIR / "rds_s3_export").is_dir():
        return LAMBDAS_DIR
    staging = Path(tempfile.mkdtemp(prefix="rds-s3-export-lambdas-"))
    shutil.copytree(
        Path(rds_s3_export.__file__).resolve().parent,
        staging / "rds_s3_export",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    return staging


@dataclass(frozen=True)
class Step:
    """One function: its module in lambdas/, what it does, and its timeout."""

    module: str
    construct_id: str
    description: str
    timeout: Duration

    @property
    def placeholder(self) -> str:
        """Its ASL placeholder: the module name in PascalCase + `FunctionArn`."""
        return "".join(part.capitalize() for part in self.module.split("_")) + "FunctionArn"


STEPS: tuple[Step, ...] = (
    Step(
        "validate_input",
        "ValidateInput",
        "Merge the input over the defaults, validate it, plan ids, refuse overlapping runs",
        Duration.seconds(30),
    ),
    Step(
        "create_snapshot",
        "CreateSnapshot",
        "Create a tagged manual snapshot, or pick the latest automated / a named one",
        Duration.seconds(60),
    ),
    Step(
        "describe_status",
        "DescribeStatus",
        "Normalised status of one snapshot or export task, and the seconds to wait",
        Duration.seconds(30),
    ),
    Step(
        "start_export",
        "StartExport",
        "Start the export task of this run's snapshot (adopt its own task on a retry)",
        Duration.seconds(60),
    ),
    Step(
        "purge_prefix",
        "PurgePrefix",
        (
            "Verify the new export, then delete older export folders page after page within "
            "its time budget (the folder the manifest names last)"
        ),
        Duration.minutes(5),
    ),
    Step(
        "discard_failed_export",
        "DiscardFailedExport",
        "Delete the partial files of this run's own FAILED or CANCELED export",
        Duration.seconds(60),
    ),
    Step(
        "publish_manifest",
        "PublishManifest",
        "Write <s3_prefix>/_manifest.json for the new export and send the ready event",
        # lists the whole export folder (pages of 1,000 keys) and reads each data file's footer,
        # 8 at a time, one or two small ranged GETs each
        Duration.minutes(5),
    ),
    Step(
        "update_catalog",
        "UpdateCatalog",
        "Point the pipeline's Glue tables at the new export (with glue_database set)",
        # one GetTables listing, then one Glue call per exported table
        Duration.minutes(2),
    ),
    Step(
        "prune_snapshots",
        "PruneSnapshots",
        "Delete the pipeline's own manual snapshots beyond keep_snapshots",
        Duration.seconds(60),
    ),
)


class PipelineFunctions(Construct):
    """The step functions, their roles, log groups and policies."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PipelineConfig,
        storage: ExportStorage,
        logs_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._logs_key = logs_key
        self._storage = storage
        self._code = lambda_.Code.from_asset(str(lambda_code_dir()), exclude=ASSET_EXCLUDE)
        environments = self._environments()
        self.functions: dict[str, lambda_.Function] = {}
        self.policies: dict[str, ScopedPolicy] = {}
        for step in STEPS:
            function, policy = self._function(step, environments.get(step.module, {}))
            self.functions[step.module] = function
            self.policies[step.module] = policy

        self._allow_validate_input(self.policies["validate_input"])
        self._allow_create_snapshot(self.policies["create_snapshot"])
        self._allow_describe_status(self.policies["describe_status"])
        self._allow_start_export(self.policies["start_export"])
        self._allow_purge_prefix(self.policies["purge_prefix"])
        self._allow_publish_manifest(self.policies["publish_manifest"])
        self._allow_discard_failed_export(self.policies["discard_failed_export"])
        self._allow_prune_snapshots(self.policies["prune_snapshots"])
        self._allow_update_catalog(self.policies["update_catalog"])
        # the catalog's database, only with -c glue_database (infra/catalog.py)
        self.catalog_database = (
            catalog_database(self, "CatalogDatabase", config) if config.glue_database else None
        )

    def role(self, module: str) -> iam.IRole:
        role = self.functions[module].role
        if role is None:  # never: every function is built with its own role
            raise RuntimeError(f"function {module} has no role")
        return role

    @property
    def substitutions(self) -> dict[str, str]:
        """ASL placeholder -> function ARN, for every step."""
        return {step.placeholder: self.functions[step.module].function_arn for step in STEPS}

    # --- building ---------------------------------------------------------------------------

    def _environments(self) -> Mapping[str, dict[str, str]]:
        """Environment variables, built by the configuration (docs/contracts.md)."""
        return self._config.function_environments(
            self._storage.bucket.bucket_name,
            self._storage.export_role.role_arn,
            self._storage.key.key_arn,
        )

    def _function(
        self, step: Step, environment: Mapping[str, str]
    ) -> tuple[lambda_.Function, ScopedPolicy]:
        name = step.construct_id
        role = iam.Role(
            self,
            f"{name}Role",
            # a fixed name only in cross-account delivery: the data account's policies name it
            role_name=self._config.role_names().get(step.module),
            description=f"{self._config.pipeline_name}: {step.module} function",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        )
        logs = log_group(self, f"{name}Logs", self._config.log_retention_days, self._logs_key)
        policy = ScopedPolicy(self, f"{name}Permissions", role)
        policy.allow(["logs:CreateLogStream", "logs:PutLogEvents"], [logs.log_group_arn])
        function = lambda_.Function(
            self,
            name,
            description=f"{self._config.pipeline_name}: {step.description}",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            code=self._code,
            handler=f"rds_s3_export.steps.{step.module}.lambda_handler",
            role=role,
            timeout=step.timeout,
            memory_size=MEMORY_MB,
            environment=dict(environment) or None,
            log_group=logs,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            tracing=lambda_.Tracing.ACTIVE,
        )
        default_policy = role.node.find_child("DefaultPolicy")  # CDK's statement for tracing
        acknowledge(default_policy, "AwsSolutions-IAM5[Resource::*]", XRAY_REASON)
        # Created only once its permissions exist (its first call can write logs, use X-Ray).
        depends_on_policies(
            cast(CfnResource, function.node.default_child), default_policy, policy.policy
        )
        return function, policy

    # --- permissions, one method per function (docs/contracts.md) ----------------------------

    def _databases(self, kind: str) -> list[Database]:
        return [db for db in self._config.databases if db.kind == kind]

    def _snapshots(self, *, automated: bool) -> list[str | Wildcard]:
        found: list[str | Wildcard] = [own_snapshots(self, db) for db in self._config.databases]
        if automated:
            found += [automated_snapshots(self, db) for db in self._config.databases]
        return found

    def _snapshots_of(self, kind: str, *, automated: bool) -> list[str | Wildcard]:
        databases = self._databases(kind)
        found: list[str | Wildcard] = [own_snapshots(self, db) for db in databases]
        if automated:
            found += [automated_snapshots(self, db) for db in databases]
        return found

    def _describe_databases(self, policy: ScopedPolicy) -> None:
        """DescribeDBInstances / DescribeDBClusters on the configured databases only."""
        for kind, action in (
            ("instance", "rds:DescribeDBInstances"),
            ("cluster", "rds:DescribeDBClusters"),
        ):
            databases = self._databases(kind)
            if databases:
                policy.allow([action], [database_arn(self, db) for db in databases])

    def _describe_snapshots(self, policy: ScopedPolicy) -> None:
        """DescribeDB(Cluster)Snapshots: calls filtered by the configured database (its ARN),
        and calls by snapshot id, which may name any snapshot (`source: snapshot`)."""
        for kind, action in (
            ("instance", "rds:DescribeDBSnapshots"),
            ("cluster", "rds:DescribeDBClusterSnapshots"),
        ):
            databases = self._databases(kind)
            if databases:
                policy.allow(
                    [action],
                    [database_arn(self, db) for db in databases] + [any_snapshot(self, kind)],
                )

    def _describe_export_tasks(self, policy: ScopedPolicy) -> None:
        policy.allow(["rds:DescribeExportTasks"], [Wildcard("*", DESCRIBE_EXPORT_TASKS_REASON)])

    def _list_prefixes(self, policy: ScopedPolicy) -> None:
        """s3:ListBucket, only for listings under the configured prefixes."""
        policy.allow(
            ["s3:ListBucket"],
            [self._storage.bucket.bucket_arn],
            conditions=self._storage.s3_conditions(
                {"StringLike": {"s3:prefix": [f"{p}/*" for p in self._config.s3_prefixes]}}
            ),
        )

    def _allow_validate_input(self, policy: ScopedPolicy) -> None:
        self._describe_databases(policy)
        policy.allow(["states:ListExecutions"], [state_machine_arn(self, self._config)])
        policy.allow(["states:DescribeExecution"], [executions_arn(self, self._config)])
        self._list_prefixes(policy)  # the dry run reports what is under the prefix
        self._describe_export_tasks(policy)  # last night's export duration: the polling prior

    def _allow_create_snapshot(self, policy: ScopedPolicy) -> None:
        for kind, action in (
            ("instance", "rds:CreateDBSnapshot"),
            ("cluster", "rds:CreateDBClusterSnapshot"),
        ):
            databases = self._databases(kind)
            if databases:  # the database and the new snapshot are both authorized
                policy.allow(
                    [action],
                    [database_arn(self, db) for db in databases]
                    + self._snapshots_of(kind, automated=False),
                )
        policy.allow(["rds:AddTagsToResource"], self._snapshots(automated=False))
        policy.allow(["rds:ListTagsForResource"], self._snapshots(automated=True))
        self._describe_snapshots(policy)
        # is the run's snapshot the one the manifest names (rds_s3_export.freshness)? Only the
        # manifests are read, SSE-KMS under the export key. No s3:ListBucket: a missing manifest
        # then answers 403 instead of 404, and either way the run exports.
        policy.allow(
            ["s3:GetObject"],
            [
                self._storage.bucket.arn_for_objects(manifest_key(p))
                for p in self._config.s3_prefixes
            ],
            conditions=self._storage.s3_conditions(),
        )
        policy.allow(["kms:Decrypt"], [self._storage.key_resource])
        if self._config.backup_vault:  # source backup (rds_s3_export.backup)
            self._describe_databases(policy)  # the database's ARN, as the vault names it
            policy.allow(
                ["backup:ListRecoveryPointsByBackupVault"],
                [
                    Stack.of(self).format_arn(
                        service="backup",
                        resource="backup-vault",
                        resource_name=self._config.backup_vault,
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )

    def _allow_describe_status(self, policy: ScopedPolicy) -> None:
        self._describe_snapshots(policy)
        self._describe_export_tasks(policy)

    def _allow_start_export(self, policy: ScopedPolicy) -> None:
        # StartExportTask is authorized against the exported snapshot's ARN: a named snapshot
        # may have any name (see any_snapshot).
        kinds = sorted({db.kind for db in self._config.databases})
        policy.allow(["rds:StartExportTask"], [any_snapshot(self, kind) for kind in kinds])
        self._describe_export_tasks(policy)
        # PassRole of the one export role, without an iam:PassedToService condition: the RDS
        # user guide does not document which service StartExportTask passes the role to
        # (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.html),
        # and a guessed value would refuse every export.
        policy.allow(["iam:PassRole"], [self._storage.export_role.role_arn])
        policy.allow(["kms:DescribeKey"], [self._storage.key_resource])
        policy.allow(
            ["kms:CreateGrant"],
            [self._storage.key_resource],
            conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
        )

    def _allow_purge_prefix(self, policy: ScopedPolicy) -> None:
        self._list_prefixes(policy)
        prefixes = [self._storage.prefix_objects_arn(p) for p in self._config.s3_prefixes]
        # the new export's metadata (and HEAD), and <prefix>/_manifest.json (the folder it
        # names is held back): both under the prefix, so no statement of their own
        policy.allow(["s3:GetObject"], prefixes, conditions=self._storage.s3_conditions())
        policy.allow(["s3:DeleteObject"], prefixes, conditions=self._storage.s3_conditions())
        self._never_delete_the_manifest(policy)
        policy.allow(["kms:Decrypt"], [self._storage.key_resource])  # metadata, manifest: SSE-KMS
        self._describe_export_tasks(policy)  # never delete a folder RDS is still writing
        if self._config.glue_database:  # keep every folder a catalog table still points at
            policy.allow(["glue:GetTables"], glue_resources(self, self._config.glue_database))

    def _never_delete_the_manifest(self, policy: ScopedPolicy) -> None:
        """The functions that delete under a prefix never delete its manifest: the code does
        not, and an explicit Deny makes that hold even if the code someday tried."""
        policy.deny(
            ["s3:DeleteObject"],
            [
                self._storage.bucket.arn_for_objects(manifest_key(p))
                for p in self._config.s3_prefixes
            ],
        )

    def _allow_publish_manifest(self, policy: ScopedPolicy) -> None:
        self._list_prefixes(policy)  # the new export's folder
        prefixes = [self._storage.prefix_objects_arn(p) for p in self._config.s3_prefixes]
        # export_info, export_tables_info, and ranged GETs of the data files' Parquet footers
        policy.allow(["s3:GetObject"], prefixes, conditions=self._storage.s3_conditions())
        # the manifest, and nothing else, may be written
        policy.allow(
            ["s3:PutObject"],
            [
                self._storage.bucket.arn_for_objects(manifest_key(p))
                for p in self._config.s3_prefixes
            ],
            conditions=self._storage.s3_conditions(),
        )
        # read the SSE-KMS metadata, write the manifest SSE-KMS under the export key
        policy.allow(["kms:Decrypt", "kms:GenerateDataKey"], [self._storage.key_resource])
        policy.allow(
            ["events:PutEvents"],
            [
                Stack.of(self).format_arn(
                    service="events",
                    resource="event-bus",
                    resource_name=EVENT_BUS,
                    arn_format=ArnFormat.SLASH_RESOURCE_NAME,
                )
            ],
        )

    def _allow_discard_failed_export(self, policy: ScopedPolicy) -> None:
        # It lists and deletes keys in this run's own export folder, under a configured
        # prefix, after DescribeExportTasks said FAILED or CANCELED. It reads no object, so it
        # needs neither s3:GetObject nor kms:Decrypt.
        self._list_prefixes(policy)
        prefixes = [self._storage.prefix_objects_arn(p) for p in self._config.s3_prefixes]
        policy.allow(["s3:DeleteObject"], prefixes, conditions=self._storage.s3_conditions())
        self._never_delete_the_manifest(policy)
        self._describe_export_tasks(policy)

    def _allow_prune_snapshots(self, policy: ScopedPolicy) -> None:
        self._describe_snapshots(policy)
        policy.allow(["rds:ListTagsForResource"], self._snapshots(automated=False))
        for kind, action in (
            ("instance", "rds:DeleteDBSnapshot"),
            ("cluster", "rds:DeleteDBClusterSnapshot"),
        ):
            if self._databases(kind):  # only the pipeline's own, tagged snapshots
                policy.allow(
                    [action],
                    self._snapshots_of(kind, automated=False),
                    conditions={
                        "StringEquals": {
                            "aws:ResourceTag/rds-s3-export:pipeline": self._config.pipeline_name
                        }
                    },
                )
        self._describe_export_tasks(policy)  # never delete a snapshot still being exported

    def _allow_update_catalog(self, policy: ScopedPolicy) -> None:
        """Only with glue_database: without it the function makes no AWS call."""
        if not self._config.glue_database:
            return
        policy.allow(
            ["glue:GetTables", "glue:CreateTable", "glue:UpdateTable", "glue:DeleteTable"],
            glue_resources(self, self._config.glue_database),
        )
        # the manifest the tables are made from (SSE-KMS under the export key)
        policy.allow(
            ["s3:GetObject"],
            [
                self._storage.bucket.arn_for_objects(manifest_key(p))
                for p in self._config.s3_prefixes
            ],
        )
        policy.allow(["kms:Decrypt"], [self._storage.key.key_arn])
