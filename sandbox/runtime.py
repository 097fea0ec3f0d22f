"""The local sandbox: the real ASL file and the real handlers on moto's in-memory AWS.

`Sandbox` starts moto (with its Step Functions interpreter executing state machines), creates
what the CDK stack would create (bucket, KMS key, export role, one Lambda function per
`${...FunctionArn}` placeholder of the ASL file, the state machine from that file), installs
the seams (in-process handlers, simulated clock) and the RDS simulation, and runs executions.

No AWS credentials are read: fake ones are set for the duration of the sandbox.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType, SimpleNamespace
from typing import Any

import boto3
from moto import mock_aws
from moto.rds.models import ExportTask, rds_backends
from moto.stepfunctions.parser import models as sfn_parser_models

from infra.config import PipelineConfig, load_config
from rds_s3_export import aws as handler_aws
from rds_s3_export import clock as handler_clock
from rds_s3_export import rules
from rds_s3_export.manifest import manifest_key
from rds_s3_export.steps.publish_manifest import EVENT_SOURCE
from sandbox import accounts, faults, iam_replay, limits, loader, seams
from sandbox.clock import SimClock
from sandbox.rds_sim import RdsSimulation, Timing
from statemachine.definition import ALERT_TOPIC_PLACEHOLDER

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
    # moto builds ~1,300 sample AMIs (and their volumes and snapshots) into every fresh EC2
    # backend, about a second of CPU a sandbox; nothing here uses EC2
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
}


# boto3's default session in every sandbox of the process that does not record IAM requests
# (sandbox/loader.py): moto answers through a handler every client has (sandbox/faults.py) and
# the credentials are the fake ones above, so a client made in one sandbox serves the next.
_SESSION: list[loader.ReusingSession] = []
_SESSION_LOCK = threading.Lock()


def _reusing_session() -> loader.ReusingSession:
    """Made in the first sandbox, after sandbox.faults took moto's place in new sessions."""
    with _SESSION_LOCK:
        if not _SESSION:
            _SESSION.append(loader.ReusingSession())
        return _SESSION[0]


def module_for(placeholder: str) -> str:
    """`CreateSnapshotFunctionArn` -> `create_snapshot` (see docs/contracts.md)."""
    stem = placeholder.removesuffix("FunctionArn")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", stem).lower()


# The functions' environment variables that only some configurations set (infra/config.py)
OPTIONAL_ENV = ("GLUE_DATABASE", "PIPELINE_NAME")


class Settings:
    """The stack's configuration for the sandbox: CDK context overrides on top of the defaults
    (rds_s3_export.rules.DEFAULTS), validated and turned into each function's environment by
    infra/config.py, the very code `cdk synth` runs. `Settings(poll_min_seconds=10)` is what
    `cdk deploy -c poll_min_seconds=10` would configure."""

    def __init__(self, bucket: str = "rds-s3-export-sandbox", **context: Any) -> None:
        self.bucket = bucket
        # read only: `reconfigure` (a redeploy) makes new Settings
        self.context: Mapping[str, Any] = MappingProxyType(dict(context))
        # validated once, here (a bad configuration is refused at once, as synth would)
        self._config = load_config(self.context)

    @property
    def config(self) -> PipelineConfig:
        return self._config

    def __getattr__(self, name: str) -> Any:  # pipeline_name, poll_max_seconds, ...
        if name.startswith("_") or name in ("bucket", "context"):
            raise AttributeError(name)
        return getattr(self.config, name)

    def environments(self, role_arn: str, key_arn: str) -> dict[str, dict[str, str]]:
        """Each function's environment, refused like Lambda refuses one over 4 KB."""
        environments = self.config.function_environments(self.bucket, role_arn, key_arn)
        for module, environment in environments.items():
            size = rules.environment_bytes(environment)
            if size > rules.LAMBDA_ENVIRONMENT_MAX_BYTES:  # see rules.py for the AWS page
                raise ValueError(
                    f"the {module} function's environment is {size} bytes; Lambda refuses more "
                    f"than {rules.LAMBDA_ENVIRONMENT_MAX_BYTES}"
                )
        return environments

    def environment(self, role_arn: str, key_arn: str) -> dict[str, str]:
        """The union of every function's environment: the handlers run in this process.
        The optional keys are always set ("" when not configured), so that a reconfiguration,
        or the next sandbox in the same process, does not inherit them."""
        merged: dict[str, str] = dict.fromkeys(OPTIONAL_ENV, "")
        for environment in self.environments(role_arn, key_arn).values():
            merged.update(environment)
        return merged


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

    def __init__(
        self,
        settings: Settings | None = None,
        timing: Timing | None = None,
        start: datetime | None = None,
        record_iam: bool = False,
        *,
        data_account_id: str | None = None,
        pipeline_account_id: str = ACCOUNT,
    ) -> None:
        self.settings = settings or Settings()
        # issue 19: the bucket, the export key and Snowflake's role in the data platform's
        # account; everything else in the pipeline's, `account` (moto's default one unless
        # named: sandbox.events, backup_sim and bench assume the default). None: one account.
        self.account = accounts.check_account_id(pipeline_account_id, "pipeline_account_id")
        self.data_account_id = data_account_id
        if data_account_id is not None:
            accounts.check_account_id(data_account_id, "data_account_id")
            if data_account_id == self.account:
                raise ValueError(
                    f"data_account_id {data_account_id} is the pipeline's account: leave it "
                    "unset for one account"
                )
        self._record_iam = record_iam
        # the IAM requests of every AWS call (see sandbox/iam_replay.py), when record_iam is set
        self.iam: iam_replay.Recorder | None = None
        self.clock = SimClock(start)  # default: now
        self.faults = faults.FaultInjector()
        self.faults.spend = self.clock.spend
        self.invocations = seams.InvocationLog()
        self.rds = RdsSimulation(self.clock, lambda: self.client("s3"), timing)
        self._stack = ExitStack()
        self.state_machine_arn = ""
        self.alert_topic_arn = ""  # the alert topic (notify_success publishes there)
        self.role_arn = ""
        self.key_arn = ""
        self.function_arns: dict[str, str] = {}  # step module -> its function's ARN
        self.function_role_arns: dict[str, str] = {}  # step module -> its function's role
        self.snowflake_role_arn = ""  # cross-account only: Snowflake's read-only role
        self._data: accounts.AssumedRoleClients | None = None
        self._snowflake: accounts.AssumedRoleClients | None = None
        self._export_writers: dict[str, accounts.AssumedRoleClients] = {}
        self._clients: dict[str, Any] = {}  # service -> the sandbox's own client
        self._clients_lock = threading.Lock()

    # --- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> Sandbox:
        try:
            self._start()
        except BaseException:
            self._stack.close()  # leave no moto mock or patch active behind a failed start
            raise
        return self

    def _start(self) -> None:
        loader.install()  # the service models are decoded once per process, not per sandbox
        self._stack.enter_context(_environment({**FAKE_ENV, **dict.fromkeys(OPTIONAL_ENV, "")}))
        for noisy in ("moto", "botocore", "rds_s3_export"):
            logging.getLogger(noisy).setLevel(logging.CRITICAL)
        faults.install(self.faults)
        self._stack.callback(faults.uninstall, self.faults)
        self._stack.enter_context(limits.installed())
        self._stack.enter_context(
            mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        )
        if self.account != ACCOUNT:
            self._stack.enter_context(seams.default_account(self.account))
        if not self._record_iam:  # moto set a fresh default session; it restores the old one
            boto3.DEFAULT_SESSION = _reusing_session()
        self._stack.enter_context(
            seams.installed(
                self.clock, self.faults.before_invoke, self.invocations, self.faults.after_invoke
            )
        )
        self._stack.enter_context(self.rds.installed())
        self._install_clock()
        self._provision()
        if self._record_iam:  # before any handler makes its clients
            env = iam_replay.Env(
                self.account,
                REGION,
                self.settings.bucket,
                self.key_arn,
                snapshot_tags=functools.partial(_snapshot_tags, account=self.account),
            )
            self.iam = self._stack.enter_context(iam_replay.Recorder(env).installed())
            # the recorder hooks only the clients made from now on, and the simulated RDS
            # writes the export's files with the sandbox's S3 client: it is made again
            with self._clients_lock:
                self._clients.clear()

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _install_clock(self) -> None:
        # an execution's StartTime (which names the run's snapshot) is read from the simulated
        # clock too, so a sandbox started at a chosen date names things as on that date
        original = getattr(sfn_parser_models, "datetime")  # noqa: B009 - not re-exported
        shim = SimpleNamespace(
            datetime=SimpleNamespace(now=lambda tz=None: self.clock.now().astimezone(tz)),
            timezone=original.timezone,
        )
        setattr(sfn_parser_models, "datetime", shim)  # noqa: B010
        self._stack.callback(setattr, sfn_parser_models, "datetime", original)
        handler_aws.reset_clients()
        handler_clock.set_clock(self.clock.now)
        self._stack.callback(handler_clock.set_clock, None)
        handler_clock.set_sleep(self.clock.spend)  # a handler's own backoff, simulated
        self._stack.callback(handler_clock.set_sleep, None)
        self._stack.callback(handler_aws.reset_clients)

    def reconfigure(self, bucket: str | None = None, **context: Any) -> None:
        """Change the stack's configuration between runs (what a redeploy with new context
        would do); `bucket` points the functions at another bucket."""
        self.settings = Settings(
            bucket=bucket or self.settings.bucket, **{**self.settings.context, **context}
        )
        os.environ.update(self.settings.environment(self.role_arn, self.key_arn))

    def client(self, service: str) -> Any:
        """The sandbox's own client for `service` (its set-up and inspection calls, and the
        files the simulated RDS writes): made once, used from any thread."""
        with self._clients_lock:
            found = self._clients.get(service)
            if found is None:
                found = boto3.client(service, region_name=REGION)  # type: ignore[call-overload]
                self._clients[service] = found
            return found

    @property
    def bucket_account(self) -> str:
        """The account the export bucket (and the export key) lives in."""
        return self.data_account_id or self.account

    def _assumed(self, arn: str, session: str) -> accounts.AssumedRoleClients:
        return accounts.AssumedRoleClients(
            lambda: self.client("sts"),
            lambda service, **credentials: boto3.client(service, region_name=REGION, **credentials),
            arn,
            session,
        )

    def data_client(self, service: str) -> Any:
        """A client in the data account, as the role that deploys the data stack there (the
        CDK bootstrap's CloudFormation role). Cross-account only."""
        if self._data is None:
            raise RuntimeError("data_client: this sandbox has one account (no data_account_id)")
        return self._data.client(service)

    def snowflake_client(self, service: str) -> Any:
        """A client as Snowflake's read-only role in the data account. Cross-account only."""
        if self._snowflake is None:
            raise RuntimeError("snowflake_client: this sandbox has no data_account_id")
        return self._snowflake.client(service)

    def _export_writer(self, role_arn: str | None) -> Any:
        """The S3 client RDS writes an export with: the export task's role, assumed."""
        if not role_arn:
            raise ValueError("the export task has no IAM role: RDS could not write")
        if role_arn not in self._export_writers:
            self._export_writers[role_arn] = self._assumed(role_arn, "rds-export")
        return self._export_writers[role_arn].client("s3")

    # --- what the stack would create ----------------------------------------------------
    def _provision(self) -> None:
        if self.data_account_id is None:
            iam = self.client("iam")
            trust = {"Version": "2012-10-17", "Statement": []}
            self.role_arn = iam.create_role(
                RoleName="sandbox-export-role", AssumeRolePolicyDocument=json.dumps(trust)
            )["Role"]["Arn"]
            self.key_arn = self.client("kms").create_key(Description="sandbox export key")[
                "KeyMetadata"
            ]["Arn"]
            self.client("s3").create_bucket(Bucket=self.settings.bucket)
        else:
            self._provision_two_accounts(self.data_account_id)
        if self.settings.config.glue_database:  # the stack's AWS::Glue::Database
            self.client("glue").create_database(
                DatabaseInput={"Name": self.settings.config.glue_database}
            )
        self._capture_events()
        os.environ.update(self.settings.environment(self.role_arn, self.key_arn))

        asl = ASL_PATH.read_text()
        lam = self.client("lambda")
        substitutions: dict[str, str] = {}
        substitutions[ALERT_TOPIC_PLACEHOLDER] = self._alert_topic()
        for placeholder in sorted(set(PLACEHOLDER.findall(asl)) - {ALERT_TOPIC_PLACEHOLDER}):
            module = module_for(placeholder)
            function_role = self.function_role_arns.get(module, self.role_arn)
            arn = lam.create_function(
                FunctionName=f"{self.settings.pipeline_name}-{module.replace('_', '-')}",
                Runtime="python3.13",
                Role=function_role,
                Handler=f"rds_s3_export.steps.{module}.lambda_handler",
                Code={"ZipFile": b"in-process"},
            )["FunctionArn"]
            substitutions[placeholder] = arn
            self.function_arns[module] = arn
            self.function_role_arns[module] = function_role
        definition = PLACEHOLDER.sub(lambda m: substitutions[m.group(1)], asl)
        self.state_machine_arn = self.client("stepfunctions").create_state_machine(
            name=self.settings.pipeline_name, definition=definition, roleArn=self.role_arn
        )["stateMachineArn"]

    def _provision_two_accounts(self, data_account: str) -> None:
        """The data stack in `data_account` (bucket, export key, Snowflake's read-only role),
        made as the data account's deploy role; the pipeline's roles in its account, named as the
        data stack's policies name them (accounts.PipelineRoles)."""
        roles = accounts.PipelineRoles(self.settings.pipeline_name, self.account)
        deployer = accounts.CDK_DEPLOY_ROLE.format(account=data_account, region=REGION)
        self._data = self._assumed(accounts.role_arn(data_account, deployer), "data-stack")
        # the pipeline's account: the export role RDS assumes, and one role per function
        # (moto checks no policy: the trust is written as the stack writes it, for the reader)
        iam = self.client("iam")
        rds_trust = _trust({"Service": "export.rds.amazonaws.com"})
        self.role_arn = iam.create_role(
            RoleName=roles.export_role_name(), AssumeRolePolicyDocument=rds_trust
        )["Role"]["Arn"]
        lambda_trust = _trust({"Service": "lambda.amazonaws.com"})
        for placeholder in sorted(set(PLACEHOLDER.findall(ASL_PATH.read_text()))):
            module = module_for(placeholder)
            self.function_role_arns[module] = iam.create_role(
                RoleName=roles.function_role_name(module), AssumeRolePolicyDocument=lambda_trust
            )["Role"]["Arn"]
        # the data account: the key, the bucket, and the role Snowflake's integration assumes
        self.key_arn = self.data_client("kms").create_key(Description="export key")["KeyMetadata"][
            "Arn"
        ]
        self.data_client("s3").create_bucket(Bucket=self.settings.bucket)
        config = self.settings.config
        reader = (
            config.snowflake_iam_user_arn or f"arn:{accounts.PARTITION}:iam::{data_account}:root"
        )
        self.snowflake_role_arn = self.data_client("iam").create_role(
            RoleName=config.snowflake_role_name, AssumeRolePolicyDocument=_trust({"AWS": reader})
        )["Role"]["Arn"]
        self._snowflake = self._assumed(self.snowflake_role_arn, "snowflake")
        # RDS writes the export's files as the task's role (the export role), not as the sandbox
        self.rds.writer_for_role = self._export_writer

    def _capture_events(self) -> None:
        """A rule on the default bus sends the pipeline's events to a queue the sandbox reads
        (what a downstream consumer would subscribe; see `ready_events`)."""
        self._events_queue, queue_arn = self._queue("sandbox-pipeline-events")
        events = self.client("events")
        events.put_rule(
            Name="sandbox-pipeline-events",
            EventPattern=json.dumps({"source": [EVENT_SOURCE]}),
            State="ENABLED",
        )
        events.put_targets(
            Rule="sandbox-pipeline-events", Targets=[{"Id": "queue", "Arn": queue_arn}]
        )
        self._events: list[dict[str, Any]] = []

    def _alert_topic(self) -> str:
        """The alert topic (the stack's is made by infra/alerts.py), with a queue subscribed
        that the sandbox reads (what an e-mail subscription would receive; see
        `alert_messages`)."""
        sns = self.client("sns")
        topic_arn = str(sns.create_topic(Name=f"{self.settings.pipeline_name}-alerts")["TopicArn"])
        self._alerts_queue, queue_arn = self._queue("sandbox-alerts")
        sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes={"RawMessageDelivery": "false"},
        )
        self.alert_topic_arn = topic_arn
        return topic_arn

    def alert_messages(self) -> list[dict[str, Any]]:
        """Every message published to the alert topic so far (the SNS notification, with its
        Subject and Message), oldest first."""
        return self._drain(self._alerts_queue)

    def _queue(self, name: str) -> tuple[str, str]:
        """A new SQS queue the sandbox reads: its URL and ARN."""
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
        return str(url), str(arn["QueueArn"])

    def _drain(self, queue_url: str) -> list[dict[str, Any]]:
        """Every message waiting in the queue, its body parsed, oldest first; each is deleted."""
        sqs, found = self.client("sqs"), list[dict[str, Any]]()
        while True:
            batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
            if not batch.get("Messages"):
                return found
            for message in batch["Messages"]:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def ready_events(self) -> list[dict[str, Any]]:
        """Every event the pipeline put on the default bus so far, oldest first."""
        self._events += self._drain(self._events_queue)
        return list(self._events)

    def manifest(self, prefix: str | None = None) -> dict[str, Any] | None:
        """The `_manifest.json` under `prefix` (default: the stack's), or None."""
        prefix = prefix or self.settings.config.databases[0].s3_prefix
        key = manifest_key(prefix)
        if key not in self.listing(key):
            return None
        body = self.client("s3").get_object(Bucket=self.settings.bucket, Key=key)["Body"]
        return dict(json.loads(body.read()))

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
        backend = rds_backends[self.account][REGION]
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

    def seed_previous_export(
        self, database: str, seconds: float, s3_prefix: str | None = None, days_ago: float = 1.0
    ) -> str:
        """A COMPLETE export task of `database` into `s3_prefix` that took `seconds`, finished
        `days_ago` days ago: the history DescribeExportTasks shows a second night (its files
        are gone, as the purge would have removed them). Returns its identifier."""
        backend = rds_backends[self.account][REGION]
        prefix = s3_prefix or self.settings.config.databases[0].s3_prefix
        snapshot_id = self.add_automated_snapshot(database, age_hours=24 * days_ago + 1)
        snapshot = backend.database_snapshots[snapshot_id]
        ident = f"previous-{database}-{len(backend.export_tasks)}"
        task: Any = ExportTask(
            backend,
            snapshot,
            {
                "export_task_identifier": ident,
                "source_arn": snapshot.db_snapshot_arn,
                "s3_bucket_name": self.settings.bucket,
                "s3_prefix": prefix,
                "iam_role_arn": self.role_arn,
            },
        )
        end = (self.clock.now() - timedelta(days=days_ago)).replace(tzinfo=None)
        task.status, task.percent_progress = "COMPLETE", 100
        task.task_start_time, task.task_end_time = end - timedelta(seconds=seconds), end
        backend.export_tasks[ident] = task
        return ident

    # --- running -------------------------------------------------------------------------
    def start(self, execution_input: dict[str, Any] | str, name: str | None = None) -> str:
        body = execution_input if isinstance(execution_input, str) else json.dumps(execution_input)
        if self.iam is not None:  # as the schedule (or a person with that role) would start it
            self.iam.add(iam_replay.scheduler_requests(self.state_machine_arn))
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
            # the cheap look at the status; the API's full answer only once it has ended
            finished = seams.execution_status(self.account, REGION, arn) != "RUNNING"
            if on_state is not None or finished:
                history = _history(sfn, arn, self.account)
                for event in history[seen:]:
                    record = _state_record(event, entered)
                    if record is not None:
                        states.append(record)
                        if on_state is not None:
                            on_state(record, event)
                seen = len(history)
            if finished:
                desc = sfn.describe_execution(executionArn=arn)
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution {arn} still RUNNING after {timeout} s")
            time.sleep(interval)
        output = json.loads(desc["output"]) if desc.get("output") else None
        if self.iam is not None:
            self.iam.add(iam_replay.state_machine_requests(history))
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
        """Every key under `prefix` with its ETag (for before/after comparisons), in the order
        ListObjectsV2 lists them (read from moto's S3: see sandbox/seams.py)."""
        return seams.bucket_listing(self.bucket_account, self.settings.bucket, prefix)

    def api_listing(self, prefix: str = "", page_size: int = 1000) -> dict[str, str]:
        """`listing` through the ListObjectsV2 API, page by page (what `listing` stands for)."""
        s3 = self.client("s3")
        out: dict[str, str] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.settings.bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size}
        ):
            for obj in page.get("Contents", []):
                out[obj["Key"]] = obj["ETag"]
        return out

    def catalog(self) -> dict[str, dict[str, Any]]:
        """The Glue tables of the configured glue_database, by name (empty without one)."""
        database = self.settings.config.glue_database
        if not database:
            return {}
        pages = self.client("glue").get_paginator("get_tables").paginate(DatabaseName=database)
        return {t["Name"]: t for page in pages for t in page.get("TableList", [])}

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
            if leaves == [""]:  # a file directly under the prefix (the manifest)
                lines.append(f"  {folder}")
                continue
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


def _trust(principal: dict[str, str]) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}],
        }
    )


def _snapshot_tags(kind: str, ident: str, account: str = ACCOUNT) -> dict[str, str]:
    """The tags the simulated RDS holds on a snapshot, read from moto's backend (a client call
    here would itself be recorded by the IAM replay)."""
    backend = rds_backends[account][REGION]
    table = backend.cluster_snapshots if kind == "cluster-snapshot" else backend.database_snapshots
    snapshot = table.get(ident) or table.get(ident.lower())
    tags = getattr(snapshot, "tags", None) or []
    return {t["Key"]: t["Value"] for t in tags}


def _history(sfn: Any, arn: str, account: str = ACCOUNT) -> list[dict[str, Any]]:
    """GetExecutionHistory's events, as boto3 gives them (read from moto's backend: see
    sandbox/seams.py)."""
    output = sfn.meta.service_model.operation_model("GetExecutionHistory").output_shape
    return seams.execution_history(account, REGION, arn, output.members["events"])


def api_history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    """GetExecutionHistory's events through the API, page by page (what `_history` stands for)."""
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
