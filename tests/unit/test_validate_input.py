"""validate_input's look at the database, on moto's RDS."""

from __future__ import annotations

from typing import Any

import pytest
from moto.rds.models import rds_backends

from rds_s3_export.errors import InvalidInput, SourceNotFound
from rds_s3_export.inputs import build_config
from rds_s3_export.steps import validate_input

ACCOUNT, REGION = "123456789012", "us-east-1"
DEFAULTS = {"snapshot_prefix": "mysnapshot", "s3_prefix": "exports/writer"}


@pytest.mark.parametrize("source", ["new-snapshot", "latest-automated", "snapshot"])
def test_an_aurora_member_instance_is_refused_for_every_source(rds: Any, source: str) -> None:
    # Given an instance that is a member of cluster mycluster
    config = build_config(
        {
            "db_instance_identifier": "writer",
            "source": source,
            **({"snapshot_identifier": "rds:writer-1"} if source == "snapshot" else {}),
        },
        DEFAULTS,
        {},
    )
    backend = rds_backends[ACCOUNT][REGION]
    before = (sorted(backend.database_snapshots), sorted(backend.cluster_snapshots))

    # When it is checked, Then InvalidInput points at db_cluster_identifier, nothing created
    with pytest.raises(InvalidInput, match="give db_cluster_identifier=mycluster instead"):
        validate_input.check_database(config)
    assert (sorted(backend.database_snapshots), sorted(backend.cluster_snapshots)) == before


def test_the_cluster_itself_passes(rds: Any) -> None:
    config = build_config({"db_cluster_identifier": "mycluster"}, DEFAULTS, {})
    validate_input.check_database(config)  # raises nothing


def test_a_missing_database_is_source_not_found(rds: Any) -> None:
    config = build_config({"db_instance_identifier": "nosuchdb"}, DEFAULTS, {})
    with pytest.raises(SourceNotFound, match="nosuchdb"):
        validate_input.check_database(config)
