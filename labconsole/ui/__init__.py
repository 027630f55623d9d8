"""The Textual console: the only package that imports textual.

``create_app(engine)`` builds the app around an ``EnginePort``; import it from
``labconsole.ui.app`` (this package's ``__init__`` stays empty so importing a submodule is cheap).
"""
