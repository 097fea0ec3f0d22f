"""The CDK stack of the RDS-to-S3 export pipeline: configuration, constructs, stack."""
