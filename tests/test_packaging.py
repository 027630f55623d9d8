"""An installed wheel carries the presets: `labconsole run quickstart` works outside a checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "labconsole", "presets")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the sources (the build leaves nothing in the checkout)."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(path, src / name)
    out = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(src)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (built,) = out.glob("labconsole-*.whl")
    return built


def test_wheel_holds_every_preset_byte_for_byte(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        packaged = {n: archive.read(n) for n in archive.namelist() if n.startswith("labconsole/preset_files/")}
    sources = sorted((ROOT / "presets").rglob("*.toml"))
    assert sources, "no presets in the checkout"
    for source in sources:
        name = "labconsole/preset_files/" + source.relative_to(ROOT / "presets").as_posix()
        assert packaged.get(name) == source.read_bytes(), name
    assert len(packaged) == len(sources)


def test_installed_wheel_finds_presets_by_name(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    elsewhere = tmp_path / "elsewhere"  # no presets/ folder here or above
    elsewhere.mkdir()
    code = (
        "import labconsole, labconsole.presets as p\n"
        "print(labconsole.__file__)\n"
        "print(p.resolve_preset_path('quickstart'))\n"
        "print(p.resolve_preset_path('rare/theory'))\n"
        "print(p.load_preset('quickstart').name)\n"
    )
    env = {"PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    module, quickstart, theory, name = result.stdout.split()
    assert Path(module).is_relative_to(site)
    assert Path(quickstart) == site / "labconsole" / "preset_files" / "quickstart.toml"
    assert Path(theory) == site / "labconsole" / "preset_files" / "rare" / "theory.toml"
    assert name == "quickstart"


def test_every_declared_dependency_is_imported_somewhere() -> None:
    """A dependency earns its place by being used: no package is installed for nothing."""
    import re
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    import_names = {"pillow": "PIL", "scikit-learn": "sklearn", "textual-plotext": "textual_plotext"}
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "labconsole").rglob("*.py"))
    unused = []
    for requirement in declared:
        name = re.split(r"[<>=!~ \[]", requirement, maxsplit=1)[0].lower()
        module = import_names.get(name, name.replace("-", "_"))
        if not re.search(rf"^\s*(import|from)\s+{re.escape(module)}\b", sources, flags=re.MULTILINE):
            unused.append(name)
    assert not unused, f"declared but never imported: {unused}"
