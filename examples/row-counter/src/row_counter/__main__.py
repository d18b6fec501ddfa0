"""Entry point: ``python -m row_counter``. Runs the service's descriptor (``service.SERVICE``):
settings from the environment, then the consumer runtime."""

import sys

from row_counter.service import SERVICE

sys.exit(SERVICE.run())
