"""The one logger of the handlers, and the fields that tie one night's lines together.

In Lambda the JSON log format turns each record into JSON, with the record's extra attributes
as keys. Every handler is wrapped in `correlated`, which puts the execution's name and the
database on every line it logs, so one run can be followed across all its functions in
CloudWatch Logs Insights:

    fields @timestamp, @log, message | filter execution = "night-2026-11-27" | sort @timestamp
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any, TypeVar

logger = logging.getLogger("rds_s3_export")
logger.setLevel(logging.INFO)

_fields: ContextVar[Mapping[str, str] | None] = ContextVar("correlation", default=None)
UNKNOWN = "-"


def correlation(event: Any) -> dict[str, str]:
    """The execution name and database an event belongs to, wherever the step carries them."""
    if not isinstance(event, Mapping):
        return {"execution": UNKNOWN, "database": UNKNOWN}
    plan: Mapping[str, Any] = event.get("plan") or {}
    config: Mapping[str, Any] = event.get("config") or {}
    if not isinstance(plan, Mapping) or not isinstance(config, Mapping):
        plan, config = {}, {}
    execution = event.get("execution")
    raw = event.get("input")
    execution_name = (
        event.get("execution_name")
        or plan.get("execution_name")
        or (execution.get("name") if isinstance(execution, Mapping) else None)
    )
    database = (
        event.get("database_id")
        or config.get("database_id")
        or (
            (raw.get("db_instance_identifier") or raw.get("db_cluster_identifier"))
            if isinstance(raw, Mapping)
            else None
        )
    )
    return {"execution": str(execution_name or UNKNOWN), "database": str(database or UNKNOWN)}


class _Correlate(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_fields.get() or {}).items():
            setattr(record, key, value)
        return True


logger.addFilter(_Correlate())


def bind(**fields: str) -> None:
    """Add to (or correct) the fields of the lines still to come in this invocation, e.g. the
    database once ValidateInput has worked out which one `{}` means."""
    _fields.set({**(_fields.get() or {}), **fields})


Handler = TypeVar("Handler", bound=Callable[..., Any])


def correlated(handler: Handler) -> Handler:
    """Wrap a `lambda_handler`: its log lines carry the execution and the database."""

    @functools.wraps(handler)
    def wrapper(event: Any, context: Any) -> Any:
        token = _fields.set(correlation(event))
        try:
            return handler(event, context)
        finally:
            _fields.reset(token)

    return wrapper  # type: ignore[return-value]
