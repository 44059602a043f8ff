"""``--env-file``: the one reading of a ``KEY=value`` file, the one ``docker run --env-file`` uses.

The same ``.env`` is read by ``docker run --env-file``, by Compose's ``env_file`` and by
``practice-bot --env-file`` on a bare-metal install. Docker's rules are the simplest and the
strictest, so a file that means one thing here means the same thing in a container:

- leading blanks of a line are ignored; a line whose first non-blank character is ``#`` is a
  comment; blank lines are ignored;
- ``KEY=value``: the value is everything after the first ``=`` up to the end of the line,
  verbatim: quotes stay part of the value, ``#`` starts no comment, ``$`` expands nothing,
  spaces are kept (a final ``\\r`` of a Windows line ending is dropped);
- ``KEY`` alone takes ``KEY`` from the environment when it is set, and is skipped otherwise;
- a name containing a space or tab (``export KEY=value``, ``KEY = value``) or no name at all
  is an error, as it is for Docker;
- the file is UTF-8 (a byte-order mark at the start is ignored).

A value that a dotenv reader (python-dotenv, Compose's ``env_file``) would read differently
gives a warning naming the line and the variable, never the value: surrounding quotes (they
strip them), `` #`` (they cut the value there), blanks at either end (they trim them) and ``$``
(they expand it).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import ConfigError

__all__ = ["EnvFile", "read_env_file"]

_BLANKS = " \t"  # what Docker refuses inside a name
_BOM = "\ufeff"
_INLINE_COMMENT = re.compile(r"\s#")


@dataclass(frozen=True, slots=True)
class EnvFile:
    """The variables of one file, and ``path:line: VARIABLE …`` notes on risky values."""

    values: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _differences(value: str) -> list[str]:
    """How dotenv readers would read ``value`` differently from Docker (and from us)."""
    notes: list[str] = []
    if value[:1] in {"'", '"'}:
        notes.append(
            "starts with a quote: the quotes are part of the value here and in "
            "docker run --env-file, while a dotenv reader or docker compose's env_file strips "
            "them; write the value without quotes"
        )
    elif _INLINE_COMMENT.search(value):
        notes.append(
            'contains " #": the whole line is the value here and in docker run --env-file, '
            "while a dotenv reader or docker compose's env_file cuts the value there"
        )
    if value != value.strip(_BLANKS):
        notes.append(
            "has a space or tab at its start or end: kept here and in docker run --env-file, "
            "trimmed by a dotenv reader or docker compose's env_file"
        )
    if "$" in value.replace("$$", ""):  # "$$" is "$" to compose, and a hash reads either
        notes.append(
            'contains "$": kept as it is here and in docker run --env-file, while docker '
            "compose's env_file expands $NAME and ${NAME} (a dotenv reader ${NAME})"
        )
    return notes


def _lines(path: Path) -> list[str]:
    try:
        data = path.read_bytes()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigError([f"--env-file: cannot read {path}: {reason}"]) from None
    lines: list[str] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError as error:
            col = error.start + 1
            raise ConfigError([f"{path}:{number}:{col}: the file is not UTF-8 text"]) from None
    if lines:
        lines[0] = lines[0].removeprefix(_BOM)
    return [line.removesuffix("\r") for line in lines]


def read_env_file(path: Path, environ: Mapping[str, str] | None = None) -> EnvFile:
    """Read ``path`` by Docker's ``--env-file`` rules (see the module's docstring).

    ``environ`` (default ``os.environ``) supplies the value of a line that names a variable
    without ``=``.

    Raises:
        ConfigError: the file is missing or unreadable, or a line is not ``KEY=value``
            (``path:line:col: message``, never the line's text beyond a variable name).
    """
    if not path.is_file():
        raise ConfigError([f"--env-file: {path} does not exist or is not a file"])
    environ = os.environ if environ is None else environ
    result = EnvFile()
    for number, line in enumerate(_lines(path), start=1):
        text = line.lstrip()
        if not text or text.startswith("#"):
            continue
        indent = len(line) - len(text)
        name, equals, value = text.partition("=")
        blank = next((i for i, ch in enumerate(name) if ch in _BLANKS), None)
        if blank is not None:
            if name[:blank] == "export":
                where = f"{path}:{number}:{indent + 1}"
                problem = "'export' is not allowed here (docker run --env-file refuses it too)"
            else:
                where = f"{path}:{number}:{indent + blank + 1}"
                problem = "a variable name cannot contain a space or tab"
            raise ConfigError([f"{where}: {problem}; write KEY=value"])
        if not name:
            where = f"{path}:{number}:{indent + 1}"
            raise ConfigError([f"{where}: no variable name before '='; write KEY=value"])
        if not equals:
            if name in environ:
                result.values[name] = environ[name]
            continue
        result.values[name] = value
        result.warnings.extend(f"{path}:{number}: {name} {note}" for note in _differences(value))
    return result
