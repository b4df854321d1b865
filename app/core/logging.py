"""Logs as JSON lines on stderr, for every process: `serve` (uvicorn's own loggers too), the
runner and every command.

Each line is one record: the request id of the request it belongs to, the record's extra
fields, and an exception's traceback inside (`exc`), never as loose text. Every record,
ours or a library's, passes `RedactCardNumbers` first: no card number reaches a log in
any form.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from app.core.card_numbers import redact_card_numbers

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# uvicorn adds `color_message`, its message with terminal colour codes: not for a JSON log.
_STANDARD_ATTRS = set(vars(logging.makeLogRecord({})).keys()) | {
    "message",
    "asctime",
    "color_message",
}
# Loggers of libraries that speak up (asyncio, alembic, warnings ...) go through the root.
LIBRARY_LOG_LEVEL = "WARNING"
_OURS = "_billing_portal_handler"


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_card_numbers(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**12:
        redacted = redact_card_numbers(str(value))
        return value if redacted == str(value) else redacted
    if isinstance(value, dict):
        return {_redact(k): _redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact(item) for item in value]
    return value


class RedactCardNumbers(logging.Filter):
    """Replaces card numbers in a record's message (after its arguments are filled in),
    extra fields, exception and stack text. Installed on the handlers, so it sees every
    record they write, whichever logger it came from."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # arguments that do not fit: the handler reports it
            message = redact_card_numbers(str(record.msg))
            record.msg, record.args = message, None
        redacted = redact_card_numbers(message)
        if redacted is not message:
            record.msg, record.args = redacted, None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                setattr(record, key, _redact(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_card_numbers(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_card_numbers(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str)


PLAIN_FORMAT = "%(levelname)s %(name)s %(message)s"


def _handler(json_lines: bool) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(PLAIN_FORMAT))
    handler.addFilter(RedactCardNumbers())
    setattr(handler, _OURS, True)
    return handler


def _install(logger: logging.Logger, handler: logging.Handler) -> None:
    """Replace the handler we installed before, leaving others' (a test's capture) alone."""
    logger.handlers[:] = [h for h in logger.handlers if not getattr(h, _OURS, False)]
    logger.addHandler(handler)


def configure_logging(level: str = "INFO", *, json_lines: bool = True) -> None:
    """Our loggers at `level`, everything else (libraries, warnings) at WARNING, all
    through one redacting handler on stderr. Safe to call again."""
    handler = _handler(json_lines)
    ours = logging.getLogger("billing_portal")
    _install(ours, handler)
    ours.setLevel(level.upper())
    ours.propagate = False
    root = logging.getLogger()
    _install(root, handler)
    root.setLevel(LIBRARY_LOG_LEVEL)
    logging.captureWarnings(True)


def uvicorn_log_config(level: str = "INFO", *, json_lines: bool = True) -> dict[str, Any]:
    """uvicorn's `log_config`: its server and access loggers through the same formatter and
    redaction as ours (uvicorn applies it in every worker process it starts)."""
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"} if json_lines else {"format": PLAIN_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": f"{__name__}.RedactCardNumbers"}},
        "formatters": {"default": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "default",
                "filters": ["redact"],
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"level": level.upper()},
            "uvicorn.access": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
        },
    }
