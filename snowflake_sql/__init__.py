"""Snowflake for the export: the setup script, and the load procedure it installs.

``generate`` prints the script from any manifest of the prefix; ``procedure`` (with ``types``
inside it) is the Python body of the stored procedure that loads whatever export
``_manifest.json`` names, each time it runs; ``local`` runs both on fakesnow for the tests and
the demo. Reads manifests and nothing else (never the sandbox). Not named ``snowflake``: that
is the connector's package.
"""
