"""Entry point: ``python -m event_store_writer`` (the container's command). Runs the service's
descriptor (``service.SERVICE``): settings from the environment, then the consumer runtime."""

import sys

from event_store_writer.service import SERVICE

sys.exit(SERVICE.run())
