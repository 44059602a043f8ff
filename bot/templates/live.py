"""The reply texts in use, reloaded live.

A good edit applies within a second or two; a broken one keeps the last good set and says
which file is wrong, until a later edit validates.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

import structlog

from bot.adapter import Adapter
from bot.events import Channel
from bot.hours import Schedule
from bot.replies import Reply
from bot.templates.files import PracticeInfo, TemplateSet
from bot.templates.syntax import InvalidTemplatesError

__all__ = ["FolderLook", "LiveTemplates", "folder_fingerprint"]

_log = structlog.get_logger("bot.templates")

_Fingerprint = frozenset[tuple[str, int, int, int]]
# How a reload looks at a folder: ``folder_fingerprint``, or a look shared by the reloads of
# one round (a group's practices share the group's folder: it is looked at once a round).
FolderLook = Callable[[Path], _Fingerprint]


def folder_fingerprint(directory: Path) -> _Fingerprint:
    """(name, mtime_ns, size, inode) of every ``.txt`` entry: stat calls only."""
    try:
        with os.scandir(directory) as entries:
            return frozenset(
                stat for e in entries if e.name.endswith(".txt") for stat in _entry_stat(e)
            )
    except OSError:
        return frozenset()


def _entry_stat(entry: os.DirEntry[str]) -> list[tuple[str, int, int, int]]:
    """The entry's stat, or the link's own when its target cannot be stat'ed.

    One failing entry must not fail the whole fingerprint: an unchanging empty fingerprint
    would read as "nothing changed" and stop every later reload.
    """
    for follow in (True, False):
        try:
            s = entry.stat(follow_symlinks=follow)
        except OSError:
            continue
        return [(entry.name, s.st_mtime_ns, s.st_size, s.st_ino)]
    return []  # removed since the folder was listed


class LiveTemplates:
    """The last good :class:`TemplateSet`, reloaded when the files change.

    A failed reload keeps the last good set; ``error`` and ``failed_files`` say what is wrong
    until a later edit validates.
    """

    def __init__(
        self,
        directory: Path,
        practice: PracticeInfo,
        schedule: Schedule,
        *,
        channels: Mapping[Channel, Adapter],
        on_reload: Callable[[bool], None] | None = None,
        overlays: Sequence[Path] = (),
        strict: bool = True,
    ) -> None:
        """Load the templates now; ``overlays`` are folders read before ``directory``.

        Not ``strict`` (the service), files that do not validate leave it without a set in
        use (``error`` says why) until :meth:`restore` gives it the last good one.

        Raises:
            InvalidTemplatesError: ``strict``, when the files do not validate at start-up.
        """
        self.directory = directory
        self.overlays = tuple(overlays)
        self.practice = practice
        self.schedule = schedule
        self.channels = channels
        self.on_reload = on_reload
        self.error: InvalidTemplatesError | None = None
        self.failed_files: list[str] = []
        self._seen = self._fingerprint()
        self._current: TemplateSet | None = None
        try:
            self._current = self._load()
        except InvalidTemplatesError as exc:
            if strict:
                raise
            self.error = exc  # the service says so once it has its store (and its log)
            self.failed_files = exc.files

    def _fingerprint(self, look: FolderLook = folder_fingerprint) -> tuple[_Fingerprint, ...]:
        return tuple(look(folder) for folder in (*self.overlays, self.directory))

    def _load(self) -> TemplateSet:
        return TemplateSet.load(
            self.directory, self.practice, self.schedule, self.channels, overlays=self.overlays
        )

    @property
    def current(self) -> TemplateSet:
        """The templates in use: the last set that validated."""
        if self._current is None:
            raise RuntimeError("no good set of texts: restore() the last one first")
        return self._current

    @property
    def has_set(self) -> bool:
        """Whether a good set is in use (always, once the service runs)."""
        return self._current is not None

    def restore(self, texts: Mapping[str, str]) -> bool:
        """Use ``texts``, the last good set the store kept, while the files are broken.

        Returns False when they do not validate with today's settings either.
        """
        try:
            self._current = TemplateSet.from_texts(
                texts, self.practice, self.schedule, self.channels
            )
        except InvalidTemplatesError:
            return False
        return True

    def render(self, channel: Channel, at: datetime) -> Reply:
        """Render with the templates in use (see :meth:`TemplateSet.render`)."""
        return self.current.render(channel, at)

    def reload(self, look: FolderLook = folder_fingerprint) -> bool:
        """Re-read the folder if any ``.txt`` file changed, was added or removed.

        Returns True when a changed set validated and is now in use; False when nothing
        changed or the change failed (the last good set stays; see ``error``).
        """
        seen = self._fingerprint(look)
        if seen == self._seen:
            return False
        self._seen = seen
        try:
            loaded = self._load()
        except InvalidTemplatesError as exc:
            self._refuse(exc)
            self._notify(ok=False)
            return False
        self._current = loaded
        self.error = None
        self.failed_files = []
        _log.info("templates_reloaded", files=list(loaded.files))
        self._notify(ok=True)
        return True

    def _refuse(self, exc: InvalidTemplatesError) -> None:
        self.error = exc
        self.failed_files = exc.files
        _log.warning(
            "templates_reload_failed",
            files=exc.files,
            positions=[p.position for p in exc.details],
        )

    def _notify(self, *, ok: bool) -> None:
        if self.on_reload is not None:
            self.on_reload(ok)

    async def watch(self, interval: float = 1.0) -> None:
        """Poll the folder every ``interval`` seconds until cancelled (a background task)."""
        while True:
            await asyncio.sleep(interval)
            self.reload()
