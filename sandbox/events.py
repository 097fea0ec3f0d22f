"""The stack's event triggers in the sandbox: an event in, the executions its rules start.

moto keeps EventBridge rules but does not start Step Functions executions from them, so this
module does what EventBridge would: it matches the event against each trigger's pattern
(infra/triggers.py, the patterns the stack deploys), renders the trigger's input template with
the event's values, and starts the state machine with it.

The matching is moto's EventBridge pattern matcher (`moto.events.models.EventPattern`), an
implementation independent of this project's, used as a library. It covers what the triggers
use: exact strings, `prefix`, and `anything-but` with a `prefix`.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any, cast

from moto.events.models import EventPattern, EventPatternParser

from infra.config import PipelineConfig
from infra.triggers import Trigger, Where, triggers
from sandbox.runtime import ACCOUNT, REGION, Sandbox

_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.-]+)>")


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """Whether EventBridge would deliver `event` to a rule with `pattern` (moto's matcher)."""
    parsed = EventPatternParser(json.dumps(pattern)).parse()
    return bool(EventPattern(json.dumps(pattern), parsed).matches_event(cast(Any, event)))


def _path(event: dict[str, Any], path: str) -> Any:
    """The value at a JSON dot-notation path such as `$.detail.SourceArn` (None if absent)."""
    node: Any = event
    for part in path.removeprefix("$.").split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def render_input(trigger: Trigger, event: dict[str, Any]) -> dict[str, Any]:
    """The execution input the rule's target sends: each `<name>` placeholder outside quotes
    replaced by the JSON value at its InputPathsMap path."""
    values = {name: _path(event, path) for name, path in trigger.input_paths.items()}
    text = _PLACEHOLDER.sub(lambda m: json.dumps(values[m.group(1)]), trigger.input_template)
    rendered = json.loads(text)
    if not isinstance(rendered, dict):
        raise TypeError(f"{trigger.name}'s input template is not a JSON object: {text}")
    return rendered


def sandbox_triggers(config: PipelineConfig, region: str, account: str) -> list[Trigger]:
    return triggers(config, Where(partition="aws", region=region, account=account))


def deliver(sandbox: Sandbox, event: dict[str, Any], name_prefix: str = "event") -> list[str]:
    """Put `event` on the sandbox's bus: start one execution per matching rule, as EventBridge
    would. Returns their ARNs (none: no rule matched)."""
    started = []
    for index, trigger in enumerate(sandbox_triggers(sandbox.settings.config, REGION, ACCOUNT)):
        if matches(trigger.pattern, event):
            # EventBridge delivers each event once per rule; AWS's samples share ids
            name = f"{name_prefix}-{index}-{str(event.get('id', 'x'))[:8]}-{uuid.uuid4().hex[:6]}"
            started.append(sandbox.start(render_input(trigger, event), name=name))
    return started
