"""The operator CLI, ``cdc``: run the pipeline locally and (in later commands) inspect it."""

from cdc_cli._app import app, load_plugins, main

__all__ = ["app", "load_plugins", "main"]
