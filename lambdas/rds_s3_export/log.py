"""The one logger of the handlers. In Lambda the JSON log format turns records into JSON."""

from __future__ import annotations

import logging

logger = logging.getLogger("rds_s3_export")
logger.setLevel(logging.INFO)
