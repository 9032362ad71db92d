"""Removal of API keys from URLs, messages and log records."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

REDACTED = "***"
_KEY_IN_PATH = re.compile(r"(/v6/)(?!latest/|history/|pair/|enriched/|codes\b)[^/?#\s]+")
_KEY_IN_QUERY = re.compile(r"(?i)([?&](?:api[_-]?key|key|token|access_key)=)[^&#\s]+")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s'\"]+")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Return `text` with the given secrets and anything shaped like a key replaced by ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    text = _KEY_IN_PATH.sub(r"\1" + REDACTED, text)
    text = _KEY_IN_QUERY.sub(r"\1" + REDACTED, text)
    return _BEARER.sub(r"\1" + REDACTED, text)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message so that no secret reaches a handler."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secret for secret in secrets if secret)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message, self.secrets)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


# A logger's filter sees only the records logged on it, so each enrichment logger is named.
_HTTP_LOGGERS = ("httpx", "enrichment.resilience", "enrichment.build")


def install_log_redaction(secrets: Iterable[str]) -> RedactingFilter:
    """Attach one redacting filter to the HTTP and enrichment loggers (httpx logs full request URLs)."""
    redacting = RedactingFilter(secrets)
    for name in _HTTP_LOGGERS:
        logger = logging.getLogger(name)
        for existing in list(logger.filters):
            if isinstance(existing, RedactingFilter):
                logger.removeFilter(existing)
        logger.addFilter(redacting)
    return redacting
