"""The operator CLI, ``cdc``: run the pipeline locally and (in later commands) inspect it."""

from cdc_cli._app import COMMANDS_GROUP, app, load_plugins, main

__all__ = ["COMMANDS_GROUP", "app", "load_plugins", "main"]
