"""One botocore data loader for every session of the process, and a boto3 session that makes
each kind of client once.

moto's `mock_aws` gives each mocked block a fresh boto3 default session, and each new session
makes a new botocore `Loader`, which reads and decodes the service models (the JSON files of S3,
RDS, Step Functions, Lambda, ...) again the first time a client of that service is made. A
sandbox is such a block, and a test run makes hundreds of them: decoding the same files over
and over was about a tenth of the test suite's CPU. The loader only reads files and keeps what
it decoded (its `instance_cache`), and one session already shares it among all its clients, so
sharing it among sessions changes nothing but the time.

`install()` makes `botocore.session` create its loaders through a cache keyed by the data path
(`AWS_DATA_PATH`); it is idempotent. boto3 appends its own data folder to the loader of every
session it makes, so the shared loader's search path ignores a folder it already has.

`ReusingSession` is a boto3 session whose `client()` returns the client it made before for the
same arguments (the same `Config` object, not an equal one). Making a session registers some
three hundred handlers, and making a client builds its class, endpoint resolver and event
hooks: some 60 ms a sandbox for the handlers' clients alone, which `rds_s3_export.aws` makes
anew in every sandbox. The sandbox installs such a session as boto3's default one.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from typing import Any

import boto3
from botocore import loaders
from botocore import session as botocore_session

_original_create_loader = loaders.create_loader
_lock = threading.Lock()


class _SearchPaths(list[str]):
    """A search path that keeps each folder once, however often a session appends it."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


@functools.cache
def shared_loader(search_path_string: str | None = None) -> Any:
    """The process's loader for this data path (botocore's `create_loader`, made once)."""
    loader: Any = _original_create_loader(search_path_string)
    loader._search_paths = _SearchPaths(loader.search_paths)
    return loader


def install() -> None:
    """Make every botocore session created from now on use the shared loader."""
    with _lock:
        botocore_session.create_loader = shared_loader


def installed() -> bool:
    return botocore_session.create_loader is shared_loader


class ReusingSession(boto3.session.Session):
    """A boto3 session that makes a client once for each set of arguments (see above)."""

    LIMIT = 64  # a bound, should a caller pass a new Config object every time

    def __init__(self) -> None:
        super().__init__()
        self._made: OrderedDict[tuple[Any, ...], tuple[Any, Any]] = OrderedDict()
        self._made_lock = threading.Lock()

    def client(self, *args: Any, **kwargs: Any) -> Any:
        config = kwargs.get("config")
        key = (args, tuple(sorted((k, id(v) if k == "config" else v) for k, v in kwargs.items())))
        with self._made_lock:
            found = self._made.get(key)
            if found is not None and found[0] is config:
                return found[1]
            made = super().client(*args, **kwargs)
            self._made[key] = (config, made)
            while len(self._made) > self.LIMIT:
                self._made.popitem(last=False)
            return made
