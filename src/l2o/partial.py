"""The finished pieces of a long computation — a learning-rate grid's runs, an evaluation's rules — saved as each
one finishes, so that an interrupted command resumes where it stopped instead of starting over.

A progress file holds ``key`` (the settings the pieces were computed with) and ``done`` ({name: value}). It is
read only when its key equals the caller's: pieces computed with other settings are never reused. Each piece is
an independent, deterministic run, so a resumed computation gives exactly what an uninterrupted one gives
(tests/test_partial.py). The file is written atomically after every piece and removed by ``finish()`` once the
computation's own result file is written. A progress file that cannot be read (a foreign or damaged file) is
ignored and overwritten, after a warning.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from l2o import checkpoint

FORMAT = "l2o.partial"


def read(path: str | Path) -> dict[str, Any] | None:
    """A progress file's document ({format, key, done}); None for a file that cannot be read or is not one."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    ok = isinstance(doc, dict) and doc.get("format") == FORMAT and isinstance(doc.get("done"), dict)
    return doc if ok else None


class Partial:
    """``get(name)`` / ``put(name, value)`` over the progress file ``path`` for the settings ``key``; with
    ``path=None`` nothing is read or written (the computation simply runs)."""

    def __init__(self, path: str | Path | None, key: dict[str, Any]):
        self.path = Path(path) if path is not None else None
        self.key = checkpoint.jsonable(key)
        self.done: dict[str, Any] = {}
        if self.path is None or not self.path.is_file():
            return
        doc = read(self.path)
        if doc is None:
            warnings.warn(f"{self.path} is not an l2o progress file; starting the computation over", stacklevel=2)
        elif doc.get("key") == self.key:
            self.done = doc["done"]

    def __contains__(self, name: str) -> bool:
        return name in self.done

    def get(self, name: str) -> Any:
        return self.done.get(name)

    def put(self, name: str, value: Any) -> None:
        self.done[name] = checkpoint.jsonable(value)
        if self.path is not None:
            checkpoint.write_json(self.path, {"format": FORMAT, "key": self.key, "done": self.done})

    def finish(self) -> None:
        """The computation is complete and saved elsewhere: remove the progress file."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)
