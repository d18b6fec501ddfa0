"""Entry point: ``python -m stats_aggregator`` (the container's command). Runs the service's
descriptor (``service.SERVICE``): settings from the environment, then the consumer runtime."""

import sys

from stats_aggregator.service import SERVICE

sys.exit(SERVICE.run())
