"""Release notes from conventional commits: grouped as breaking changes, features and fixes,
written as a section of CHANGELOG.md in the release commit and as the annotated tag's message.

Pure functions of the commits; the release step writes what they return.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from agentimage.versioning import parse_commit

CHANGELOG_FILE = "CHANGELOG.md"
GROUPS = (("breaking", "Breaking changes"), ("feature", "Features"), ("fix", "Fixes"))
HEADER = """# Changelog

Every release of the image, newest first. `invoke release` writes each section from the
conventional commits since the release before it: breaking changes (`type!:` or a
`BREAKING CHANGE:` footer), features (`feat:`) and fixes (`fix:`, `perf:`); other commit
types are left out. The annotated git tag of each release carries the same list.
"""
_SECTION = re.compile(r"^## (?P<tag>v\S+)", re.MULTILINE)


@dataclass(frozen=True)
class Entry:
    group: str  # breaking | feature | fix
    text: str  # "scope: description" or the description
    sha: str  # abbreviated commit id


def entry(sha: str, message: str) -> Entry | None:
    """The note a commit makes, or None for a commit that is not a breaking change, a
    feature or a fix. A breaking change is noted once, with its footer's text if it has one."""
    commit = parse_commit(message)
    if commit is None:
        return None
    if commit.breaking:
        group, text = "breaking", commit.breaking_note or commit.description
    elif commit.type == "feat":
        group, text = "feature", commit.description
    elif commit.type in ("fix", "perf"):
        group, text = "fix", commit.description
    else:
        return None
    return Entry(group, f"{commit.scope}: {text}" if commit.scope else text, sha[:7])


def entries(commits: Iterable[tuple[str, str]]) -> tuple[Entry, ...]:
    """(sha, message) pairs, newest first as git lists them -> the notes, oldest first."""
    found = [entry(sha, message) for sha, message in commits]
    return tuple(e for e in reversed(found) if e is not None)


def _grouped(notes: tuple[Entry, ...]) -> list[tuple[str, list[Entry]]]:
    return [
        (title, [n for n in notes if n.group == group])
        for group, title in GROUPS
        if any(n.group == group for n in notes)
    ]


NOTHING = "No breaking change, feature or fix since the release before."


def section(tag: str, date: str, notes: tuple[Entry, ...]) -> str:
    """The CHANGELOG.md section of one release (Markdown, ending in a newline)."""
    lines = [f"## {tag} ({date})", ""]
    for title, group in _grouped(notes):
        lines += [f"### {title}", "", *(f"- {n.text} ({n.sha})" for n in group), ""]
    if not notes:
        lines += [NOTHING, ""]
    return "\n".join(lines)


def tag_message(tag: str, notes: tuple[Entry, ...]) -> str:
    """The annotated tag's message: the same notes as plain text (git strips lines that
    start with '#' from a tag message, so no Markdown headings)."""
    lines = [f"release {tag}"]
    for title, group in _grouped(notes):
        lines += ["", f"{title}:", *(f"- {n.text} ({n.sha})" for n in group)]
    if not notes:
        lines += ["", NOTHING]
    return "\n".join(lines)


def has_section(text: str, tag: str) -> bool:
    return any(match["tag"] == tag for match in _SECTION.finditer(text))


def updated(existing: str | None, new_section: str) -> str:
    """CHANGELOG.md with NEW_SECTION above the newest release (a new file gets the header)."""
    if existing is None or not existing.strip():
        return f"{HEADER}\n{new_section}"
    first = _SECTION.search(existing)
    if first is None:
        return existing.rstrip("\n") + "\n\n" + new_section
    return existing[: first.start()] + new_section + "\n" + existing[first.start() :]
