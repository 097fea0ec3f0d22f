"""Build the CDK app: context in, stack and cdk-nag checks out. Used by app.py and the tests."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from infra.config import ConfigError
from infra.construct import FEATURE_FLAGS, PipelineProps
from infra.data_stack import DataStack
from infra.stack import RdsS3ExportStack
from infra.workflow import ASL_PATH

CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"

# FEATURE_FLAGS (the CDK feature flags the pipeline relies on, infra/construct.py) are set on
# the app too, so that no cdk.json edit can drop them.
__all__ = ["FEATURE_FLAGS", "create_app", "read_context_file"]


def read_context_file(path: Path = CDK_JSON) -> dict[str, Any]:
    """The `context` object of a cdk.json file ({} if the file has none).

    `cdk synth` passes cdk.json's context to the app itself; `python app.py` (make synth) does
    not, so the app reads it too. Context from the CLI (`-c`) still takes precedence.
    """
    if not path.exists():
        return {}
    context = json.loads(path.read_text(encoding="utf-8")).get("context", {})
    if not isinstance(context, dict):
        raise TypeError(f"{path}: 'context' must be an object")
    _refuse_null_keep_snapshots(context)
    return context


def _refuse_null_keep_snapshots(context: Mapping[str, Any]) -> None:
    """CDK drops null context values, so `"keep_snapshots": null` would quietly mean the
    default (3) instead of "keep all": refuse it and point to the spelling that works."""
    entries = [("keep_snapshots", context)]
    databases = context.get("databases")
    if isinstance(databases, list):
        entries += [
            (f"databases[{i}].keep_snapshots", entry)
            for i, entry in enumerate(databases)
            if isinstance(entry, dict)
        ]
    for key, entry in entries:
        if "keep_snapshots" in entry and entry["keep_snapshots"] is None:
            raise ConfigError(
                key, 'null does not survive CDK context; write "all" to keep all snapshots'
            )


@dataclass(frozen=True)
class Stacks:
    """The app and its stacks: the pipeline's, and with data_account_id the data stack."""

    app: App
    pipeline: RdsS3ExportStack
    data: DataStack | None = None


def create_stacks(
    context: Mapping[str, Any] | None = None,
    *,
    outdir: str | None = None,
    definition_path: Path = ASL_PATH,
    environment: Mapping[str, str] | None = None,
) -> Stacks:
    """The app with the pipeline's stack (and, with `data_account_id`, the data stack, in the
    data account) and the AwsSolutions checks registered on both.

    `environment`: where the pipeline's account and region are read from with data_account_id
    (CDK_DEFAULT_ACCOUNT, CDK_DEFAULT_REGION; default: this process's environment). Raises
    ConfigError (naming the key) for a bad context value.
    """
    app = App(context={**FEATURE_FLAGS, **(context or {})}, outdir=outdir)
    props = PipelineProps.from_context(app.node.get_all_context())
    environment = os.environ if environment is None else environment
    config = props.config(environment)
    data = (
        DataStack(app, f"{config.pipeline_name}-data", config=config)
        if config.cross_account
        else None
    )
    pipeline = RdsS3ExportStack(
        app,
        config.pipeline_name,
        props=props,
        definition_path=definition_path,
        environment=environment,
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return Stacks(app, pipeline, data)


def create_app(
    context: Mapping[str, Any] | None = None,
    *,
    outdir: str | None = None,
    definition_path: Path = ASL_PATH,
    environment: Mapping[str, str] | None = None,
) -> tuple[App, RdsS3ExportStack]:
    """The app with the pipeline's stack (see `create_stacks`) and the AwsSolutions checks
    registered.

    Raises ConfigError (naming the key) for a bad context value. `app.synth()` then writes the
    template and fails on any cdk-nag finding that is not acknowledged.
    """
    stacks = create_stacks(
        context, outdir=outdir, definition_path=definition_path, environment=environment
    )
    return stacks.app, stacks.pipeline
