"""labconsole: find where an image classifier memorizes its minority groups."""

__version__ = "0.1.0"
