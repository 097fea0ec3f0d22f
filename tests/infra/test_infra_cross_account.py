"""Cross-account delivery (issue 19): `-c data_account_id=<12 digits>`, with the pipeline's own
account and region explicit (CDK_DEFAULT_ACCOUNT / CDK_DEFAULT_REGION), makes two stacks: the
data stack (bucket, key, Snowflake role, grants) in the data account, the pipeline stack in the
database's account. The IAM replay of both templates is in tests/replay ("cross-account")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.application import Stacks, create_stacks, read_context_file
from infra.config import (
    CONTEXT_KEYS,
    DEFAULTS,
    ENV_ACCOUNT,
    ENV_REGION,
    EXPORT_REGION_DOC,
    ROLE_NAME_MAX,
    ConfigError,
    PipelineConfig,
    load_config,
)
from infra.data_stack import KEY_GRANTS, S3_GRANTS
from tests.infra.conftest import SNOWFLAKE, Synthesized

PIPELINE_ACCOUNT = "111111111111"
DATA_ACCOUNT = "222222222222"
REGION = "eu-west-1"
ENVIRONMENT = {ENV_ACCOUNT: PIPELINE_ACCOUNT, ENV_REGION: REGION}
CROSS = {
    "data_account_id": DATA_ACCOUNT,
    **SNOWFLAKE,
    "snowflake_stage_sqs_arn": "arn:aws:sqs:eu-west-1:123456789001:sf-snowpipe-AIDA1234",
}


@dataclass
class TwoStacks:
    stacks: Stacks
    outdir: Path
    synth_error: str | None

    @property
    def config(self) -> PipelineConfig:
        return self.stacks.pipeline.config

    def template(self, which: str) -> dict[str, Any]:
        stack = self.stacks.pipeline if which == "pipeline" else self.stacks.data
        assert stack is not None
        return dict(json.loads((self.outdir / stack.template_file).read_text()))

    def manifest(self) -> dict[str, Any]:
        return dict(json.loads((self.outdir / "manifest.json").read_text()))


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> TwoStacks:
    outdir = tmp_path_factory.mktemp("cdk.out.cross")
    stacks = create_stacks(
        {**read_context_file(), **CROSS}, outdir=str(outdir), environment=ENVIRONMENT
    )
    error = None
    try:
        stacks.app.synth()
    except RuntimeError as err:  # a cdk-nag finding (or another validation)
        error = str(err)
    return TwoStacks(stacks, outdir, error)


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- two stacks ------------------------------------------------------------------------------


def test_two_stacks_in_their_accounts_and_one_region(two: TwoStacks) -> None:
    # Then the manifest has the data stack in the data account, the pipeline in its own, and
    # both in the pipeline's region (the export bucket must be in the snapshot's region)
    artifacts = two.manifest()["artifacts"]
    stacks = {
        name: (artifact["environment"], artifact["properties"].get("stackName", name))
        for name, artifact in artifacts.items()
        if artifact["type"] == "aws:cloudformation:stack"
    }
    assert stacks == {
        "rds-s3-export": (f"aws://{PIPELINE_ACCOUNT}/{REGION}", "rds-s3-export"),
        "rds-s3-export-data": (
            f"aws://{DATA_ACCOUNT}/{REGION}",
            f"rds-s3-export-data-{PIPELINE_ACCOUNT}",
        ),
    }
    # and cdk-nag passes on both stacks (the checks run on the whole app)
    assert two.synth_error is None, two.synth_error


def test_the_pipeline_template_creates_no_bucket_and_no_export_key(two: TwoStacks) -> None:
    pipeline = two.template("pipeline")
    kinds = {resource["Type"] for resource in pipeline["Resources"].values()}
    assert not kinds & {"AWS::S3::Bucket", "AWS::S3::BucketPolicy", "AWS::KMS::Alias"}
    # its own keys encrypt its log groups and its alert topic, none the exports
    for key in _resources(pipeline, "AWS::KMS::Key").values():
        assert "RDS snapshot exports" not in key["Properties"]["Description"]
    # no Snowflake role and no bucket notification: both are the data stack's
    roles = _resources(pipeline, "AWS::IAM::Role").values()
    trusted = [
        statement["Principal"]
        for role in roles
        for statement in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    ]
    assert trusted and all("AWS" not in principal for principal in trusted), trusted
    assert not _resources(pipeline, "Custom::S3BucketNotifications")
    # the functions name the data stack's bucket by its name, the key by its alias ARN
    config = two.config
    start = next(
        r
        for r in _resources(pipeline, "AWS::Lambda::Function").values()
        if r["Properties"]["Handler"] == "rds_s3_export.steps.start_export.lambda_handler"
    )
    variables = start["Properties"]["Environment"]["Variables"]
    assert variables["EXPORT_BUCKET"] == f"rds-s3-export-{DATA_ACCOUNT}-{REGION}"
    assert variables["EXPORT_KMS_KEY_ARN"] == (
        f"arn:aws:kms:{REGION}:{DATA_ACCOUNT}:alias/rds-s3-export-export"
    )
    assert config.data_bucket_name == variables["EXPORT_BUCKET"]


def test_the_data_template_has_the_bucket_the_key_and_the_snowflake_role(two: TwoStacks) -> None:
    data = two.template("data")
    (bucket,) = [
        b for b in _resources(data, "AWS::S3::Bucket").values() if "BucketName" in b["Properties"]
    ]
    properties = bucket["Properties"]
    assert properties["BucketName"] == two.config.data_bucket_name
    # objects the pipeline account's export role writes belong to the data account
    assert properties["OwnershipControls"] == {
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]
    }
    encryption = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    (alias,) = _resources(data, "AWS::KMS::Alias").values()
    assert alias["Properties"]["AliasName"] == "alias/rds-s3-export-export"
    roles = _resources(data, "AWS::IAM::Role").values()
    assert [r["Properties"].get("RoleName") for r in roles if "RoleName" in r["Properties"]] == [
        "rds-s3-export-snowflake"
    ]
    assert _resources(data, "Custom::S3BucketNotifications")
    outputs = data["Outputs"]
    assert {"BucketName", "KmsKeyArn", "SnowflakeRoleArn", "SnowflakeStageUrl"} <= set(outputs)


# --- the grants ------------------------------------------------------------------------------


def _grants(data: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(bucket or key, statement) of every Allow of the export bucket's and key's policies."""
    for resource in data["Resources"].values():
        if resource["Type"] == "AWS::S3::BucketPolicy":
            bucket = resource["Properties"]["Bucket"]
            if "AccessLog" in json.dumps(bucket):
                continue
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                if statement["Effect"] == "Allow":
                    yield "bucket", statement
        elif resource["Type"] == "AWS::KMS::Key":
            for statement in resource["Properties"]["KeyPolicy"]["Statement"]:
                if statement["Effect"] == "Allow":
                    yield "key", statement


def test_the_grants_name_only_the_pipelines_roles(two: TwoStacks) -> None:
    role_arns = two.config.role_arns()
    principals = {json.dumps(s["Principal"]) for _, s in _grants(two.template("data"))}
    # the data account's own root (its administrators: CDK's default key policy) and the
    # pipeline's roles, one by one; never the pipeline account as a whole
    allowed = {json.dumps({"AWS": arn}) for arn in role_arns.values()}
    allowed.add(json.dumps({"AWS": f"arn:aws:iam::{DATA_ACCOUNT}:root"}))
    assert principals <= allowed, principals - allowed
    assert f"arn:aws:iam::{PIPELINE_ACCOUNT}:root" not in json.dumps(two.template("data"))
    assert {arn.rsplit("/", 1)[1] for arn in role_arns.values()} == {
        "rds-s3-export-rds-export",
        "rds-s3-export-validate-input",
        "rds-s3-export-create-snapshot",
        "rds-s3-export-start-export",
        "rds-s3-export-purge-prefix",
        "rds-s3-export-discard-export",
        "rds-s3-export-publish-manifest",
    }
    assert all(
        arn.startswith(f"arn:aws:iam::{PIPELINE_ACCOUNT}:role/") for arn in role_arns.values()
    )


def _identity_actions(
    pipeline: dict[str, Any], config: PipelineConfig
) -> dict[str, dict[str, set[str]]]:
    """role name -> {"bucket"|"key": actions its IAM policies allow on the data stack's bucket
    (and its objects) or key}, read from the pipeline's template."""
    roles = {
        logical_id: r["Properties"]["RoleName"]
        for logical_id, r in _resources(pipeline, "AWS::IAM::Role").items()
        if "RoleName" in r["Properties"]
    }
    keys = f"arn:aws:kms:{REGION}:{DATA_ACCOUNT}:key/*"
    found: dict[str, dict[str, set[str]]] = {}
    for policy in _resources(pipeline, "AWS::IAM::Policy").values():
        for role in policy["Properties"]["Roles"]:
            name = roles.get(role["Ref"])
            if name is None:
                continue
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                if statement["Effect"] != "Allow":
                    continue
                text = json.dumps(statement["Resource"])
                where = (
                    "key" if keys in text else "bucket" if config.data_bucket_name in text else None
                )
                if where:
                    found.setdefault(name, {}).setdefault(where, set()).update(
                        _as_list(statement["Action"])
                    )
    return found


def test_each_role_gets_exactly_the_actions_its_own_policy_uses(two: TwoStacks) -> None:
    """Least privilege on the data side: per role, the bucket policy and the key policy allow
    exactly the actions the role's IAM policy in the pipeline stack allows on them (a request
    across accounts needs both), no more."""
    config = two.config
    names = config.role_names()
    granted: dict[str, dict[str, set[str]]] = {}
    for where, statement in _grants(two.template("data")):
        arn = statement["Principal"]["AWS"]
        if arn.endswith(":root"):
            continue
        name = arn.rsplit("/", 1)[1]
        granted.setdefault(name, {}).setdefault(where, set()).update(_as_list(statement["Action"]))
    assert granted == _identity_actions(two.template("pipeline"), config)
    # the table of infra/data_stack.py covers the roles it names, and only those
    assert set(S3_GRANTS) | set(KEY_GRANTS) == set(names)
    assert granted[names["start_export"]] == {"key": {"kms:DescribeKey", "kms:CreateGrant"}}


def test_create_grant_only_for_aws_resources(two: TwoStacks) -> None:
    statements = [
        s for _, s in _grants(two.template("data")) if "kms:CreateGrant" in _as_list(s["Action"])
    ]
    assert statements
    for statement in statements:
        assert statement["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}


def test_listings_are_limited_to_the_prefixes(two: TwoStacks) -> None:
    for _, statement in _grants(two.template("data")):
        if "s3:ListBucket" in _as_list(statement["Action"]) and "rds-export" not in json.dumps(
            statement["Principal"]
        ):
            assert statement["Condition"] == {"StringLike": {"s3:prefix": ["exports/mydb/*"]}}


# --- without the key: today's template -----------------------------------------------------


def test_without_data_account_id_nothing_is_named_or_placed(default_stack: Synthesized) -> None:
    """Structural half of "without the key, the template is the same as today": no fixed role
    name, no explicit account or region, the bucket and key created in the same stack."""
    assert load_config(DEFAULTS).role_names() == {}
    for resource in default_stack.resources.values():
        if resource["Type"] == "AWS::IAM::Role":
            assert "RoleName" not in resource["Properties"]
    assert default_stack.stack.account.startswith("${Token")  # environment-agnostic
    assert default_stack.stack.region.startswith("${Token")
    kinds = [r["Type"] for r in default_stack.resources.values()]
    assert "AWS::S3::Bucket" in kinds and "AWS::KMS::Alias" in kinds


# --- refused configurations ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "environment", "key", "fragment"),
    [
        ({"data_account_id": "12345"}, ENVIRONMENT, "data_account_id", "12 digits"),
        ({"data_account_id": 12345678901}, ENVIRONMENT, "data_account_id", "12 digits"),
        (
            {"data_account_id": PIPELINE_ACCOUNT},
            ENVIRONMENT,
            "data_account_id",
            "also the pipeline",
        ),
        (
            {"data_account_id": DATA_ACCOUNT, "pipeline_account_id": DATA_ACCOUNT},
            ENVIRONMENT,
            "pipeline_account_id",
            "also the pipeline",
        ),
        (
            {"pipeline_account_id": PIPELINE_ACCOUNT},
            ENVIRONMENT,
            "pipeline_account_id",
            "only with",
        ),
        ({"data_account_id": DATA_ACCOUNT}, {}, "data_account_id", ENV_ACCOUNT),
        (
            {"data_account_id": DATA_ACCOUNT},
            {ENV_ACCOUNT: PIPELINE_ACCOUNT},
            "data_account_id",
            ENV_REGION,
        ),
        ({"data_region": "eu-west-1"}, ENVIRONMENT, "data_region", "data_account_id"),
        (
            {"data_account_id": DATA_ACCOUNT, "bucket_name": "acme-exports"},
            ENVIRONMENT,
            "bucket_name",
            "data stack creates",
        ),
        (
            {
                "data_account_id": DATA_ACCOUNT,
                "kms_key_arn": f"arn:aws:kms:{REGION}:{PIPELINE_ACCOUNT}:key/1234abcd",
            },
            ENVIRONMENT,
            "kms_key_arn",
            "the data stack's key",
        ),
        (
            {"data_account_id": DATA_ACCOUNT, "glue_database": "shop_exports"},
            ENVIRONMENT,
            "glue_database",
            "no grant on the data account's bucket",
        ),
        (
            {"data_account_id": DATA_ACCOUNT, "pipeline_name": "p" * 48},
            ENVIRONMENT,
            "pipeline_name",
            "IAM's 64 characters",
        ),
        (
            {"data_account_id": DATA_ACCOUNT, "pipeline_name": "p" * 41},
            ENVIRONMENT,
            "pipeline_name",
            "S3's 63 characters",
        ),
    ],
)
def test_cross_account_mistakes_are_refused_naming_the_key(
    overrides: dict[str, Any], environment: dict[str, str], key: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({**DEFAULTS, **overrides}, environment)
    assert caught.value.key == key
    assert fragment in str(caught.value)


def test_a_data_stack_in_another_region_is_refused_citing_aws() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(
            {**DEFAULTS, "data_account_id": DATA_ACCOUNT, "data_region": "us-east-1"}, ENVIRONMENT
        )
    assert caught.value.key == "data_region"
    message = str(caught.value)
    assert "snapshot's own region" in message
    assert EXPORT_REGION_DOC in message
    # the same region, said explicitly, is accepted
    config = load_config(
        {**DEFAULTS, "data_account_id": DATA_ACCOUNT, "data_region": REGION}, ENVIRONMENT
    )
    assert (config.account, config.region, config.data_account_id) == (
        PIPELINE_ACCOUNT,
        REGION,
        DATA_ACCOUNT,
    )


def test_the_longest_accepted_pipeline_name_fits_every_role_name() -> None:
    # Given the refusal's own limit: the longest pipeline_name it accepts
    accepted = None
    for length in range(48, 0, -1):
        try:
            accepted = load_config(
                {**DEFAULTS, "data_account_id": DATA_ACCOUNT, "pipeline_name": "p" * length},
                ENVIRONMENT,
            )
            break
        except ConfigError:
            continue
    assert accepted is not None
    # Then every fixed role name is within IAM's limit, and the bucket name at S3's (the
    # tighter of the two here: one character more is refused)
    assert max(len(name) for name in accepted.role_names().values()) <= ROLE_NAME_MAX
    assert len(accepted.data_bucket_name) == 63


def test_the_context_keys_are_documented() -> None:
    assert {"data_account_id", "data_region", "pipeline_account_id"} <= CONTEXT_KEYS
    text = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text()
    for key in ("data_account_id", "data_region", "pipeline_account_id"):
        assert f"| `{key}` |" in text


def test_the_data_stacks_deploy_names_the_pipeline_account_in_context() -> None:
    """Deploying the data stack with the data account's profile, the CLI's account is the
    data account: pipeline_account_id keeps the pipeline's, so both synths agree."""
    context = {**DEFAULTS, "data_account_id": DATA_ACCOUNT, "pipeline_account_id": PIPELINE_ACCOUNT}
    as_pipeline = load_config(context, ENVIRONMENT)
    as_data = load_config(context, {ENV_ACCOUNT: DATA_ACCOUNT, ENV_REGION: REGION})
    assert as_pipeline == as_data
    assert as_data.role_arns()["export_role"] == (
        f"arn:aws:iam::{PIPELINE_ACCOUNT}:role/rds-s3-export-rds-export"
    )


def test_once_the_data_stack_exists_the_pipeline_names_its_key_exactly(
    tmp_path: Path,
) -> None:
    """S3 asks for a key ARN, not an alias, across accounts
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ServerSideEncryptionByDefault.html):
    with kms_key_arn (the data stack's output KmsKeyArn) the functions get that ARN and the
    roles' IAM policies name that key only."""
    key_arn = f"arn:aws:kms:{REGION}:{DATA_ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    stacks = create_stacks(
        {**read_context_file(), "data_account_id": DATA_ACCOUNT, "kms_key_arn": key_arn},
        outdir=str(tmp_path),
        environment=ENVIRONMENT,
    )
    stacks.app.synth()  # cdk-nag passes, or this raises
    text = (tmp_path / stacks.pipeline.template_file).read_text()
    assert f"{DATA_ACCOUNT}:key/*" not in text
    assert ":alias/" not in text
    template = json.loads(text)
    key_statements = [
        statement
        for policy in _resources(template, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if any(str(a).startswith("kms:") for a in _as_list(statement["Action"]))
        and ":kms:" in json.dumps(statement["Resource"])
        and "logs" not in json.dumps(statement["Resource"])
    ]
    assert key_statements
    assert all(statement["Resource"] == key_arn for statement in key_statements), key_statements
    for function in _resources(template, "AWS::Lambda::Function").values():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        if "EXPORT_KMS_KEY_ARN" in variables:
            assert variables["EXPORT_KMS_KEY_ARN"] == key_arn


@pytest.mark.parametrize("which", ["pipeline", "data"])
def test_cfn_lint_and_cdk_nag_pass_on_both_templates(two: TwoStacks, which: str) -> None:
    from cfnlint.api import ManualArgs, lint

    report = json.loads((two.outdir / "validation-report.json").read_text())
    (plugin,) = report["pluginReports"]
    assert (plugin["conclusion"], plugin["violations"]) == ("success", [])
    matches = lint(json.dumps(two.template(which)), config=ManualArgs(regions=[REGION]))
    assert [f"{m.rule.id} {m.message}" for m in matches] == []


def test_an_account_id_may_be_a_json_number() -> None:
    config = load_config({**DEFAULTS, "data_account_id": int(DATA_ACCOUNT)}, ENVIRONMENT)
    assert config.data_account_id == DATA_ACCOUNT


def test_the_pipelines_bucket_statements_hold_for_the_data_accounts_bucket_only(
    two: TwoStacks,
) -> None:
    """The bucket's name is fixed in advance; `s3:ResourceAccount` keeps every S3 statement of
    the pipeline's roles to the data account's bucket of that name."""
    pipeline = two.template("pipeline")
    found = 0
    for policy in _resources(pipeline, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Allow" and any(
                str(a).startswith("s3:") for a in _as_list(statement["Action"])
            ):
                found += 1
                assert statement["Condition"]["StringEquals"] == {
                    "s3:ResourceAccount": DATA_ACCOUNT
                }, statement
    assert found >= 10
