"""``python -m sandbox.snowflake_night [snowflake_sql options]``: run one night of the pipeline
on the local sandbox (moto) and print the Snowflake SQL for the ``_manifest.json`` its
PublishManifest step wrote.

The sandbox hands the manifest to ``snowflake_sql`` (which reads manifests and never imports
the sandbox). What ``make snowflake-sql`` runs when no ``MANIFEST`` is given.
"""

from __future__ import annotations

import sys
from typing import Any

from sandbox.rds_sim import Timing
from sandbox.runtime import Sandbox
from snowflake_sql.__main__ import main as snowflake_sql_main


def sandbox_manifest() -> dict[str, Any]:
    """Run one sandbox night and read the ``_manifest.json`` its PublishManifest step wrote."""
    timing = Timing(snapshot_seconds=300, export_starting_seconds=120, export_running_seconds=600)
    print("running one night of the pipeline on the local sandbox (moto)", file=sys.stderr)
    with Sandbox(timing=timing) as sb:
        sb.add_instance("mydb")
        result = sb.run({})
        if result.status != "SUCCEEDED" or not result.output:
            raise SystemExit(f"sandbox run {result.status}: {result.error} {result.cause}")
        manifest = sb.manifest()
        if manifest is None:
            raise SystemExit("the sandbox run succeeded but wrote no _manifest.json")
        return manifest


def main(argv: list[str] | None = None) -> int:
    return snowflake_sql_main(argv, manifest=sandbox_manifest())


if __name__ == "__main__":
    raise SystemExit(main())
