"""The execution input: every key with bad values ends in InvalidInput naming the key.

`rds_s3_export.inputs.build_config` called directly; tests/pipeline/test_input_validation.py
runs a few bad inputs through the state machine.
"""

from __future__ import annotations

import re
import string
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from infra.config import load_config
from rds_s3_export import rules
from rds_s3_export.errors import InvalidInput
from rds_s3_export.inputs import Config, build_config, check_s3_prefix

# The stack's own defaults, built by the stack's configuration code (not a copy)
DEFAULTS: dict[str, Any] = load_config({}).pipeline_defaults()
MYDB: dict[str, Any] = load_config({}).pipeline_settings()["databases"][0]
OTHER: dict[str, Any] = {
    **MYDB,
    "id": "otherdb",
    "s3_prefix": "exports/other",
    "snapshot_prefix": "othersnap",
}
# RDS identifier rules, written out independently of rds_s3_export.naming
RDS_ID = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|-(?!-))*(?<!-)$")


def build(raw: Any, defaults: dict[str, Any] | None = None, **stack: Any) -> Config:
    return build_config(raw, DEFAULTS if defaults is None else defaults, stack)


def refusal(raw: Any, defaults: dict[str, Any] | None = None, **stack: Any) -> str:
    with pytest.raises(InvalidInput) as refused:
        build(raw, defaults, **stack)
    return str(refused.value)


# --- every key, bad values ------------------------------------------------------------------

BAD: list[tuple[str, dict[str, Any]]] = [
    # (the key the message must start with, the input)
    *[
        ("db_instance_identifier", {"db_instance_identifier": v})
        for v in (5, True, ["mydb"], {"id": "mydb"}, "", None, "a" * 64)
    ],
    *[
        ("db_instance_identifier", {"db_instance_identifier": v})
        for v in ("my_db", "1mydb", "mydb-", "my--db", "my db", "mydb;", "dbé", "-mydb")
    ],
    *[
        ("db_cluster_identifier", {"db_cluster_identifier": v})
        for v in (5, "", "c" * 64, "my_cluster", "cluster-")
    ],
    *[("source", {"source": v}) for v in (5, None, "", "latest", "NEW-SNAPSHOT", "s" * 300)],
    *[
        ("snapshot_identifier", {"source": "snapshot", "snapshot_identifier": v})
        for v in (None, "", 5, "my_snap", "s" * 256, "rds:", "rds:my_db", "9snap")
    ],
    ("snapshot_identifier", {"snapshot_identifier": "mysnap"}),  # without source snapshot
    *[
        ("snapshot_identifier", {"source": "snapshot", "snapshot_identifier": v})
        for v in ("awsbackup:", "awsbackup:job_1", "backup:job-1")
    ],
    *[
        ("snapshot_arn", {"source": "snapshot", "snapshot_arn": v})
        for v in (
            5,
            "mysnap",
            "arn:aws:rds:us-east-1:123456789012:db:mydb",  # a database, not a snapshot
            "arn:aws:rds:us-east-1:123456789012:cluster-snapshot:rds:mydb-1",  # wrong kind
            "arn:aws:rds:us-east-1:12345:snapshot:mysnap",
            "arn:aws:rds:us-east-1:123456789012:snapshot:my_snap",
            "arn:aws:s3:::bucket/snapshot:mysnap",
        )
    ],
    ("snapshot_arn", {"snapshot_arn": "arn:aws:rds:us-east-1:123456789012:snapshot:mysnap"}),
    (
        "snapshot_identifier",
        {
            "source": "snapshot",
            "snapshot_identifier": "mysnap",
            "snapshot_arn": "arn:aws:rds:us-east-1:123456789012:snapshot:mysnap",
        },
    ),
    *[("trigger", {"trigger": v}) for v in (5, None, "", "event", "RDS-EVENT", "schedule")],
    ("source", {"source": "backup"}),  # the stack configures no backup_vault
    (
        "recovery_point_arn",
        {"recovery_point_arn": "arn:aws:rds:us-east-1:123456789012:snapshot:awsbackup:job-1"},
    ),
    *[
        ("snapshot_prefix", {"snapshot_prefix": v})
        for v in (5, None, "", "a" * 232, "a" * 256, "my_prefix", "1prefix", "prefix-", "a--b")
    ],
    *[
        ("s3_prefix", {"s3_prefix": v})
        for v in (
            5,
            None,
            ["exports"],
            "",
            "/",
            "//",
            ".",
            "..",
            "/exports/db",
            "exports:db",
            "s3://bucket/exports",
            "exports db",
            'exports"db',
            "exports\\db",
            "exports`db",
            "exports\ndb",
            "exports\x00db",
            "0\n",
            "exports/db\n",
            "exports//db",
            "exports/./db",
            "exports/../db",
            "a" * 513,
        )
    ],
    *[
        ("export_only", {"export_only": v})
        for v in (
            "shop",
            {"shop": 1},
            [5],
            [""],
            ["a/b"],
            ["a.b.c.d"],
            ["has space"],
            [None],
            ["shop\n"],
        )
    ],
    ("export_only", {"export_only": ["x" * (200 * 1024)]}),
    *[
        ("keep_snapshots", {"keep_snapshots": v})
        for v in ("3", True, -1, 101, 1.5, [], None, "null", "ALL")
    ],
    *[("dry_run", {"dry_run": v}) for v in ("true", 1, None, "yes", [])],
]


@pytest.mark.parametrize(("key", "raw"), BAD, ids=[f"{k}={v[k]!r:.30}" for k, v in BAD])
def test_a_bad_value_is_refused_naming_its_key(key: str, raw: dict[str, Any]) -> None:
    # Given the defaults, When the input gives a bad value for `key`
    message = refusal(raw)
    # Then InvalidInput's message (the execution's Cause) starts with the key
    assert message.startswith(key), message


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({"bogus": 1}, "unknown key(s) bogus;"),
        ({"S3_prefix": "x"}, "unknown key(s) S3_prefix;"),  # the original tool's typo
        ({"dryrun": True, "keep": 1}, "unknown key(s) dryrun, keep;"),
        ({"db_instance_identifier": "a", "db_cluster_identifier": "b"}, "db_instance_identifier"),
    ],
    ids=["unknown", "wrong-case", "two-unknown", "both-databases"],
)
def test_unknown_keys_and_both_databases_are_refused(raw: dict[str, Any], words: str) -> None:
    message = refusal(raw)
    assert message.startswith(words), message
    if "unknown" in words:  # the message lists the keys that are allowed
        assert "allowed keys: db_cluster_identifier, db_instance_identifier" in message


def test_both_databases_name_both_keys() -> None:
    message = refusal({"db_instance_identifier": "a", "db_cluster_identifier": "b"})
    assert message == (
        "db_instance_identifier and db_cluster_identifier are both set; give exactly one"
    )


def test_no_database_at_all_names_both_keys() -> None:
    defaults = {k: v for k, v in DEFAULTS.items() if k != "db_instance_identifier"}
    assert refusal({}, defaults).startswith(
        "db_instance_identifier or db_cluster_identifier is required"
    )


def test_an_empty_database_key_says_it_is_empty_not_that_no_default_exists() -> None:
    message = refusal({"db_instance_identifier": ""})
    assert message.startswith("db_instance_identifier must not be empty")
    assert "no default" not in message


@pytest.mark.parametrize("key", ["snapshot_prefix", "s3_prefix"])
def test_a_required_key_without_a_default_is_refused(key: str) -> None:
    defaults = {k: v for k, v in DEFAULTS.items() if k != key}
    assert refusal({}, defaults).startswith(f"{key} is required")


@pytest.mark.parametrize("raw", [[], "x", None, 5, [{"s3_prefix": "x"}]])
def test_the_input_must_be_a_json_object(raw: Any) -> None:
    assert refusal(raw).startswith("the execution input must be a JSON object")


@pytest.mark.parametrize(
    ("stack", "words"),
    [
        ({"databases": [OTHER]}, "db_instance_identifier 'mydb' is not a database"),
        ({"skipped_tables_policy": "maybe"}, "stack setting skipped_tables_policy"),
        ({"poll_min_seconds": 600}, "stack setting poll_min_seconds"),
        ({"poll_max_seconds": 0}, "stack setting poll_max_seconds"),
        ({"export_timeout_seconds": True}, "stack setting export_timeout_seconds"),
    ],
    ids=["database", "policy", "poll-order", "poll-max", "timeout"],
)
def test_the_stack_settings_bound_what_an_input_may_ask(stack: dict[str, Any], words: str) -> None:
    assert refusal({}, **stack).startswith(words)


# --- what is accepted ---------------------------------------------------------------------------


def test_an_empty_input_takes_every_default() -> None:
    config = build({})
    assert config.database_kind == "instance" and config.database_id == "mydb"
    assert (config.source, config.snapshot_identifier) == ("new-snapshot", None)
    assert (config.snapshot_prefix, config.s3_prefix) == ("mysnapshot", "exports/mydb")
    assert (config.export_only, config.dry_run) == ([], False)
    assert config.keep_snapshots == rules.DEFAULTS["keep_snapshots"]
    assert config.skipped_tables_policy == "warn"


def test_a_given_cluster_replaces_the_default_instance() -> None:
    config = build({"db_cluster_identifier": "mycluster"})
    assert (config.database_kind, config.database_id) == ("cluster", "mycluster")


@pytest.mark.parametrize(
    ("raw", "field", "value"),
    [
        ({"s3_prefix": "exports/db/"}, "s3_prefix", "exports/db"),
        ({"s3_prefix": "a" * 512}, "s3_prefix", "a" * 512),
        ({"keep_snapshots": "all"}, "keep_snapshots", "all"),
        ({"keep_snapshots": 0}, "keep_snapshots", 0),
        ({"keep_snapshots": 100}, "keep_snapshots", 100),
        ({"snapshot_prefix": "a" * 231}, "snapshot_prefix", "a" * 231),
        ({"db_instance_identifier": "MyDB"}, "database_id", "mydb"),
        ({"db_instance_identifier": "a" * 63}, "database_id", "a" * 63),
        ({"export_only": ["shop", "shop.orders", "shop.public", "shop.public.orders"]},
         "export_only", ["shop", "shop.orders", "shop.public", "shop.public.orders"]),
        ({"source": "snapshot", "snapshot_identifier": "rds:mydb-2024-05-01-02-00"},
         "snapshot_identifier", "rds:mydb-2024-05-01-02-00"),
        ({"source": "latest-automated"}, "source", "latest-automated"),
        ({"dry_run": True}, "dry_run", True),
    ],
)  # fmt: skip
def test_good_values_are_accepted(raw: dict[str, Any], field: str, value: Any) -> None:
    assert getattr(build(raw), field) == value


def test_a_run_stays_inside_its_configured_database_set() -> None:
    databases = [MYDB, OTHER]
    # Its own prefixes, with or without naming them, in any case of the identifier
    assert build({}, databases=databases).s3_prefix == "exports/mydb"
    named = build({"db_instance_identifier": "OtherDB"}, {}, databases=databases)
    assert (named.database_id, named.s3_prefix, named.snapshot_prefix) == (
        "otherdb",
        "exports/other",
        "othersnap",
    )
    # Database A with B's prefix, a folder below its own prefix, another snapshot prefix
    for raw, key in (
        ({"s3_prefix": "exports/other"}, "s3_prefix"),
        ({"s3_prefix": "exports/mydb/adhoc"}, "s3_prefix"),
        ({"snapshot_prefix": "othersnap"}, "snapshot_prefix"),
    ):
        assert refusal(raw, databases=databases).startswith(key)
    # Another export_only than configured, unless the stack allows it
    assert refusal({"export_only": ["shop"]}, databases=databases).startswith("export_only")
    allowed = build({"export_only": ["shop"]}, databases=databases, allow_export_only_override=True)
    assert allowed.export_only == ["shop"]


# --- properties -----------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
EXPECTED_TYPE: dict[str, Any] = {
    "db_instance_identifier": str,
    "db_cluster_identifier": str,
    "source": str,
    "snapshot_prefix": str,
    "s3_prefix": str,
    "export_only": list,
    "keep_snapshots": (int, type(None)),
    "dry_run": bool,
    "trigger": str,
}


def _wrong_type(key: str, value: Any) -> bool:
    expected = EXPECTED_TYPE[key]
    if isinstance(value, bool):
        return expected is not bool
    return not isinstance(value, expected)


@hypothesis_settings(max_examples=60, deadline=None)
@given(key=st.sampled_from(sorted(EXPECTED_TYPE)), value=JSON)
def test_any_value_of_the_wrong_type_is_refused_naming_its_key(key: str, value: Any) -> None:
    # Given any JSON value that is not of the key's type
    if not _wrong_type(key, value):
        return
    # When it is given for the key, Then InvalidInput starts with the key
    message = refusal({key: value})
    assert message.startswith(key), message


@hypothesis_settings(max_examples=60, deadline=None)
@given(text=st.text(alphabet=string.printable + "é/", max_size=40))
def test_an_accepted_s3_prefix_is_always_safe(text: str) -> None:
    # Given any text, When it is checked as an S3 prefix, Then it is refused, or what comes
    # back is a non-empty relative path without unsafe characters or segments
    try:
        prefix = check_s3_prefix("s3_prefix", text)
    except InvalidInput as err:
        refused = str(err)
    else:
        refused = ""
    if refused:
        assert refused.startswith("s3_prefix")
        return
    assert prefix and not prefix.startswith("/") and not prefix.endswith("/")
    assert not set(prefix) & set(':\\`"' + string.whitespace)
    assert all(part not in {"", ".", ".."} for part in prefix.split("/"))
    assert prefix == text.rstrip("/")


@hypothesis_settings(max_examples=60, deadline=None)
@given(
    key=st.sampled_from(["db_instance_identifier", "db_cluster_identifier", "snapshot_prefix"]),
    text=st.text(alphabet=string.ascii_letters + string.digits + "-_ .", min_size=1, max_size=70),
)
def test_an_accepted_identifier_is_always_valid_for_rds(key: str, text: str) -> None:
    try:
        config = build({key: text})
    except InvalidInput as err:
        refused = str(err)
    else:
        refused = ""
    if refused:
        assert refused.startswith(key)
        return
    value = config.snapshot_prefix if key == "snapshot_prefix" else config.database_id
    assert RDS_ID.match(value) and len(value) <= (200 if key == "snapshot_prefix" else 63)


def test_the_input_keys_are_the_documented_ones() -> None:
    named = {"snapshot_identifier", "snapshot_arn", "recovery_point_arn"}
    assert frozenset(EXPECTED_TYPE) | named == rules.INPUT_KEYS


# --- export_only: the names RDS can export partially ----------------------------------------
# Latin letters, digits, `$` and `_` only (transcribed from "Considerations" of
# https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.html); lower case
# as in the ExportOnly examples of
# https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_StartExportTask.html
PARTIAL_EXPORT_REFUSED = [
    ("mydb.public.my-table", "'-'"),
    ("mydb.public.café", "'é'"),
    ("my db", "' '"),
    ("shop.public.orders!", "'!'"),
    ("shop..orders", "'database.table'"),
]
PARTIAL_EXPORT_ACCEPTED = ["mydb.public.my_table", "SHOP.Public.Orders", "shop$1", "a.b.c"]


@pytest.mark.parametrize(("name", "named"), PARTIAL_EXPORT_REFUSED)
def test_export_only_names_rds_cannot_export_partially_are_refused(name: str, named: str) -> None:
    # Given an export_only entry with a character outside A-Z, 0-9, $ and _
    # When ValidateInput reads it, Then it refuses, naming the key, the entry and the character
    text = refusal({"export_only": [name]}, allow_export_only_override=True)
    assert text.startswith("export_only") and repr(name) in text and named in text
    # and synth refuses it too, naming the context key
    with pytest.raises(ValueError, match=r"export_only") as caught:
        load_config({"export_only": [name]})
    assert repr(name) in str(caught.value) and named in str(caught.value)


@pytest.mark.parametrize("name", PARTIAL_EXPORT_ACCEPTED)
def test_export_only_names_of_letters_digits_dollar_underscore_are_accepted(name: str) -> None:
    assert build({"export_only": [name]}, allow_export_only_override=True).export_only == [name]
    assert load_config({"export_only": [name]}).databases[0].export_only == (name,)


def test_source_backup_reads_the_stacks_vault_and_a_given_recovery_point() -> None:
    # Given a stack with an AWS Backup vault
    newest = build({"source": "backup"}, backup_vault="nightly")
    assert (newest.source, newest.backup_vault, newest.snapshot_arn) == ("backup", "nightly", None)
    # When a recovery point is named, Then its ARN names the snapshot to export
    point = "arn:aws:rds:us-east-1:123456789012:snapshot:awsbackup:job-1a2b-3c4d"
    named = build({"source": "backup", "recovery_point_arn": point}, backup_vault="nightly")
    assert (named.snapshot_arn, named.snapshot_identifier) == (point, "awsbackup:job-1a2b-3c4d")
    # And a cluster's recovery point must be a cluster snapshot
    cluster = {"db_cluster_identifier": "mycluster", "snapshot_prefix": "c", "s3_prefix": "e/c"}
    message = refusal(
        {**cluster, "source": "backup", "recovery_point_arn": point}, backup_vault="v"
    )
    assert message.startswith("recovery_point_arn") and "cluster-snapshot" in message


@pytest.mark.parametrize(
    ("arn", "kind", "expected"),
    [
        ("arn:aws:rds:us-east-1:123456789012:snapshot:mysnap", "instance", "mysnap"),
        # the ARN of the AWS sample event's snapshot (tests/fixtures/aws_docs/rds_events.py)
        ("arn:aws:rds:us-east-1:123456789012:snapshot:rds:my-db-snapshot", "instance", None),
        ("arn:aws:rds:eu-west-1:123456789012:snapshot:awsbackup:job-1a2b", "instance", None),
        ("arn:aws-cn:rds:cn-north-1:123456789012:cluster-snapshot:Nightly", "cluster", "nightly"),
    ],
)
def test_a_snapshot_arn_names_its_snapshot(arn: str, kind: str, expected: str | None) -> None:
    # Given an RDS snapshot ARN, When a run of source snapshot is given it
    db = {"db_cluster_identifier": "mycluster"} if kind == "cluster" else {}
    config = build({**db, "source": "snapshot", "snapshot_arn": arn, "trigger": "rds-event"})
    # Then the snapshot id is the ARN's resource name, and the ARN is kept to check it against
    assert config.snapshot_identifier == (expected or arn.split(":", 6)[6])
    assert config.snapshot_arn == arn
    assert config.trigger == "rds-event"
