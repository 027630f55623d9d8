"""Ships ``presets/`` (the repository's preset files, their one source) inside the wheel.

The files stay at the repository root, where people edit and run them (``labconsole run
presets/quickstart.toml``); the build copies them to ``labconsole/preset_files/`` in the built
package, so an installed wheel finds ``labconsole run quickstart`` too. Everything else about the
package is declared in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PRESETS = Path(__file__).resolve().parent / "presets"
PACKAGED = Path("labconsole") / "preset_files"


class BuildWithPresets(build_py):
    """``build_py`` plus the preset files, copied as package data."""

    def run(self) -> None:
        super().run()
        if not PRESETS.is_dir():  # building from an sdist made without them: nothing to add
            return
        target = Path(self.build_lib) / PACKAGED
        for source in sorted(PRESETS.rglob("*.toml")):
            destination = target / source.relative_to(PRESETS)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)


setup(cmdclass={"build_py": BuildWithPresets})
