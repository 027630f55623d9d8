"""``python -m labconsole.cli`` runs the same command line as ``labconsole``."""

from labconsole.cli.app import main

if __name__ == "__main__":
    main()
