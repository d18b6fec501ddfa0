"""Read access to the project's read models, shared by the services' operator commands and the
query API: ``read_models.stats`` (statistics, low stock, inventory availability),
``read_models.events`` (the event store: history, state at a time, dead letters),
``read_models.search`` (the product search index) and ``read_models.lake`` (the data lake's
report tables). Each subpackage is imported on its own, so a user pays only for the clients it
reads with; this package holds the errors they share.
"""

from read_models.errors import InvalidQueryError, NotFoundError, ReadModelError, UnavailableError

__all__ = ["InvalidQueryError", "NotFoundError", "ReadModelError", "UnavailableError"]
