"""Fixtures for the stack tests.

Synthesis goes through `infra.application.create_app`, exactly as `app.py` does (cdk.json's
context, the AwsSolutions checks at synth). It is slow (the first synthesis in a process warms
up jsii for ~10 s), so each configuration is synthesised once per test process and shared by
every test that asks for it (session scope: under `pytest -n 2` each worker keeps its own).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, CfnElement, Stack
from aws_cdk.assertions import Template
from constructs import IConstruct

from infra.application import create_app, read_context_file
from infra.functions import STEPS
from infra.stack import RdsS3ExportStack
from infra.workflow import ASL_PATH

REPO = Path(__file__).resolve().parents[2]

# A stand-in ASL file for when statemachine/ has none yet: the stack needs a file to synth.
# The placeholder test skips in that case; every other test still checks the stack.
STAND_IN_TIMEOUT_SECONDS = 129600

# Configurations the tests synthesise (context overrides on top of cdk.json).
CLUSTER = {
    "db_instance_identifier": "",
    "db_cluster_identifier": "analytics-cluster",
    "snapshot_prefix": "analytics",
    "s3_prefix": "exports/analytics",
}
DATABASES = {
    "databases": [
        {"db_instance_identifier": "orders", "s3_prefix": "exports/orders"},
        {
            "db_cluster_identifier": "billing",
            "s3_prefix": "exports/billing",
            "snapshot_prefix": "billing-nightly",
            "source": "latest-automated",
            "export_only": ["billing.public.invoices"],
            "keep_snapshots": "all",
        },
    ],
    "snapshot_prefix": "orders-nightly",
}
EXISTING_KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
EXISTING = {
    "bucket_name": "acme-existing-exports",
    "kms_key_arn": EXISTING_KEY_ARN,
    "alert_email": "data-team@example.com",
    "schedule_enabled": "false",  # as `-c schedule_enabled=false` delivers it
    "schedule_expression": "cron(30 4 ? * MON-FRI *)",
    "schedule_timezone": "Europe/Berlin",
}
SNOWFLAKE = {  # the values DESC INTEGRATION shows
    "snowflake_iam_user_arn": "arn:aws:iam::123456789001:user/abc1-b-self1234",
    "snowflake_external_id": "MYACCOUNT_SFCRole=2_a123456/s0aBCDEfGHIJklmNoPq=",
}
GLUE = {"glue_database": "shop_exports"}  # the Glue catalog (issue 20)
CONFIGURATIONS = {
    "default": {},
    "glue": GLUE,
    "cluster": CLUSTER,
    "databases": DATABASES,
    "existing": EXISTING,
    "snowflake": SNOWFLAKE,
}


def _json_arn(service: str, resource: str) -> dict[str, Any]:
    """An ARN of this stack's partition, region and account, as the template spells it."""
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                f":{service}:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                f":{resource}",
            ],
        ]
    }


@dataclass
class Synthesized:
    """One synthesised configuration: the stack object, its template, the nag report."""

    stack: RdsS3ExportStack
    app: App
    outdir: Path
    synth_error: str | None
    data: dict[str, Any] = field(repr=False)

    @cached_property
    def template(self) -> Template:
        return Template.from_json(self.data)

    @property
    def template_path(self) -> Path:
        return self.outdir / self.stack.template_file

    @cached_property
    def report(self) -> dict[str, Any]:
        path = self.outdir / "validation-report.json"
        return json.loads(path.read_text()) if path.exists() else {}

    @cached_property
    def acknowledgements(self) -> set[tuple[str, str]]:
        """(construct path, rule) of every acknowledgement written into the tree."""
        metadata = json.loads((self.outdir / f"{self.stack.artifact_id}.metadata.json").read_text())
        return {
            (path.lstrip("/"), rule.split("::", 1)[1])
            for path, entries in metadata.items()
            for entry in entries
            if entry["type"] == "aws:cdk:acknowledged-rules"
            for rule in entry["data"]
        }

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.data["Resources"])

    # --- naming things the way the template does --------------------------------------------

    def logical_id(self, construct: IConstruct) -> str:
        """The logical id of `construct` (an L2: its default child)."""
        element = construct if isinstance(construct, CfnElement) else construct.node.default_child
        assert isinstance(element, CfnElement)
        return str(Stack.of(element).resolve(Stack.of(element).get_logical_id(element)))

    def resource(self, construct: IConstruct) -> dict[str, Any]:
        return self.resources[self.logical_id(construct)]

    def ref(self, construct: IConstruct) -> dict[str, str]:
        return {"Ref": self.logical_id(construct)}

    def arn_of(self, construct: IConstruct) -> dict[str, list[str]]:
        return {"Fn::GetAtt": [self.logical_id(construct), "Arn"]}

    def objects_arn(self, bucket: IConstruct, suffix: str) -> dict[str, Any]:
        return {"Fn::Join": ["", [self.arn_of(bucket), suffix]]}

    @staticmethod
    def rds_arn(resource: str) -> dict[str, Any]:
        return _json_arn("rds", resource)

    @staticmethod
    def states_arn(resource: str) -> dict[str, Any]:
        return _json_arn("states", resource)

    # --- policies ----------------------------------------------------------------------------

    def statements(self, policy: IConstruct) -> list[dict[str, Any]]:
        document = self.resource(policy)["Properties"]["PolicyDocument"]
        return list(document["Statement"])

    def identity_statements(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every statement of every IAM policy in the template, with its policy's id."""
        for logical_id, resource in self.resources.items():
            if resource["Type"] == "AWS::IAM::Policy":
                for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                    yield logical_id, statement

    def statements_with(self, action: str, effect: str = "Allow") -> list[dict[str, Any]]:
        return [
            s
            for _, s in self.identity_statements()
            if action in _as_list(s["Action"]) and s["Effect"] == effect
        ]

    def function(self, module: str) -> dict[str, Any]:
        return self.resource(self.stack.functions.functions[module])


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="session")
def as_list() -> Callable[[Any], list[Any]]:
    return _as_list


def stand_in_definition() -> str:
    """A minimal valid ASL using every placeholder the stack provides."""
    states: dict[str, Any] = {}
    names = [step.placeholder for step in STEPS]
    for index, placeholder in enumerate(names):
        state: dict[str, Any] = {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": f"${{{placeholder}}}", "Payload.$": "$"},
        }
        state.update({"Next": names[index + 1]} if index + 1 < len(names) else {"End": True})
        states[placeholder] = state
    return json.dumps(
        {"StartAt": names[0], "TimeoutSeconds": STAND_IN_TIMEOUT_SECONDS, "States": states}
    )


@pytest.fixture(scope="session")
def definition_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real ASL file, or a stand-in while statemachine/ has none."""
    if ASL_PATH.exists():
        return ASL_PATH
    path = tmp_path_factory.mktemp("asl") / "export_pipeline.asl.json"
    path.write_text(stand_in_definition())
    return path


@pytest.fixture(scope="session")
def synth(
    tmp_path_factory: pytest.TempPathFactory, definition_path: Path
) -> Callable[..., Synthesized]:
    """`synth(**context)`: the stack for cdk.json's context plus `context`, cached."""
    cache: dict[str, Synthesized] = {}

    def _synth(**overrides: Any) -> Synthesized:
        key = json.dumps(overrides, sort_keys=True)
        if key not in cache:
            outdir = tmp_path_factory.mktemp("cdk.out")
            app, stack = create_app(
                {**read_context_file(), **overrides},
                outdir=str(outdir),
                definition_path=definition_path,
            )
            error = None
            try:
                app.synth()
            except RuntimeError as err:  # validation failed; the template is still written
                error = str(err)
            data = json.loads((outdir / stack.template_file).read_text())
            cache[key] = Synthesized(stack, app, outdir, error, data)
        return cache[key]

    return _synth


@pytest.fixture(scope="session")
def default_stack(synth: Callable[..., Synthesized]) -> Synthesized:
    """cdk.json's defaults: instance `mydb`, prefix exports/mydb, new bucket and key."""
    return synth()


@pytest.fixture(scope="session")
def cluster_stack(synth: Callable[..., Synthesized]) -> Synthesized:
    return synth(**CLUSTER)


@pytest.fixture(scope="session")
def databases_stack(synth: Callable[..., Synthesized]) -> Synthesized:
    return synth(**DATABASES)


@pytest.fixture(scope="session")
def existing_stack(synth: Callable[..., Synthesized]) -> Synthesized:
    return synth(**EXISTING)


@pytest.fixture(scope="session", params=sorted(CONFIGURATIONS))
def any_stack(request: pytest.FixtureRequest, synth: Callable[..., Synthesized]) -> Synthesized:
    """Each configuration in turn (for properties every configuration must have)."""
    return synth(**CONFIGURATIONS[request.param])
