"""The local sandbox: the real ASL file and the real handlers on moto's in-memory AWS.

`Sandbox` starts moto (with its Step Functions interpreter executing state machines), creates
what the CDK stack would create (bucket, KMS key, export role, one Lambda function per
`${...FunctionArn}` placeholder of the ASL file, the state machine from that file), installs
the seams (in-process handlers, simulated clock) and the RDS simulation, and runs executions.

No AWS credentials are read: fake ones are set for the duration of the sandbox.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws
from moto.rds.models import rds_backends

from rds_s3_export import aws as handler_aws
from rds_s3_export import clock as handler_clock
from rds_s3_export.inputs import SETTING_KEYS
from sandbox import faults, limits, seams
from sandbox.clock import SimClock
from sandbox.rds_sim import RdsSimulation, Timing

ROOT = Path(__file__).resolve().parent.parent
ASL_PATH = ROOT / "statemachine" / "export_pipeline.asl.json"
REGION = "us-east-1"
ACCOUNT = "123456789012"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9]+)\}")
# Fake credentials for moto (it accepts any): set so that nothing reads the user's real ones.
FAKE_ENV = {
    **dict.fromkeys(("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"), "sandbox"),
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    # never read the user's files: no profile, no real credentials
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


def module_for(placeholder: str) -> str:
    """`CreateSnapshotFunctionArn` -> `create_snapshot` (see docs/contracts.md)."""
    stem = placeholder.removesuffix("FunctionArn")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", stem).lower()


@dataclass
class Settings:
    """What the CDK stack's context would configure."""

    pipeline_name: str = "rds-s3-export"
    bucket: str = "rds-s3-export-sandbox"
    defaults: dict[str, Any] = field(
        default_factory=lambda: {
            "db_instance_identifier": "mydb",
            "source": "new-snapshot",
            "snapshot_prefix": "mysnapshot",
            "s3_prefix": "exports/mydb",
            "export_only": [],
            "keep_snapshots": 2,
        }
    )
    poll_min_seconds: int = 30
    poll_max_seconds: int = 300
    snapshot_timeout_seconds: int = 4 * 3600
    export_timeout_seconds: int = 12 * 3600
    skipped_tables_policy: str = "warn"
    allowed_s3_prefixes: list[str] = field(default_factory=list)
    allowed_databases: list[str] = field(default_factory=list)

    def environment(self, role_arn: str, key_arn: str) -> dict[str, str]:
        return {
            "PIPELINE_DEFAULTS": json.dumps(self.defaults),
            "PIPELINE_SETTINGS": json.dumps(
                {k: v for k, v in asdict(self).items() if k in SETTING_KEYS}
            ),
            "EXPORT_BUCKET": self.bucket,
            "EXPORT_ROLE_ARN": role_arn,
            "EXPORT_KMS_KEY_ARN": key_arn,
        }


@dataclass
class StateRecord:
    name: str
    type: str
    outcome: str  # "ok", or the error name
    real_ms: float


@dataclass
class RunResult:
    name: str
    arn: str
    status: str
    output: dict[str, Any] | None
    error: str | None
    cause: str | None
    states: list[StateRecord]
    simulated_seconds: float
    history: list[dict[str, Any]]

    def visits(self, state: str) -> int:
        return sum(1 for s in self.states if s.name == state)


class Sandbox:
    """`with Sandbox() as sb: sb.run({})` — see the module docstring."""

    def __init__(self, settings: Settings | None = None, timing: Timing | None = None) -> None:
        self.settings = settings or Settings()
        self.clock = SimClock()
        self.faults = faults.FaultInjector()
        self.invocations = seams.InvocationLog()
        self.rds = RdsSimulation(self.clock, lambda: self.client("s3"), timing)
        self._stack = ExitStack()
        self.state_machine_arn = ""
        self.role_arn = ""
        self.key_arn = ""

    # --- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> Sandbox:
        try:
            self._start()
        except BaseException:
            self._stack.close()  # leave no moto mock or patch active behind a failed start
            raise
        return self

    def _start(self) -> None:
        self._stack.enter_context(_environment({**FAKE_ENV}))
        for noisy in ("moto", "botocore", "rds_s3_export"):
            logging.getLogger(noisy).setLevel(logging.CRITICAL)
        faults.install(self.faults)
        self._stack.callback(faults.uninstall, self.faults)
        self._stack.enter_context(limits.installed())
        self._stack.enter_context(
            mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        )
        self._stack.enter_context(
            seams.installed(
                self.clock, self.faults.before_invoke, self.invocations, self.faults.after_invoke
            )
        )
        self._stack.enter_context(self.rds.installed())
        self._install_clock()
        self._provision()

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _install_clock(self) -> None:
        handler_aws.reset_clients()
        handler_clock.set_clock(self.clock.now)
        self._stack.callback(handler_clock.set_clock, None)
        self._stack.callback(handler_aws.reset_clients)

    def reconfigure(self, **changes: Any) -> None:
        """Change stack settings between runs (what a redeploy with new context would do)."""
        for key, value in changes.items():
            if not hasattr(self.settings, key):
                raise AttributeError(f"no stack setting {key!r}")
            setattr(self.settings, key, value)
        os.environ.update(self.settings.environment(self.role_arn, self.key_arn))

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)  # type: ignore[call-overload]

    # --- what the stack would create ----------------------------------------------------
    def _provision(self) -> None:
        iam = self.client("iam")
        trust = {"Version": "2012-10-17", "Statement": []}
        self.role_arn = iam.create_role(
            RoleName="sandbox-export-role", AssumeRolePolicyDocument=json.dumps(trust)
        )["Role"]["Arn"]
        self.key_arn = self.client("kms").create_key(Description="sandbox export key")[
            "KeyMetadata"
        ]["Arn"]
        self.client("s3").create_bucket(Bucket=self.settings.bucket)
        os.environ.update(self.settings.environment(self.role_arn, self.key_arn))

        asl = ASL_PATH.read_text()
        lam = self.client("lambda")
        substitutions: dict[str, str] = {}
        for placeholder in sorted(set(PLACEHOLDER.findall(asl))):
            module = module_for(placeholder)
            arn = lam.create_function(
                FunctionName=f"{self.settings.pipeline_name}-{module.replace('_', '-')}",
                Runtime="python3.13",
                Role=self.role_arn,
                Handler=f"rds_s3_export.steps.{module}.lambda_handler",
                Code={"ZipFile": b"in-process"},
            )["FunctionArn"]
            substitutions[placeholder] = arn
        definition = PLACEHOLDER.sub(lambda m: substitutions[m.group(1)], asl)
        self.state_machine_arn = self.client("stepfunctions").create_state_machine(
            name=self.settings.pipeline_name, definition=definition, roleArn=self.role_arn
        )["stateMachineArn"]

    # --- the database side ----------------------------------------------------------------
    def add_instance(self, identifier: str = "mydb", engine: str = "postgres") -> str:
        return str(
            self.client("rds").create_db_instance(
                DBInstanceIdentifier=identifier,
                DBInstanceClass="db.t3.micro",
                Engine=engine,
                AllocatedStorage=20,
                MasterUsername="admin",
                MasterUserPassword="sandbox-password",
            )["DBInstance"]["DBInstanceArn"]
        )

    def add_cluster(self, identifier: str = "mycluster", engine: str = "aurora-postgresql") -> str:
        return str(
            self.client("rds").create_db_cluster(
                DBClusterIdentifier=identifier,
                Engine=engine,
                MasterUsername="admin",
                MasterUserPassword="sandbox-password",
            )["DBCluster"]["DBClusterArn"]
        )

    def add_automated_snapshot(
        self, database: str, age_hours: float, cluster: bool = False, status: str = "available"
    ) -> str:
        """An automated snapshot taken `age_hours` ago (RDS names them `rds:<db>-<date>`)."""
        backend = rds_backends[ACCOUNT][REGION]
        taken = self.clock.now() - timedelta(hours=age_hours)
        ident = f"rds:{database}-{taken.strftime('%Y-%m-%d-%H-%M')}"
        if cluster:
            snap: Any = backend.create_db_cluster_snapshot(
                database, ident, snapshot_type="automated"
            )
        else:
            snap = backend.create_db_snapshot(database, ident, snapshot_type="automated")
        snap.created = taken
        snap.status = status
        return ident

    # --- running -------------------------------------------------------------------------
    def start(self, execution_input: dict[str, Any] | str, name: str | None = None) -> str:
        body = execution_input if isinstance(execution_input, str) else json.dumps(execution_input)
        return str(
            self.client("stepfunctions").start_execution(
                stateMachineArn=self.state_machine_arn,
                name=name or f"run-{uuid.uuid4().hex[:12]}",
                input=body,
            )["executionArn"]
        )

    def wait(
        self,
        arn: str,
        on_state: Callable[[StateRecord, dict[str, Any]], None] | None = None,
        timeout: float = 120.0,
    ) -> RunResult:
        sfn = self.client("stepfunctions")
        started_sim = self.clock.elapsed_seconds
        deadline = time.monotonic() + timeout
        seen = 0
        states: list[StateRecord] = []
        entered: dict[str, tuple[datetime, str]] = {}
        # Reading the history is costly (moto serialises all of it on every call) and competes
        # with the execution's own thread, so it is read live only when someone prints it.
        interval = 0.2 if on_state is not None else 0.02
        while True:
            desc = sfn.describe_execution(executionArn=arn)
            finished = desc["status"] != "RUNNING"
            if on_state is not None or finished:
                history = _history(sfn, arn)
                for event in history[seen:]:
                    record = _state_record(event, entered)
                    if record is not None:
                        states.append(record)
                        if on_state is not None:
                            on_state(record, event)
                seen = len(history)
            if finished:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution {arn} still RUNNING after {timeout} s")
            time.sleep(interval)
        output = json.loads(desc["output"]) if desc.get("output") else None
        return RunResult(
            name=desc["name"],
            arn=arn,
            status=desc["status"],
            output=output,
            error=desc.get("error"),
            cause=desc.get("cause"),
            states=states,
            simulated_seconds=self.clock.elapsed_seconds - started_sim,
            history=history,
        )

    def run(
        self,
        execution_input: dict[str, Any] | str | None = None,
        name: str | None = None,
        on_state: Callable[[StateRecord, dict[str, Any]], None] | None = None,
    ) -> RunResult:
        arn = self.start({} if execution_input is None else execution_input, name)
        return self.wait(arn, on_state)

    # --- looking at the bucket -----------------------------------------------------------
    def listing(self, prefix: str = "") -> dict[str, str]:
        """Every key under `prefix` with its ETag (for before/after comparisons)."""
        s3 = self.client("s3")
        out: dict[str, str] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.settings.bucket, Prefix=prefix
        ):
            for obj in page.get("Contents", []):
                out[obj["Key"]] = obj["ETag"]
        return out

    def export_folders(self, prefix: str) -> list[str]:
        """The first-level folders under `<prefix>/`."""
        head = f"{prefix.rstrip('/')}/"
        return sorted(
            {k[len(head) :].split("/", 1)[0] for k in self.listing(head) if "/" in k[len(head) :]}
        )

    def tree(self, prefix: str) -> str:
        """A compact tree of the bucket under `prefix`: folders with their file counts."""
        keys = sorted(self.listing(prefix))
        if not keys:
            return f"s3://{self.settings.bucket}/{prefix}/ (empty)"
        lines = [f"s3://{self.settings.bucket}/{prefix.rstrip('/')}/"]
        groups: dict[str, list[str]] = {}
        for key in keys:
            rest = key[len(prefix.rstrip("/")) + 1 :]
            folder, _, leaf = rest.partition("/")
            groups.setdefault(folder, []).append(leaf)
        for folder, leaves in groups.items():
            meta = [leaf for leaf in leaves if leaf.endswith(".json")]
            data = [leaf for leaf in leaves if leaf.endswith(".parquet")]
            tables = sorted({leaf.split("/")[1] for leaf in data if leaf.count("/") >= 2})
            lines.append(
                f"  {folder}/  {len(meta)} metadata file(s), {len(data)} parquet file(s)"
                + (f" in {', '.join(tables)}" if tables else "")
            )
            lines.extend(f"    {leaf}" for leaf in meta)
        return "\n".join(lines)

    def snapshots(
        self, database: str, cluster: bool = False, snapshot_type: str | None = None
    ) -> list[str]:
        """Snapshot ids of `database`; `snapshot_type` `manual` or `automated` filters.
        (moto, like RDS with backups on, takes an automated snapshot of a new instance.)"""
        rds = self.client("rds")
        extra = {"SnapshotType": snapshot_type} if snapshot_type else {}
        if cluster:
            found = rds.describe_db_cluster_snapshots(DBClusterIdentifier=database, **extra)
            return sorted(s["DBClusterSnapshotIdentifier"] for s in found["DBClusterSnapshots"])
        found = rds.describe_db_snapshots(DBInstanceIdentifier=database, **extra)
        return sorted(s["DBSnapshotIdentifier"] for s in found["DBSnapshots"])


def _history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
        events.extend(page["events"])
    return events


def _state_record(
    event: dict[str, Any], entered: dict[str, tuple[datetime, str]]
) -> StateRecord | None:
    kind = event["type"]
    if kind.endswith("StateEntered"):
        details = event.get("stateEnteredEventDetails", {})
        entered["current"] = (event["timestamp"], details.get("name", "?"))
        entered["type"] = (event["timestamp"], kind.removesuffix("StateEntered"))
        return None
    if kind.endswith("StateExited") or kind in {"ExecutionFailed", "TaskFailed"}:
        if "current" not in entered:
            return None
        start, name = entered["current"]
        state_type = entered["type"][1]
        real_ms = (event["timestamp"] - start).total_seconds() * 1000
        if kind == "TaskFailed":
            error = event.get("taskFailedEventDetails", {}).get("error", "failed")
            return StateRecord(name, state_type, f"error {error}", real_ms)
        if kind == "ExecutionFailed":
            error = event.get("executionFailedEventDetails", {}).get("error", "failed")
            entered.pop("current")
            return StateRecord(name, state_type, f"failed {error}", real_ms)
        entered.pop("current")
        return StateRecord(name, state_type, "ok", real_ms)
    return None


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
