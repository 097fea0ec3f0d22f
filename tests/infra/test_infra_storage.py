"""The export bucket, its KMS key and the RDS export role."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Capture, Match


def test_bucket_blocks_all_public_access(default_stack: Any) -> None:
    # Given the default stack, Then the export bucket blocks every kind of public access
    bucket = default_stack.stack.storage.bucket
    default_stack.template.has_resource_properties(
        "AWS::S3::Bucket",
        Match.object_like(
            {
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "BlockPublicPolicy": True,
                    "IgnorePublicAcls": True,
                    "RestrictPublicBuckets": True,
                },
                "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                "LoggingConfiguration": Match.object_like({"LogFilePrefix": "export-bucket/"}),
            }
        ),
    )
    assert default_stack.resource(bucket)["Properties"]["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }


def test_bucket_policy_refuses_requests_without_tls(default_stack: Any) -> None:
    bucket = default_stack.stack.storage.bucket
    both = [default_stack.arn_of(bucket), default_stack.objects_arn(bucket, "/*")]

    # Then the bucket's policy denies every request over plain HTTP or TLS below 1.2
    default_stack.template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": default_stack.ref(bucket),
            "PolicyDocument": Match.object_like(
                {
                    "Statement": Match.array_with(
                        [
                            {
                                "Action": "s3:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                "Effect": "Deny",
                                "Principal": {"AWS": "*"},
                                "Resource": both,
                            },
                            {
                                "Action": "s3:*",
                                "Condition": {"NumericLessThan": {"s3:TlsVersion": 1.2}},
                                "Effect": "Deny",
                                "Principal": {"AWS": "*"},
                                "Resource": both,
                            },
                        ]
                    )
                }
            ),
        },
    )


def test_bucket_encrypts_with_the_export_key(default_stack: Any) -> None:
    storage = default_stack.stack.storage
    properties = default_stack.resource(storage.bucket)["Properties"]

    # Then objects are encrypted SSE-KMS under the stack's export key, with a Bucket Key
    assert properties["BucketEncryption"] == {
        "ServerSideEncryptionConfiguration": [
            {
                "BucketKeyEnabled": True,
                "ServerSideEncryptionByDefault": {
                    "KMSMasterKeyID": default_stack.arn_of(storage.key),
                    "SSEAlgorithm": "aws:kms",
                },
            }
        ]
    }
    # versioning is off on purpose (purged exports must not linger as old versions)
    assert "VersioningConfiguration" not in properties


def test_bucket_and_key_outlive_the_stack(default_stack: Any) -> None:
    storage = default_stack.stack.storage
    for construct in (storage.bucket, storage.key):
        resource = default_stack.resource(construct)
        assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_access_logs_go_to_their_own_locked_down_bucket(default_stack: Any) -> None:
    target = Capture()
    default_stack.template.has_resource_properties(
        "AWS::S3::Bucket",
        Match.object_like(
            {
                "LoggingConfiguration": {
                    "DestinationBucketName": target,
                    "LogFilePrefix": "export-bucket/",
                }
            }
        ),
    )
    logs_bucket = default_stack.resources[target.as_object()["Ref"]]
    assert logs_bucket["DeletionPolicy"] == "Retain"
    assert logs_bucket["Properties"]["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
    assert logs_bucket["Properties"]["BucketEncryption"] == {
        "ServerSideEncryptionConfiguration": [
            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
        ]
    }


def test_key_rotates(default_stack: Any) -> None:
    key = default_stack.stack.storage.key
    assert default_stack.resource(key)["Properties"]["EnableKeyRotation"] is True


def test_key_policy_names_no_role_of_the_stack(default_stack: Any) -> None:
    """KMS requires a key policy's principals to exist and be visible to it ("you might need to
    enforce a delay"): https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html.
    The key keeps CDK's default policy, the account's root delegation; each role's own IAM
    policy grants what it does with the key (the start-export role's CreateGrant only for
    grants RDS makes: tests/infra/test_infra_functions.py)."""
    key = default_stack.stack.storage.key
    statements = default_stack.resource(key)["Properties"]["KeyPolicy"]["Statement"]
    assert statements == [
        {
            "Action": "kms:*",
            "Effect": "Allow",
            "Principal": {
                "AWS": {
                    "Fn::Join": [
                        "",
                        [
                            "arn:",
                            {"Ref": "AWS::Partition"},
                            ":iam::",
                            {"Ref": "AWS::AccountId"},
                            ":root",
                        ],
                    ]
                }
            },
            "Resource": "*",
        }
    ]


def test_export_role_trusts_rds_exports_as_aws_documents(default_stack: Any) -> None:
    """Exactly the trust policy of "Providing access to an Amazon S3 bucket using an IAM role"
    (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.html): no
    condition, since no AWS page says which context keys RDS sends when it assumes the role
    (the IAM replay evaluates the trust with none: tests/replay)."""
    role = default_stack.stack.storage.export_role
    assert default_stack.resource(role)["Properties"]["AssumeRolePolicyDocument"] == {
        "Statement": [
            {
                "Action": "sts:AssumeRole",
                "Effect": "Allow",
                "Principal": {"Service": "export.rds.amazonaws.com"},
            }
        ],
        "Version": "2012-10-17",
    }


def test_export_role_may_touch_only_the_prefix_and_the_key(default_stack: Any) -> None:
    storage = default_stack.stack.storage
    policy = storage.export_role_policy
    assert default_stack.statements(policy) == [
        {
            "Action": ["s3:PutObject*", "s3:GetObject*", "s3:DeleteObject*"],
            "Effect": "Allow",
            "Resource": default_stack.objects_arn(storage.bucket, "/exports/mydb/*"),
        },
        {
            "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
            "Effect": "Allow",
            "Resource": default_stack.arn_of(storage.bucket),
        },
        {
            "Action": [
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:ReEncryptFrom",
                "kms:ReEncryptTo",
                "kms:GenerateDataKey",
                "kms:GenerateDataKeyWithoutPlaintext",
                "kms:DescribeKey",
            ],
            "Effect": "Allow",
            "Resource": default_stack.arn_of(storage.key),
        },
    ]
    # and it is attached to the export role and nothing else
    roles = default_stack.resource(policy)["Properties"]["Roles"]
    assert roles == [default_stack.ref(storage.export_role)]
