"""Every repository path that README.md and docs/*.md cite exists, except the outputs of long runs
that have not been run yet and scripts cited at an older commit (listed here, with the reason), so
that no number in the docs points to a file that is not there."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITED = re.compile(r"(?<![\w/.-])((?:docs|benchmarks|configs|src|tests)/[\w./-]+)")

# outputs of commands the docs give but that have not run yet; scripts cited at a commit
NOT_YET: dict[str, str] = {}


def cited_paths() -> dict[str, list[str]]:
    """Cited path -> where; a path followed by ``{a,b}`` or ``*`` is kept as a prefix ending in
    ``*`` (``docs/run.{metrics.json,trace.jsonl}`` -> ``docs/run.*``)."""
    found: dict[str, list[str]] = {}
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            for match in CITED.finditer(line):
                path = match.group(1)
                if line[match.end() : match.end() + 1] in ("{", "*"):
                    path += "*"
                else:
                    path = path.rstrip(".,;:)")
                found.setdefault(path, []).append(f"{doc.name}:{number}")
    return found


def _exists(path: str) -> bool:
    """A file or directory, or the prefix of files (``--png docs/img/x`` writes ``x-*.png``)."""
    if path.endswith("*"):
        return any(ROOT.glob(path))
    return (ROOT / path).exists() or any(ROOT.glob(f"{path}-*"))


def test_cited_paths_exist() -> None:
    cited = cited_paths()
    assert len(cited) > 50  # the pattern finds the docs' citations at all
    missing = {p: w for p, w in cited.items() if p not in NOT_YET and not _exists(p)}
    assert not missing, f"cited but missing: {missing}"


def test_the_exceptions_are_still_cited() -> None:
    cited = cited_paths()
    assert not [p for p in NOT_YET if p not in cited], "drop exceptions the docs no longer cite"
