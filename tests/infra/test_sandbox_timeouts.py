"""The sandbox's Lambda contexts run out when the stack's functions would (issue 17)."""

from __future__ import annotations

from infra.functions import STEPS
from sandbox.seams import FUNCTION_TIMEOUT_SECONDS


def test_the_sandbox_knows_every_functions_configured_timeout() -> None:
    configured = {step.module: int(step.timeout.to_seconds()) for step in STEPS}
    assert dict(FUNCTION_TIMEOUT_SECONDS) == configured
