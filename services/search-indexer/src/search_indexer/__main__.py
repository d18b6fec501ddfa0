"""Entry point: ``python -m search_indexer`` (the container's command). Runs the service's
descriptor (``service.SERVICE``): settings from the environment, then the consumer runtime."""

import sys

from search_indexer.service import SERVICE

sys.exit(SERVICE.run())
