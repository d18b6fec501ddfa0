"""Entry point: ``python -m query_api`` serves the API with uvicorn on ``API_PORT``."""

import sys

from query_api.server import main

sys.exit(main())
