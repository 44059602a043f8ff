"""Editing a practice's texts from the page: checked exactly as ``practice-bot check`` checks
them, then written atomically where the live reload reads them.

A draft is checked as the whole set it would make: the files in force, with the draft in
its place, in a scratch folder. Saved, it goes to the practice's own folder (in a group,
``PRACTICES_DIR/<slug>/templates``, so the group's shared texts stay as they are), and the
live reload picks it up at once, as it would a file edited by hand.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bot.templates import InvalidTemplatesError, LiveTemplates, TemplateSet, files_in_force
from bot.templates.closures import CLOSURES_FILE
from bot.templates.files import text_parts

__all__ = ["Checked", "check_draft", "editable", "on_disk", "save", "target_folder"]


@dataclass(frozen=True, slots=True)
class Checked:
    """A draft checked as part of its set: the set it would make, or the problems, each as
    ``path:line:column: message`` with the path it would be saved at."""

    texts: TemplateSet | None
    problems: list[str]
    warnings: list[str]


def editable(name: str) -> bool:
    """Whether ``name`` is a file the page may write: a text or closures.txt, nothing else."""
    return name == CLOSURES_FILE or text_parts(name) is not None


def target_folder(templates: LiveTemplates) -> Path:
    """Where the page saves: the practice's own folder (a group's), else the texts folder."""
    return templates.overlays[0] if templates.overlays else templates.directory


def _files(templates: LiveTemplates) -> dict[str, Path]:
    """Each ``.txt`` file in force by name: the practice's own, else the shared one."""
    found = files_in_force(templates.directory, templates.overlays)
    return {name: folder / name for name, folder in found.items() if name.endswith(".txt")}


def on_disk(templates: LiveTemplates, name: str) -> str | None:
    """The file's text as it is on disk now, or None when there is no such file."""
    path = _files(templates).get(name)
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None


def check_draft(templates: LiveTemplates, name: str, text: str) -> Checked:
    """``text`` as ``name``, checked with every other file in force."""
    target = target_folder(templates)
    with tempfile.TemporaryDirectory(prefix="draft-texts-") as scratch:
        folder = Path(scratch)
        for other, path in _files(templates).items():
            if other != name:
                (folder / other).write_bytes(path.read_bytes())
        (folder / name).write_text(text, encoding="utf-8")
        try:
            checked = TemplateSet.load(
                folder, templates.practice, templates.schedule, templates.channels
            )
        except InvalidTemplatesError as error:
            return Checked(None, [_shown(p, scratch, target) for p in error.problems], [])
        warnings = [_shown(w, scratch, target) for w in checked.warnings]
        return Checked(checked, [], warnings)


def _shown(line: str, scratch: str, target: Path) -> str:
    """A message about the scratch folder, naming the file where it would be saved."""
    return line.replace(f"{scratch}{os.sep}", f"{target}{os.sep}")


def save(templates: LiveTemplates, name: str, text: str) -> Path:
    """Write ``text`` as ``name`` in the practice's own folder, atomically: a reader sees the
    old file or the new one, never half of it. Returns the path written."""
    if not editable(name):
        raise ValueError(f"{name!r} is not a text the page may write")
    folder = target_folder(templates)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    handle, scratch = tempfile.mkstemp(prefix=f".{name}.", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text if text.endswith("\n") else f"{text}\n")
            out.flush()
            os.fsync(out.fileno())
        Path(scratch).chmod(0o644)  # mkstemp made it 0600; texts are read by others too
        Path(scratch).replace(path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise
    return path
