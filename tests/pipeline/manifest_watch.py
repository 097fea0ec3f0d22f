"""The manifest never names a deleted folder, checked at every moment of a run.

`watching(sandbox, prefix)` looks at every S3 DeleteObjects request the handlers send while it
is active, before moto carries it out, and reads `<prefix>/_manifest.json` as it is at that
moment (straight from moto's backend, so the check makes no request of its own). A request
that would delete a key of the folder the manifest names is recorded in `violations`; a
request a fault answered never reaches the check, as it deletes nothing.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.s3.models import s3_backends

from rds_s3_export.manifest import manifest_key
from sandbox import faults
from sandbox.runtime import ACCOUNT, Sandbox

_KEY = re.compile(r"<Key>(.*?)</Key>", re.DOTALL)


class ManifestWatch:
    def __init__(self, bucket: str, prefix: str) -> None:
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.violations: list[str] = []
        self.deletes_seen = 0  # DeleteObjects requests checked

    def named(self) -> str | None:
        """The export task id the manifest names right now, or None."""
        found = s3_backends[ACCOUNT]["aws"].get_object(self.bucket, manifest_key(self.prefix))
        if found is None:
            return None
        try:
            document = json.loads(found.value)
        except ValueError:
            return None
        named = document.get("export_task_id") if isinstance(document, dict) else None
        return named if isinstance(named, str) else None

    def __call__(self, request: Any, event_name: str, **_kwargs: Any) -> None:
        """Never answers: moto (or a fault before it) answers the request."""
        if event_name != "before-send.s3.DeleteObjects":
            return
        self.deletes_seen += 1
        named = self.named()
        if named is None:
            return
        body = request.body
        text = body.decode() if isinstance(body, bytes) else str(body)
        folder = f"{self.prefix}/{named}/"
        hits = [k for k in (html.unescape(m) for m in _KEY.findall(text)) if k.startswith(folder)]
        if hits:
            self.violations.append(
                f"DeleteObjects of {len(hits)} key(s) of {folder} while the manifest names it, "
                f"e.g. {hits[0]}"
            )


@contextmanager
def watching(sandbox: Sandbox, prefix: str) -> Iterator[ManifestWatch]:
    watch = ManifestWatch(sandbox.settings.bucket, prefix)
    faults.install_hook(watch)
    try:
        yield watch
    finally:
        faults.uninstall_hook(watch)
