"""The local sandbox: the pipeline on moto's in-memory AWS, no AWS account needed.

The handlers in `lambdas/` import their shared code as the top-level package `common`, exactly
as they do inside Lambda (where `lambdas/` is the deployment package's root). The sandbox puts
that folder on `sys.path` once, here, so that it imports the very same modules.
"""

from __future__ import annotations

import sys
from pathlib import Path

LAMBDAS_DIR = Path(__file__).resolve().parent.parent / "lambdas"
if str(LAMBDAS_DIR) not in sys.path:
    sys.path.insert(0, str(LAMBDAS_DIR))
