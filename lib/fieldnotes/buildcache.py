"""Reuse a notebook's executed copy when nothing it depends on has changed since the last build.

``make book`` re-executes a chapter only when its *inputs* changed: the notebook's source, the
parameters it runs with, the ``fieldnotes`` modules it imports (followed through their own
imports, with the data files beside them), the committed results under ``benchmarks/results``
that the notebook or those modules name, and ``pyproject.toml`` (the pinned libraries). The
inputs are hashed (SHA-256) into one key per chapter; a successful execution is stored under
``_build/cache/<size>/`` with its key, its key numbers and its wall time, and a later build with
the same key copies it instead of running it. ``make book FRESH=1`` ignores the cache.

What the key cannot see: libraries installed outside ``pyproject.toml``'s pins, the machine,
and files a module opens through a path it builds at run time without naming the file. A build
that must not trust any of those runs with ``FRESH=1``.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "fieldnotes"
RESULTS = Path("benchmarks") / "results"
#: Files that change a chapter's result wherever it imports from.
ALWAYS = ("pyproject.toml",)
_SHELL_LINE = re.compile(r"^\s*[%!]")


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def package_dir() -> Path:
    """The folder of the installed ``fieldnotes`` package (the editable checkout's ``lib/``)."""
    import fieldnotes

    return Path(fieldnotes.__file__).resolve().parent


def notebook_code(path: Path) -> str:
    """The code cells of notebook ``path`` joined, with IPython magics and shell lines dropped."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    lines = [
        line
        for cell in nb.cells
        if cell.cell_type == "code"
        for line in cell.source.splitlines()
        if not _SHELL_LINE.match(line)
    ]
    return "\n".join(lines)


def _module_file(pkg: Path, module: str) -> Path | None:
    """The file of ``fieldnotes.a.b`` inside ``pkg`` (``a/b.py`` or ``a/b/__init__.py``), or None."""
    parts = module.split(".")[1:]
    base = pkg.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_name(pkg: Path, path: Path) -> str:
    rel = path.relative_to(pkg).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join([PACKAGE, *parts])


def imported_modules(
    source: str, *, current: str | None = None, is_package: bool = False
) -> set[str]:
    """Names of ``fieldnotes`` modules that ``source`` may import (absolute and relative imports).

    ``from fieldnotes.x import y`` yields both ``fieldnotes.x`` and ``fieldnotes.x.y`` (``y`` may
    be a submodule); names that are not modules are dropped later, when no file matches.
    ``current`` is the importing module's name, needed to resolve relative imports.
    """
    tree = ast.parse(source)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == PACKAGE}
        elif isinstance(node, ast.ImportFrom):
            if node.level and current:
                anchor = current.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != PACKAGE:
                continue
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names if a.name != "*"}
    return found


def module_closure(source: str, pkg: Path | None = None) -> list[Path]:
    """Files of every ``fieldnotes`` module ``source`` imports, directly or through others.

    Each module's parent packages count too (their ``__init__`` runs on import).
    """
    pkg = Path(pkg or package_dir())
    seen: set[Path] = set()
    todo = sorted(imported_modules(source))
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):
            path = _module_file(pkg, ".".join(parts[:depth]))
            if path is None or path in seen:
                continue
            seen.add(path)
            todo += sorted(
                imported_modules(
                    path.read_text(),
                    current=_module_name(pkg, path),
                    is_package=path.name == "__init__.py",
                )
            )
    return sorted(seen)


def data_files(modules: list[Path]) -> list[Path]:
    """Non-Python files that sit beside ``modules`` (templates, web pages), caches excluded."""
    folders = {m.parent for m in modules}
    return sorted(
        f
        for folder in folders
        for f in folder.iterdir()
        if f.is_file() and f.suffix not in {".py", ".pyc"}
    )


def named_results(root: Path, texts: list[str]) -> list[Path]:
    """Files under ``benchmarks/results`` whose file name appears in one of ``texts``."""
    folder = Path(root) / RESULTS
    if not folder.is_dir():
        return []
    return sorted(f for f in folder.iterdir() if f.is_file() and any(f.name in t for t in texts))


def notebook_inputs(
    root: Path, notebook: Path, parameters: dict, *, pkg: Path | None = None
) -> dict[str, str]:
    """Everything a chapter's result depends on, as ``{what: SHA-256 or JSON}``; see the module doc.

    ``pkg`` is the ``fieldnotes`` package folder (default: the installed one).
    """
    root = Path(root).resolve()
    pkg = Path(pkg or package_dir())
    code = notebook_code(notebook)
    modules = module_closure(code, pkg)
    texts = [code, *(m.read_text() for m in modules)]
    inputs = {"parameters": json.dumps(parameters, sort_keys=True, default=str)}
    inputs[f"notebook:{Path(notebook).name}"] = _sha256(notebook)
    for f in [*modules, *data_files(modules)]:
        inputs[f"package:{f.relative_to(pkg).as_posix()}"] = _sha256(f)
    for f in named_results(root, texts):
        inputs[f"results:{f.name}"] = _sha256(f)
    for name in ALWAYS:
        if (root / name).is_file():
            inputs[name] = _sha256(root / name)
    return inputs


def cache_key(inputs: dict[str, str]) -> str:
    """One SHA-256 over all of a chapter's inputs (order-independent)."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Cached:
    """A stored execution: the executed notebook, its key numbers (or None) and its wall time (s)."""

    notebook: Path
    key_numbers: Path | None
    seconds: float
    recorded: str


class BuildCache:
    """Executed notebooks stored by chapter under ``folder``, each with the key it was run for."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def _meta(self, name: str) -> Path:
        return self.folder / f"{name}.json"

    def lookup(self, name: str, key: str) -> Cached | None:
        """The stored execution of ``name`` if it was made for ``key``; None otherwise."""
        meta_path = self._meta(name)
        if not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError:
            return None
        notebook = self.folder / f"{name}.ipynb"
        if meta.get("key") != key or not notebook.is_file():
            return None
        numbers = self.folder / f"{name}.key-numbers.json"
        return Cached(
            notebook, numbers if numbers.is_file() else None, meta["seconds"], meta["recorded"]
        )

    def store(
        self,
        name: str,
        key: str,
        executed: Path,
        key_numbers: Path | None,
        seconds: float,
        recorded: str,
    ) -> None:
        """Keep a successful execution of ``name`` for ``key`` (replacing an older one)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        shutil.copy2(executed, self.folder / f"{name}.ipynb")
        numbers = self.folder / f"{name}.key-numbers.json"
        if key_numbers is not None and Path(key_numbers).is_file():
            shutil.copy2(key_numbers, numbers)
        elif numbers.exists():
            numbers.unlink()
        meta = {"key": key, "seconds": seconds, "recorded": recorded}
        self._meta(name).write_text(json.dumps(meta, indent=2) + "\n")
