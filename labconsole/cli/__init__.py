"""Command line: ``labconsole`` and its subcommands (``app``), entry point ``main``."""

from labconsole.cli.app import app, main

__all__ = ["app", "main"]
