"""Named errors. The class name is the `Error` the state machine sees.

Step Functions matches a Lambda failure by the exception's class name (the Python runtime
reports it as `errorType`), so the ASL file `Retry`s and `Catch`es these by name. The message
becomes the execution's `Cause`: write it for the person on call, naming the resource.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base class of every error the pipeline raises on purpose."""


# Terminal errors: the pipeline's documented error names (docs/inputs.md). Each ends the run
# in a Fail state.
class InvalidInput(PipelineError):
    """A key is missing, unknown, of the wrong type or unsafe. The message names the key."""


class SourceNotFound(PipelineError):
    """The instance, cluster or snapshot does not exist (or is not the configured database's)."""


class SnapshotFailed(PipelineError):
    """The snapshot could not be created or reached a failed state."""


class ExportFailed(PipelineError):
    """The export task could not be started, or ended FAILED / CANCELED."""


class WaitTimedOut(PipelineError):
    """A snapshot or export did not finish before its deadline."""


class AlreadyRunning(PipelineError):
    """Another execution for the same database or prefix is still in progress."""


class PurgeRefused(PipelineError):
    """The new export could not be verified or the prefix is unsafe: nothing was deleted."""


class PublishFailed(PipelineError):
    """The export is complete and the old ones purged, but the manifest could not be written:
    the data is safe, downstream was not told. (An event refused after the manifest was written
    is a warning of a run that succeeds: the manifest names the new export.)"""


# Transient errors: retried by the state machine with backoff and jitter, never failed directly.
class Throttled(PipelineError):
    """An AWS API throttled the call (Throttling, ThrottlingException, RequestLimitExceeded...)."""


class InstanceBusy(PipelineError):
    """The database cannot be snapshotted right now (e.g. backing up or modifying)."""


class ExportQuotaExceeded(PipelineError):
    """The account already runs the maximum number of export tasks (5 per region)."""


TERMINAL_ERRORS = (
    InvalidInput,
    SourceNotFound,
    SnapshotFailed,
    ExportFailed,
    WaitTimedOut,
    AlreadyRunning,
    PurgeRefused,
    PublishFailed,
)
TRANSIENT_ERRORS = (Throttled, InstanceBusy, ExportQuotaExceeded)
