"""The pipeline as a construct (infra/construct.py): its properties, and the documented app.

The example app of docs/deploy.md ("Your own CDK app") is run as another app would run it: from
the package as setuptools lays it out for installation (not the repository), in a directory
outside the repository. Its template must be the one app.py gives for the same settings.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack

from infra.application import read_context_file
from infra.config import CONTEXT_KEYS, DEFAULTS, ConfigError
from infra.construct import FEATURE_FLAGS, PipelineProps, RdsSnapshotExportPipeline

REPO = Path(__file__).resolve().parents[2]
DEPLOY_DOC = REPO / "docs" / "deploy.md"
EXAMPLE_MARKER = "<!-- construct-example:"

# Run by the documented app's process: the example, then what the test needs to know of it.
RUNNER = """
import json, runpy, sys
namespace = runpy.run_path("example.py")
import infra.construct
print(json.dumps({
    "settings": namespace["props"].as_context(),
    "stack": namespace["stack"].artifact_id,
    "construct_module": infra.construct.__file__,
}))
"""


def documented_example() -> str:
    """The python block that follows the marker in docs/deploy.md."""
    text = DEPLOY_DOC.read_text(encoding="utf-8")
    assert EXAMPLE_MARKER in text, "docs/deploy.md lost its construct example"
    match = re.search(r"```python\n(.*?)```", text.split(EXAMPLE_MARKER, 1)[1], re.DOTALL)
    assert match is not None
    return match.group(1)


def test_the_documented_example_is_an_app_of_about_ten_lines() -> None:
    lines = [line for line in documented_example().splitlines() if line.strip()]
    assert len(lines) <= 12, lines
    assert "RdsSnapshotExportPipeline(" in documented_example()


def test_props_are_the_context_keys_with_their_defaults() -> None:
    # Given the properties' names and the defaults they hold
    names = {field.name for field in dataclasses.fields(PipelineProps)}

    # Then they are the context keys and the context's defaults (rules.DEFAULTS)
    assert names == CONTEXT_KEYS
    assert PipelineProps().as_context() == {
        **DEFAULTS,
        "export_only": list(DEFAULTS["export_only"]),
    }


@pytest.mark.parametrize(
    ("props", "key"),
    [
        (PipelineProps(poll_min_seconds=0), "poll_min_seconds"),
        (PipelineProps(s3_prefix="../up"), "s3_prefix"),
        (PipelineProps(snowflake_external_id="MYACCOUNT_SFCRole=2_abc"), "snowflake_iam_user_arn"),
        (PipelineProps(databases=[{"db_instance_identifier": "a"}]), "databases[0].s3_prefix"),
    ],
)
def test_a_bad_property_builds_nothing_and_names_the_property(
    props: PipelineProps, key: str
) -> None:
    stack = Stack(App(), "Existing")
    with pytest.raises(ConfigError) as raised:
        RdsSnapshotExportPipeline(stack, "Pipeline", props)
    assert raised.value.key == key
    assert stack.node.children == []  # refused before anything was added to the stack


def test_props_from_context_refuse_a_misspelt_key_and_leave_cdk_context_out() -> None:
    with pytest.raises(ConfigError) as raised:
        PipelineProps.from_context({"s3prefix": "exports/x"})
    assert raised.value.key == "s3prefix"
    props = PipelineProps.from_context(
        {"@aws-cdk/core:enablePartitionLiterals": True, "schedule_enabled": "false"}
    )
    # as `-c schedule_enabled=false` gives it: the string reaches load_config, which reads it
    assert props.schedule_enabled == "false"
    assert props.config().schedule_enabled is False


def documented_settings(code: str) -> dict[str, Any]:
    """The keyword arguments of the example's `PipelineProps(...)`, read without running it."""
    (call,) = [
        node
        for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "PipelineProps"
    ]
    return {str(kw.arg): ast.literal_eval(kw.value) for kw in call.keywords}


def test_the_documented_app_from_the_installed_package_gives_app_py_template(
    tmp_path: Path, synth: Callable[..., Any]
) -> None:
    # Given the package laid out as an installation lays it out (setuptools' build_py: the
    # packages and package data pyproject.toml names), outside the repository
    lib = tmp_path / "site-packages"
    subprocess.run(  # noqa: S603 (this interpreter, fixed arguments)
        [sys.executable, "-c", "import setuptools; setuptools.setup()", "-q",
         "egg_info", "--egg-base", str(tmp_path), "build_py", "--build-lib", str(lib)],
        cwd=REPO, check=True, capture_output=True,
    )  # fmt: skip
    assert not (lib / "sandbox").exists()  # only what the package ships

    # When the documented app runs there, with this repository's feature flags as the cdk CLI
    # passes a cdk.json's context (CDK_CONTEXT_JSON)
    app_dir, outdir = tmp_path / "my-app", tmp_path / "cdk.out"
    app_dir.mkdir()
    code = documented_example()
    (app_dir / "example.py").write_text(code, encoding="utf-8")
    flags = {k: v for k, v in read_context_file().items() if k not in CONTEXT_KEYS}
    env = {
        **os.environ,
        "PYTHONPATH": str(lib),
        "CDK_OUTDIR": str(outdir),
        "CDK_CONTEXT_JSON": json.dumps(flags),
    }
    example_app = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", RUNNER], cwd=app_dir, env=env, stdout=subprocess.PIPE
    )
    # (meanwhile, app.py's template for the same settings: cdk.json with them as -c overrides)
    settings = documented_settings(code)
    assert settings  # the example sets something, so "the same settings" means something
    expected = synth(**settings).data
    stdout, _ = example_app.communicate(timeout=300)
    assert example_app.returncode == 0
    ran = json.loads(stdout.decode().strip().splitlines()[-1])
    assert Path(ran["construct_module"]).is_relative_to(lib)  # not the repository's copy
    assert ran["settings"] == PipelineProps(**settings).as_context()
    example = json.loads((outdir / f"{ran['stack']}.template.json").read_text())

    # Then its template is app.py's
    differing = sorted(
        key
        for key in set(example["Resources"]) | set(expected["Resources"])
        if example["Resources"].get(key) != expected["Resources"].get(key)
    )
    assert differing == []
    assert example == expected


def test_props_given_as_cli_strings_read_as_the_context_reads_them() -> None:
    # `-c export_only='["a.b"]'` and `-c databases='[...]'` arrive as JSON text
    props = PipelineProps(
        export_only='["sales.public"]',
        databases='[{"db_instance_identifier": "orders", "s3_prefix": "exports/orders"}]',  # type: ignore[arg-type]
    )
    config = props.config()
    assert config.databases[0].identifier == "orders"
    assert PipelineProps(export_only='["sales.public"]').config().databases[0].export_only == (
        "sales.public",
    )


def test_the_construct_keeps_its_feature_flags_in_an_app_that_sets_others() -> None:
    # Given an app made by `cdk init` (policies minimised) that also turned the other flag off
    app = App(
        context={
            "@aws-cdk/aws-iam:minimizePolicies": True,
            "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": False,
        }
    )
    pipeline = RdsSnapshotExportPipeline(Stack(app, "Existing"), "Default")

    # Then the pipeline's resources see the flags it relies on, the rest of the app its own
    for flag, value in FEATURE_FLAGS.items():
        assert pipeline.storage.node.try_get_context(flag) is value
        assert app.node.try_get_context(flag) is not value
