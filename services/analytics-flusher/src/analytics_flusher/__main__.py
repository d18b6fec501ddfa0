"""Entry point: ``python -m analytics_flusher`` (the container's command). Runs the service's
descriptor (``service.SERVICE``): settings from the environment, then the consumer runtime."""

import sys

from analytics_flusher.service import SERVICE

sys.exit(SERVICE.run())
