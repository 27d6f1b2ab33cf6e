"""A logging filter that masks identity numbers in every log line, tracebacks included."""
from __future__ import annotations

import logging

from creditgrade.features.ids import redact


class Redact(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install() -> None:
    """Add the filter to every handler configured so far (root and named loggers)."""
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in list(logging.Logger.manager.loggerDict))]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            if not any(isinstance(f, Redact) for f in handler.filters):
                handler.addFilter(Redact())
