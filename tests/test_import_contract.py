"""The engine contract: ``labconsole.engine`` and ``labconsole.config`` import none of the console
(ui, textual), the report (report, matplotlib, rich) or the command line (cli).

Data flows one way: the engine writes run directories; the report, the CLI and the console read
them. Two checks: every import statement in the sources (including imports inside functions,
which a test run may never reach), and what importing every engine module actually loads.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "labconsole"
ENGINE_PACKAGES = ("engine", "config")
FORBIDDEN = ("labconsole.ui", "labconsole.report", "labconsole.cli", "textual", "rich", "matplotlib")


def _forbidden(module: str) -> bool:
    return any(module == f or module.startswith(f + ".") for f in FORBIDDEN)


def _module_name(path: Path, package_root: Path) -> str:
    parts = list(path.relative_to(package_root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, package_root: Path = PACKAGE) -> list[tuple[int, str]]:
    """(line, absolute module name) for every import in ``path``; ``from a import b`` yields both
    ``a`` and ``a.b`` (b may be a submodule), relative imports are resolved against the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = _module_name(path, package_root)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names if alias.name != "*"]
    return found


def engine_sources(package_root: Path = PACKAGE) -> list[Path]:
    return sorted(p for sub in ENGINE_PACKAGES for p in (package_root / sub).rglob("*.py"))


def static_offenders(package_root: Path = PACKAGE) -> list[str]:
    return [
        f"{path.relative_to(package_root.parent)}:{line}: imports {module}"
        for path in engine_sources(package_root)
        for line, module in imported_modules(path, package_root)
        if _forbidden(module)
    ]


def test_the_checker_sees_every_kind_of_import(tmp_path: Path) -> None:
    package = tmp_path / "labconsole"
    (package / "engine" / "sub").mkdir(parents=True)
    (package / "config").mkdir()
    (package / "engine" / "sub" / "a.py").write_text(
        "import os\n"
        "def draw():\n"
        "    import matplotlib.pyplot as plt\n"
        "    from ... import report\n"
        "    from ...ui.app import LabApp\n"
    )
    (package / "config" / "b.py").write_text("from rich.console import Console\nfrom labconsole import cli\n")
    offenders = static_offenders(package)
    assert {o.split(": imports ")[1] for o in offenders} == {
        "matplotlib.pyplot",
        "labconsole.report",
        "labconsole.ui.app",
        "labconsole.ui.app.LabApp",
        "rich.console",
        "rich.console.Console",
        "labconsole.cli",
    }
    assert "labconsole/engine/sub/a.py:3: imports matplotlib.pyplot" in offenders


def test_engine_sources_import_no_console_report_or_cli() -> None:
    assert len(engine_sources()) > 30  # the walk found the packages
    offenders = static_offenders()
    assert not offenders, "the engine must write data, never draw or print:\n" + "\n".join(offenders)


def test_importing_every_engine_module_loads_no_console_report_or_cli() -> None:
    modules = sorted({_module_name(p, PACKAGE) for p in engine_sources()})
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"forbidden = {FORBIDDEN!r}\n"
        "bad = sorted(m for m in sys.modules if any(m == f or m.startswith(f + '.') for f in forbidden))\n"
        "print('\\n'.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = result.stdout.split()
    assert not loaded, f"importing the engine loaded {', '.join(loaded)}"
