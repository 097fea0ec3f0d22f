"""The pipeline's Lambda code: shared modules here, one handler module per state in `steps/`.

The deployment package is the folder `lambdas/`; each function's handler is
`rds_s3_export.steps.<module>.lambda_handler`. Only the standard library and boto3 are used.
"""
