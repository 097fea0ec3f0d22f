"""infra/config.py: CDK context in, validated configuration out (no CDK involved)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.application import read_context_file
from infra.config import CONTEXT_KEYS, DEFAULTS, ConfigError, load_config
from rds_s3_export.rules import SETTING_KEYS

REPO = Path(__file__).resolve().parents[2]


# A 40-character snapshot prefix fits an instance's snapshot ids, not a cluster's (63 at most)
CLUSTER_40 = {
    "db_instance_identifier": "",
    "db_cluster_identifier": "c1",
    "snapshot_prefix": "p" * 40,
}


FLAGS_DECIDED_OTHERWISE = {"@aws-cdk/aws-iam:minimizePolicies": False}


def recommended_feature_flags() -> dict[str, Any]:
    """The flags aws-cdk-lib ships as recommended for a new app, read from its jsii bundle."""
    import tarfile

    import aws_cdk

    bundle = next((Path(aws_cdk.__file__).parent / "_jsii").glob("aws-cdk-lib@*.jsii.tgz"))
    with tarfile.open(bundle) as archive:
        member = archive.extractfile("package/recommended-feature-flags.json")
        assert member is not None
        return dict(json.load(member))


def context(**overrides: Any) -> dict[str, Any]:
    return {**DEFAULTS, **overrides}


def test_cdk_json_holds_the_users_choices_and_the_recommended_feature_flags() -> None:
    # Given cdk.json's context
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    choices = {key: value for key, value in context.items() if not key.startswith("@")}
    flags = {key: value for key, value in context.items() if key.startswith("@")}

    # Then its own keys are the database a user names, nothing the defaults already say
    assert choices == {
        "db_instance_identifier": "mydb",
        "snapshot_prefix": "mysnapshot",
        "s3_prefix": "exports/mydb",
    }
    assert set(choices) <= CONTEXT_KEYS
    # And the feature flags are the ones this aws-cdk-lib recommends (as `cdk init` writes),
    # but one: IAM statements stay one per grant (docs/decisions.md says why)
    assert flags == {**recommended_feature_flags(), **FLAGS_DECIDED_OTHERWISE}


def test_defaults_describe_one_instance() -> None:
    # When the context holds only the defaults
    config = load_config(DEFAULTS)

    # Then there is one database, the instance mydb, with the documented defaults
    assert not config.multi_database
    (database,) = config.databases
    assert (database.kind, database.identifier) == ("instance", "mydb")
    assert database.s3_prefix == "exports/mydb"
    assert database.snapshot_prefix == "mysnapshot"
    assert database.keep_snapshots == 3
    assert config.bucket_name is None
    assert config.kms_key_arn is None
    assert config.alert_email is None
    assert config.schedule_expression == "cron(0 21 * * ? *)"
    assert config.schedule_enabled is True


def test_missing_keys_fall_back_to_defaults() -> None:
    assert load_config({}) == load_config(DEFAULTS)


def test_cli_strings_are_parsed() -> None:
    # Given values as `-c key=value` delivers them: strings
    config = load_config(
        context(
            schedule_enabled="false",
            poll_min_seconds="45",
            poll_max_seconds="600",
            keep_snapshots="all",
            export_only='["shop.public.orders"]',
            log_retention_days="90",
        )
    )

    # Then each arrives as its type
    assert config.schedule_enabled is False
    assert (config.poll_min_seconds, config.poll_max_seconds) == (45, 600)
    assert config.databases[0].keep_snapshots == "all"
    assert config.databases[0].export_only == ("shop.public.orders",)
    assert config.log_retention_days == 90


def test_databases_list_from_a_cli_string() -> None:
    # Given a databases list passed with -c as JSON text
    value = json.dumps(
        [
            {"db_instance_identifier": "orders", "s3_prefix": "exports/orders"},
            {
                "db_cluster_identifier": "billing",
                "s3_prefix": "exports/billing",
                "snapshot_prefix": "billing",
                "keep_snapshots": "all",
            },
        ]
    )

    # When it is loaded
    config = load_config(context(databases=value))

    # Then each entry is a database; missing keys come from the top-level keys
    assert config.multi_database
    orders, billing = config.databases
    assert (orders.kind, orders.identifier, orders.snapshot_prefix) == (
        "instance",
        "orders",
        "mysnapshot",
    )
    assert orders.keep_snapshots == 3
    assert (billing.kind, billing.identifier, billing.keep_snapshots) == (
        "cluster",
        "billing",
        "all",
    )
    assert config.database_identifiers == ("orders", "billing")


def test_single_database_defaults_and_settings() -> None:
    config = load_config(context())

    # PIPELINE_DEFAULTS is the database's complete input
    assert config.pipeline_defaults() == {
        "db_instance_identifier": "mydb",
        "source": "new-snapshot",
        "snapshot_prefix": "mysnapshot",
        "s3_prefix": "exports/mydb",
        "export_only": [],
        "keep_snapshots": 3,
    }
    assert config.pipeline_settings() == {
        "pipeline_name": "rds-s3-export",
        "poll_min_seconds": 30,
        "poll_max_seconds": 300,
        "snapshot_timeout_seconds": 14400,
        "export_timeout_seconds": 43200,
        "skipped_tables_policy": "warn",
        "databases": [
            {
                "kind": "instance",
                "id": "mydb",
                "source": "new-snapshot",
                "snapshot_prefix": "mysnapshot",
                "s3_prefix": "exports/mydb",
                "export_only": [],
                "keep_snapshots": 3,
            }
        ],
        "allow_export_only_override": False,
    }
    # the single schedule passes {} and lets the defaults apply
    assert config.schedule_input(config.databases[0]) == {}


def test_the_stack_sets_exactly_the_settings_the_validate_function_reads() -> None:
    # PIPELINE_SETTINGS is produced here and read by lambdas/rds_s3_export/inputs.py
    only_when_set = {"backup_vault", "notify_success"}
    assert set(load_config(context()).pipeline_settings()) == SETTING_KEYS - only_when_set
    # backup_vault and notify_success only when set: without them, the functions' environment
    # is unchanged
    with_both = load_config(context(backup_vault="nightly", notify_success="true"))
    assert set(with_both.pipeline_settings()) == SETTING_KEYS
    assert with_both.pipeline_settings()["notify_success"] is True


def test_several_databases_have_no_default_database() -> None:
    config = load_config(
        context(
            databases=[
                {"db_instance_identifier": "orders", "s3_prefix": "exports/orders"},
                {
                    "db_cluster_identifier": "billing",
                    "s3_prefix": "exports/billing",
                    "snapshot_prefix": "billing",
                },
            ]
        )
    )
    assert config.pipeline_defaults() == {}
    assert [d["s3_prefix"] for d in config.pipeline_settings()["databases"]] == [
        "exports/orders",
        "exports/billing",
    ]
    # each schedule passes its database's complete input
    assert config.schedule_input(config.databases[1]) == {
        "db_cluster_identifier": "billing",
        "source": "new-snapshot",
        "snapshot_prefix": "billing",
        "s3_prefix": "exports/billing",
        "export_only": [],
        "keep_snapshots": 3,
    }


def test_cluster_instead_of_instance() -> None:
    config = load_config(context(db_instance_identifier="", db_cluster_identifier="aurora-1"))
    (database,) = config.databases
    assert (database.kind, database.identifier, database.identifier_key) == (
        "cluster",
        "aurora-1",
        "db_cluster_identifier",
    )


def test_trailing_slash_of_a_prefix_is_dropped() -> None:
    assert load_config(context(s3_prefix="exports/mydb/")).databases[0].s3_prefix == "exports/mydb"


@pytest.mark.parametrize(
    ("overrides", "key", "words"),
    [
        # numbers and bounds
        ({"poll_min_seconds": -5}, "poll_min_seconds", "at least 1"),
        ({"poll_max_seconds": "0"}, "poll_max_seconds", "at least 1"),
        ({"poll_min_seconds": 600, "poll_max_seconds": 300}, "poll_min_seconds", "larger"),
        ({"poll_min_seconds": "ten"}, "poll_min_seconds", "whole number"),
        ({"poll_min_seconds": True}, "poll_min_seconds", "whole number"),
        ({"snapshot_timeout_seconds": 10}, "snapshot_timeout_seconds", "at least 60"),
        ({"export_timeout_seconds": "soon"}, "export_timeout_seconds", "whole number"),
        ({"keep_snapshots": -1}, "keep_snapshots", "between 0 and 100"),
        ({"keep_snapshots": 101}, "keep_snapshots", "between 0 and 100"),
        ({"keep_snapshots": "many"}, "keep_snapshots", '"all" to keep every snapshot'),
        ({"keep_snapshots": "null"}, "keep_snapshots", '"all" to keep every snapshot'),
        ({"log_retention_days": 31}, "log_retention_days", "retention"),
        ({"schedule_enabled": "yes"}, "schedule_enabled", "true or false"),
        # unsafe S3 prefixes
        ({"s3_prefix": ""}, "s3_prefix", "empty"),
        ({"s3_prefix": "/"}, "s3_prefix", "empty"),
        ({"s3_prefix": "."}, "s3_prefix", "'.'"),
        ({"s3_prefix": ".."}, "s3_prefix", "'..'"),
        ({"s3_prefix": "/exports/mydb"}, "s3_prefix", "start with '/'"),
        ({"s3_prefix": "exports:mydb"}, "s3_prefix", "only letters"),
        ({"s3_prefix": "exports/mydb/a*b"}, "s3_prefix", "only letters"),
        ({"s3_prefix": "exports//mydb"}, "s3_prefix", "segments"),
        ({"s3_prefix": "exports/../other"}, "s3_prefix", "segments"),
        ({"s3_prefix": "exports/*"}, "s3_prefix", "only letters"),
        ({"s3_prefix": "exports/my db"}, "s3_prefix", "only letters"),
        ({"s3_prefix": 7}, "s3_prefix", "string"),
        # RDS identifiers and the instance/cluster pair
        ({"db_instance_identifier": "My_DB"}, "db_instance_identifier", "not a valid"),
        ({"snapshot_prefix": "night_ly"}, "snapshot_prefix", "not a valid"),
        ({"db_instance_identifier": "1db"}, "db_instance_identifier", "not a valid"),
        ({"db_instance_identifier": "db-"}, "db_instance_identifier", "not a valid"),
        ({"db_instance_identifier": "a--b"}, "db_instance_identifier", "not a valid"),
        ({"db_cluster_identifier": "c1"}, "db_instance_identifier", "both set"),
        ({"db_instance_identifier": ""}, "db_instance_identifier", "is required"),
        ({"snapshot_prefix": "x" * 232}, "snapshot_prefix", "at most 231"),
        (CLUSTER_40, "snapshot_prefix", "at most 39"),
        ({"export_only": [f"shop.t{i:04}" for i in range(400)]}, "export_only", "4096"),
        # the rest
        ({"source": "snapshot"}, "source", "new-snapshot, latest-automated"),
        ({"skipped_tables_policy": "ignore"}, "skipped_tables_policy", "warn, fail"),
        ({"export_only": "shop.orders"}, "export_only", "not valid JSON"),
        ({"export_only": ["shop orders"]}, "export_only", "database.table"),
        ({"export_only": {"a": 1}}, "export_only", "list of strings"),
        ({"bucket_name": "Bad_Bucket"}, "bucket_name", "bucket name"),
        ({"kms_key_arn": "alias/mykey"}, "kms_key_arn", "KMS key ARN"),
        ({"alert_email": "data-team"}, "alert_email", "e-mail"),
        ({"pipeline_name": "1-pipeline"}, "pipeline_name", "start with a letter"),
        ({"pipeline_name": "my_pipeline"}, "pipeline_name", "start with a letter"),
        ({"s3prefix": "exports/x"}, "s3prefix", "did you mean s3_prefix"),
    ],
)
def test_bad_value_names_the_key(overrides: dict[str, Any], key: str, words: str) -> None:
    # When the context holds a bad value
    with pytest.raises(ConfigError) as caught:
        load_config(context(**overrides))

    # Then the error names the key and says what is wrong
    assert caught.value.key == key
    assert f"context key {key}" in str(caught.value)
    assert words in str(caught.value)


@pytest.mark.parametrize(
    "expression",
    [
        "daily",
        "cron(0 21 * * ?)",
        "cron(0 21 * * ? * *)",
        "rate(1 days)",
        "rate(2 hour)",
        "rate(0 minutes)",
        "at(2026-13-01)",
    ],
)
def test_bad_schedule_expression_names_the_key(expression: str) -> None:
    with pytest.raises(ConfigError, match="context key schedule_expression"):
        load_config(context(schedule_expression=expression))


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 21 * * ? *)",
        "cron(30 4 ? * MON-FRI *)",
        "rate(1 day)",
        "rate(12 hours)",
        "at(2026-12-24T18:00:00)",
    ],
)
def test_good_schedule_expressions(expression: str) -> None:
    assert load_config(context(schedule_expression=expression)).schedule_expression == expression


def test_bad_time_zone_names_the_key() -> None:
    with pytest.raises(ConfigError, match="context key schedule_timezone"):
        load_config(context(schedule_timezone="Mars/Olympus_Mons"))


@pytest.mark.parametrize(
    ("databases", "key", "words"),
    [
        ("not json", "databases", "not valid JSON"),
        ({"db_instance_identifier": "a"}, "databases", "list"),
        (["orders"], "databases[0]", "must be an object"),
        ([{"db_instance_identifier": "orders"}], "databases[0].s3_prefix", "required"),
        (
            [{"db_instance_identifier": "orders", "s3_prefix": "x", "bucket": "b"}],
            "databases[0].bucket",
            "not a key",
        ),
        (
            [{"s3_prefix": "exports/orders"}],
            "databases[0].db_instance_identifier",
            "is required",
        ),
        (
            [{"db_instance_identifier": "or_ders", "s3_prefix": "exports/orders"}],
            "databases[0].db_instance_identifier",
            "not a valid",
        ),
        (
            [{"db_instance_identifier": "orders", "s3_prefix": "/"}],
            "databases[0].s3_prefix",
            "empty",
        ),
        (
            [
                {"db_instance_identifier": "a", "s3_prefix": "exports", "snapshot_prefix": "a"},
                {"db_instance_identifier": "b", "s3_prefix": "exports/b", "snapshot_prefix": "b"},
            ],
            "databases[1].s3_prefix",
            "overlaps",
        ),
        (
            [
                {"db_instance_identifier": "a", "s3_prefix": "exports/a"},
                {"db_instance_identifier": "b", "s3_prefix": "exports/b"},
            ],
            "databases[1].snapshot_prefix",
            "overlaps",
        ),
    ],
)
def test_bad_databases_entry_names_the_key(databases: Any, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(context(databases=databases))
    assert caught.value.key == key
    assert words in str(caught.value)


def test_cdk_internal_context_keys_are_ignored() -> None:
    # Given CDK's own context (feature flags, CLI settings) next to the stack's keys
    config = load_config(
        context(
            **{
                "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
                "aws:cdk:enable-path-metadata": True,
            }
        )
    )
    # Then they are not mistaken for misspelt keys
    assert config.pipeline_name == "rds-s3-export"


def test_keep_all_snapshots_has_one_spelling() -> None:
    # "all" survives CDK context (a null would be dropped by jsii): it is the only spelling
    assert load_config(context(keep_snapshots="all")).databases[0].keep_snapshots == "all"
    for other in ("ALL", "null", None, "none"):
        with pytest.raises(ConfigError, match='"all" to keep every snapshot'):
            load_config(context(keep_snapshots=other))


def test_null_keep_snapshots_in_cdk_json_is_refused(tmp_path: Path) -> None:
    # Given a cdk.json that writes null, which CDK context would silently drop
    path = tmp_path / "cdk.json"
    path.write_text(
        json.dumps(
            {
                "context": {
                    "databases": [
                        {"db_instance_identifier": "a", "s3_prefix": "a", "keep_snapshots": None}
                    ]
                }
            }
        )
    )

    # Then reading it fails, naming the entry and the spelling that works
    with pytest.raises(ConfigError, match=r'databases\[0\]\.keep_snapshots: null .* "all"'):
        read_context_file(path)
