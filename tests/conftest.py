"""Shared fixtures: fake AWS credentials, a fake Lambda context, and the local sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sandbox import loader
from sandbox.rds_sim import Timing
from sandbox.runtime import FAKE_ENV, Sandbox, Settings
from sandbox.seams import FakeContext

# Every test's moto block (a fresh boto3 session each) decodes the service models only once.
loader.install()

# The tests that synthesise the stack run in one pytest-xdist worker: jsii starts a Node process
# and warms up for ~10 s in each process that synthesises, and each configuration is then
# synthesised once per process (tests/infra/conftest.py). Every other test is handed out on its
# own, so that the two workers of `pytest -n 2` finish together. (xdist's `--dist loadgroup`
# would say the same with marks, but with pytest 9.2 it no longer groups anything: pytest-xdist
# issue 1386.)
SYNTHESISING = ("tests/infra/", "tests/replay/")


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, absent under `-p no:xdist`
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's default distribution (`load`), but the synthesising tests go together as one
    unit of work, handed out first (the largest unit goes first). Another `--dist` is kept."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SynthesisTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "synthesis" if nodeid.startswith(SYNTHESISING) else nodeid

    return SynthesisTogether(config, log)


# Short simulated durations keep polls (and so real time) low; the demo uses longer ones.
FAST = Timing(snapshot_seconds=300, export_starting_seconds=120, export_running_seconds=600)


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs with fake credentials and no profile: nothing can reach real AWS."""
    for key, value in FAKE_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def lambda_context() -> Any:
    """The Lambda context object a handler is given (the same one the sandbox passes)."""
    return FakeContext("test-function")


@pytest.fixture
def settings() -> Settings:
    """The sandbox's stack settings; a test may change them before asking for `sandbox`."""
    return Settings()


@pytest.fixture
def timing() -> Timing:
    return Timing(
        snapshot_seconds=FAST.snapshot_seconds,
        export_starting_seconds=FAST.export_starting_seconds,
        export_running_seconds=FAST.export_running_seconds,
    )


@pytest.fixture
def sandbox(settings: Settings, timing: Timing) -> Iterator[Sandbox]:
    """A fresh sandbox with the default database `mydb` (a PostgreSQL instance)."""
    with Sandbox(settings, timing) as sb:
        sb.add_instance("mydb")
        yield sb
