#!/usr/bin/env python3
"""CDK entry point: read the configuration (CDK context), build the stack, synthesise.

`python app.py` writes the template to cdk.out/ offline, without AWS credentials or lookups;
`cdk synth` / `cdk deploy` run the same file and add `-c key=value` overrides.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from infra.application import create_app, read_context_file
from infra.config import ConfigError
from infra.workflow import DefinitionError

# The cdk CLI tells the app where to write (CDK_OUTDIR); run directly, it writes to cdk.out/.
OUTDIR = (
    None if os.environ.get("CDK_OUTDIR") else str(Path(__file__).resolve().with_name("cdk.out"))
)


def main() -> int:
    try:
        app, _stack = create_app(read_context_file(), outdir=OUTDIR)
    except (ConfigError, DefinitionError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    try:
        app.synth()
    except RuntimeError as err:  # cdk-nag (or another validation) refused the template
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
