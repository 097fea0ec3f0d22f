"""Cross-account delivery: the data stack, deployed in the data account (`data_account_id`).

It holds what the data platform owns: the export bucket, its KMS key, the Snowflake read-only
role (when its keys are set) and the manifest notification, and the bucket and key policies
that let the pipeline account's roles do exactly what their calls need. The pipeline stack
(infra/stack.py, in the database's account) keeps the functions, the state machine, the
schedule, the export role and the alerts, and names the bucket by its fixed name and the key by
its alias ARN (`PipelineConfig.data_bucket_name`, `data_key_alias_arn`): CloudFormation
references do not cross accounts.

AWS documents that a snapshot export may write to a bucket of another account, with a key of
another account, when the bucket policy and the key policy allow the export role
(https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.html). A request
across accounts needs an Allow on both sides, the caller's IAM policy and the resource's policy
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html),
so each grant here mirrors one statement of the pipeline stack's IAM policies:

* each statement names one pipeline role by its ARN (`PipelineConfig.role_arns`, fixed names),
  never the pipeline account: no other principal of that account gains anything;
* each carries only the actions that role's calls need (`S3_GRANTS`, `KEY_GRANTS`, which follow
  infra/functions.py and the export role in infra/storage.py), and `kms:CreateGrant` only for
  grants RDS makes (`kms:GrantIsForAWSResource`);
* the bucket is bucket-owner-enforced, so what the export role writes belongs to the data
  account, whose Snowflake role can then read it.

KMS and S3 refuse a policy naming a role that does not exist yet
(https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html;
https://repost.aws/knowledge-center/s3-invalid-principal-in-policy-error), so the pipeline
stack, which creates those roles, is deployed first (docs/deploy.md, "Cross-account delivery").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from aws_cdk import CfnOutput, CfnResource, Environment, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import PipelineConfig
from infra.policies import Wildcard
from infra.snowflake import snowflake_side, stage_outputs
from infra.storage import (
    EXPORT_KEY_ACTIONS,
    EXPORT_OBJECT_ACTIONS,
    create_export_bucket,
    create_export_key,
    prefix_objects,
)
from rds_s3_export.manifest import manifest_key

# What a bucket statement applies to: the bucket, the bucket for listings under the prefixes
# only (`s3:prefix`), every object under the prefixes, or the prefixes' manifests.
Target = Literal["bucket", "listing", "objects", "manifests"]


@dataclass(frozen=True)
class Grant:
    """One statement of the bucket policy or key policy for one pipeline role."""

    actions: tuple[str, ...]
    target: Target | None = None  # None: the key (a key policy's Resource is "*")
    conditions: Mapping[str, Mapping[str, Any]] | None = None


# purpose (PipelineConfig.role_names) -> what its calls do on the bucket: the same statements
# as its IAM policy in the pipeline stack (infra/functions.py, infra/storage.py)
S3_GRANTS: Mapping[str, tuple[Grant, ...]] = {
    "export_role": (
        Grant(EXPORT_OBJECT_ACTIONS, "objects"),
        Grant(("s3:ListBucket", "s3:GetBucketLocation"), "bucket"),
    ),
    "validate_input": (Grant(("s3:ListBucket",), "listing"),),
    "create_snapshot": (Grant(("s3:GetObject",), "manifests"),),
    "purge_prefix": (
        Grant(("s3:ListBucket",), "listing"),
        Grant(("s3:GetObject", "s3:DeleteObject"), "objects"),
    ),
    "discard_failed_export": (
        Grant(("s3:ListBucket",), "listing"),
        Grant(("s3:DeleteObject",), "objects"),
    ),
    "publish_manifest": (
        Grant(("s3:ListBucket",), "listing"),
        Grant(("s3:GetObject",), "objects"),
        Grant(("s3:PutObject",), "manifests"),
    ),
}
# purpose -> what its calls do with the key (the other roles read no object and write none)
KEY_GRANTS: Mapping[str, tuple[Grant, ...]] = {
    "export_role": (Grant(EXPORT_KEY_ACTIONS),),
    "create_snapshot": (Grant(("kms:Decrypt",)),),
    "start_export": (
        Grant(("kms:DescribeKey",)),
        # StartExportTask has RDS create a grant on the key for the export
        Grant(("kms:CreateGrant",), conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}}),
    ),
    "purge_prefix": (Grant(("kms:Decrypt",)),),
    "publish_manifest": (Grant(("kms:Decrypt", "kms:GenerateDataKey")),),
}


def _sid(purpose: str, kind: str, index: int) -> str:
    return "".join(part.capitalize() for part in purpose.split("_")) + f"{kind}{index}"


class DataStorage(Construct):
    """The export bucket and key in the data account, and their grants to the pipeline's
    roles (an ExportLocation, as ExportStorage is in the pipeline's stack)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: PipelineConfig) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._key = create_export_key(self, config)
        self._bucket = create_export_bucket(self, self._key, config.data_bucket_name)
        self.bucket_statements: dict[str, list[iam.PolicyStatement]] = {}
        self.key_statements: dict[str, list[iam.PolicyStatement]] = {}
        arns = config.role_arns()
        for purpose, grants in S3_GRANTS.items():
            for index, grant in enumerate(grants):
                statement = self._statement(_sid(purpose, "S3", index), arns[purpose], grant)
                self._bucket.add_to_resource_policy(statement)
                self.bucket_statements.setdefault(purpose, []).append(statement)
        for purpose, grants in KEY_GRANTS.items():
            for index, grant in enumerate(grants):
                statement = self._statement(_sid(purpose, "Key", index), arns[purpose], grant)
                self._key.add_to_resource_policy(statement)
                self.key_statements.setdefault(purpose, []).append(statement)

    @property
    def bucket(self) -> s3.IBucket:
        return self._bucket

    @property
    def key(self) -> kms.IKey:
        return self._key

    def prefix_objects_arn(self, prefix: str) -> Wildcard:
        return prefix_objects(self._bucket, prefix)

    def _resources(self, target: Target | None) -> Sequence[str]:
        prefixes = self._config.s3_prefixes
        if target is None:
            return ["*"]  # in a key policy, "*" is the key itself
        if target in ("bucket", "listing"):
            return [self._bucket.bucket_arn]
        if target == "objects":
            return [self.prefix_objects_arn(p).arn for p in prefixes]
        return [self._bucket.arn_for_objects(manifest_key(p)) for p in prefixes]

    def _statement(self, sid: str, role_arn: str, grant: Grant) -> iam.PolicyStatement:
        conditions: dict[str, Any] = dict(grant.conditions or {})
        if grant.target == "listing":
            patterns = [f"{p}/*" for p in self._config.s3_prefixes]
            conditions["StringLike"] = {"s3:prefix": patterns}
        return iam.PolicyStatement(
            sid=sid,
            principals=[iam.ArnPrincipal(role_arn)],
            actions=list(grant.actions),
            resources=list(self._resources(grant.target)),
            conditions=conditions or None,
        )


class DataStack(Stack):
    """The data account's half of cross-account delivery (see the module docstring)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: PipelineConfig) -> None:
        if not config.cross_account:
            raise ValueError("DataStack needs data_account_id")
        super().__init__(
            scope,
            construct_id,
            stack_name=config.data_stack_name,
            env=Environment(account=config.data_account_id, region=config.region),
            description=(
                f"{config.pipeline_name}: the export bucket and key of the pipeline in account "
                f"{config.account}, and its roles' grants"
            ),
        )
        self.config = config
        self.storage = DataStorage(self, "Storage", config=config)
        self.snowflake, self.manifest_notification = snowflake_side(self, config, self.storage)
        if self.manifest_notification is not None:
            # CDK makes its notification handler depend on its role, which it already names
            # with GetAtt: cfn-lint flags that as redundant (W3005), so the DependsOn goes
            handler = next(
                c for c in self.node.children if c.node.id.startswith("BucketNotificationsHandler")
            )
            cast(CfnResource, handler.node.find_child("Resource")).add_deletion_override(
                "DependsOn"
            )
        bucket = self.storage.bucket.bucket_name
        CfnOutput(self, "BucketName", value=bucket)
        stage_outputs(
            self,
            bucket_name=bucket,
            key_arn=self.storage.key.key_arn,
            prefixes=config.s3_prefixes,
            snowflake=self.snowflake,
        )
