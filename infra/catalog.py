"""The Glue database of the catalog (`-c glue_database=<name>`) and the ARNs its grants name.

The database is created with the stack (AWS::Glue::Database); its tables are the pipeline's
own, written by the UpdateCatalog function after each export (rds_s3_export.catalog). Glue
authorizes a table call against the catalog, the database and the table, so each grant names
all three (https://docs.aws.amazon.com/glue/latest/dg/glue-specifying-resource-arns.html).
Deleting the stack deletes the database and its table definitions, never the exported data.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_glue as glue
from constructs import Construct

from infra.config import PipelineConfig
from infra.policies import Wildcard

TABLES_REASON = (
    "The Glue tables are named after the exported tables, which change from night to night "
    "(and are unknown at deploy time): table/<glue_database>/* is every table of the "
    "pipeline's own database and of no other. The function changes only the tables it marked "
    "as its own (rds_s3_export.catalog.owned)."
)


def catalog_database(
    scope: Construct, construct_id: str, config: PipelineConfig
) -> glue.CfnDatabase:
    """AWS::Glue::Database named `glue_database` in this account's catalog."""
    if not config.glue_database:
        raise ValueError("no glue_database configured")
    return glue.CfnDatabase(
        scope,
        construct_id,
        catalog_id=Stack.of(scope).account,
        database_input=glue.CfnDatabase.DatabaseInputProperty(
            name=config.glue_database,
            description=(
                f"{config.pipeline_name}: one table per exported table, pointing at the newest "
                "export (rds-s3-export)"
            ),
        ),
    )


def _arn(scope: Construct, resource: str, name: str | None = None) -> str:
    return Stack.of(scope).format_arn(
        service="glue",
        resource=resource,
        resource_name=name,
        arn_format=ArnFormat.SLASH_RESOURCE_NAME if name else ArnFormat.NO_RESOURCE_NAME,
    )


def glue_resources(scope: Construct, database: str) -> list[str | Wildcard]:
    """The catalog, the database, and every table of the database."""
    return [
        _arn(scope, "catalog"),
        _arn(scope, "database", database),
        Wildcard(_arn(scope, "table", f"{database}/*"), TABLES_REASON),
    ]
