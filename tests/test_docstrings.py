"""Every public function, method, property and class has a docstring.

Public: a name not starting with `_`, at module level or in a public class
(public classes of private modules included). Nested functions are not
looked at.
"""

from __future__ import annotations

import ast
from fnmatch import fnmatch
from pathlib import Path

import bento_track

PACKAGE = Path(bento_track.__file__).parent

IN_PROGRESS: tuple[str, ...] = ()  # nothing is exempt


def _undocumented(node: ast.AST, prefix: str) -> list[tuple[int, str]]:
    """(line, name) of the public definitions in `node`'s body, and in its
    public classes', that have no docstring."""
    found: list[tuple[int, str]] = []
    for n in getattr(node, "body", []):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if not n.name.startswith("_") and ast.get_docstring(n) is None:
                found.append((n.lineno, prefix + n.name))
        elif isinstance(n, ast.ClassDef) and not n.name.startswith("_"):
            if ast.get_docstring(n) is None:
                found.append((n.lineno, f"class {n.name}"))
            found += _undocumented(n, f"{prefix}{n.name}.")
    return found


def missing_docstrings(root: Path) -> list[str]:
    """`path:line name` for each public definition under `root` without a
    docstring (paths relative to `root`)."""
    missing: list[str] = []
    for path in sorted(root.rglob("*.py")):
        where = path.relative_to(root).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        missing += [f"{where}:{line} {name}" for line, name in _undocumented(tree, "")]
    return missing


def test_public_names_have_docstrings() -> None:
    missing = [
        entry
        for entry in missing_docstrings(PACKAGE)
        if not any(fnmatch(entry.split(":", 1)[0], glob) for glob in IN_PROGRESS)
    ]
    assert not missing, "public names without a docstring:\n" + "\n".join(missing)
