"""The local sandbox: the pipeline on moto's in-memory AWS, no AWS account needed.

It imports the very modules that Lambda runs (`rds_s3_export`, installed in `.venv` by
`make setup` from `lambdas/`), executes the real ASL file and enforces the AWS limits that moto
does not check (see docs/sandbox.md).
"""
