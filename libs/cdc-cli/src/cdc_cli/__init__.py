"""The operator CLI, ``cdc``: run the pipeline locally and (in later commands) inspect it."""

from cdc_cli._app import app, load_plugins, main
from cdc_cli._connect import CliError, StackFile, load_stack
from cdc_cli._options import DEFAULT_STACK

# ``load_stack`` and its errors are public: a service's own ``cdc`` commands (the event store's
# ``cdc dlq``) find the dev stack the way the CLI does.
__all__ = ["DEFAULT_STACK", "CliError", "StackFile", "app", "load_plugins", "load_stack", "main"]
