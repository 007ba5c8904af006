"""What every stack's detector shares: reading a source file as text with an error naming it,
and walking the service's own source files (not installed packages, tests or build output)."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from kit.errors import DetectionError


def read_utf8(path: Path) -> str:
    """A file kit must parse (package.json, pyproject.toml): one that is not UTF-8 is an error
    naming the file and the byte, never read as empty."""
    try:
        return Path(path).read_text()
    except UnicodeDecodeError as exc:
        raise DetectionError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=str(path),
                             hint="save it as UTF-8") from None


def source_files(source: Path, suffixes: Iterable[str], skip_dirs: set[str],
                 skip: Callable[[Path], bool] = lambda rel: False) -> Iterator[Path]:
    """The files under `source` ending in one of `suffixes`, sorted, outside `skip_dirs` (at any
    depth) and not matched by `skip` (given the path relative to `source`)."""
    suffixes = tuple(suffixes)
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if path.name.endswith(suffixes) and not skip_dirs.intersection(rel.parts[:-1]) and not skip(rel) \
                and path.is_file():
            yield path
