"""One module per state of the state machine: each holds the `lambda_handler` of that state.

Every step returns only its own piece of the state, never the whole state. Its module names the
piece's fields in `RESULT_FIELDS`; the state machine (statemachine/definition.py) selects exactly
those fields from the function's result and merges them in with `ResultPath`. A field named there
but missing from a result fails the state with States.Runtime in Step Functions, so `shaped`
checks the piece before it leaves the function, where the error is clearer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def shaped(
    piece: Mapping[str, Any],
    fields: tuple[str, ...],
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`piece` with exactly `fields`: a missing field takes its default; a field without a
    default that is missing, or a field that is not declared, is a programming error."""
    defaults = defaults or {}
    unknown = sorted(set(piece) - set(fields))
    missing = sorted(f for f in fields if f not in piece and f not in defaults)
    if unknown or missing:
        raise ValueError(
            f"step result does not match its RESULT_FIELDS: undeclared {unknown}, missing {missing}"
        )
    return {field: piece[field] if field in piece else defaults[field] for field in fields}
