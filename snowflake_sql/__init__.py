"""Snowflake SQL for the export: tables, a replace-style load and the nightly task.

Generated from the export's manifest (``lambdas/rds_s3_export/manifest.py``). Not named
``snowflake``: that is the connector's package.
"""
