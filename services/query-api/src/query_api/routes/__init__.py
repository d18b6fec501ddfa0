"""The API's routers, one module per read model; ``create_app`` mounts them under ``/v1``
(``health`` at the root)."""
