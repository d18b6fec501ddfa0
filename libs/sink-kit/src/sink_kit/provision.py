"""Each PostgreSQL service's own login and database, created or brought up to date by a Job.

``python -m sink_kit.provision`` runs as a Kubernetes Job (``k8s/provision``) before the
consumers are deployed, with the database's administrator credentials and, per service, the
URL its Deployment will use (both from AWS Secrets Manager through External Secrets Operator):

* ``ADMIN_DATABASE_URL``: ``postgresql://<admin>:<password>@<host>:<port>/<database>``;
* ``SERVICE_DATABASE_URLS``: comma-separated service URLs; each names the service's user, its
  password and its database (``postgresql+psycopg2://event_store_writer:...@host/event_store``).

For each service it makes sure that the role exists, may log in and has that password (a
rotated password is applied on the next run), that the database exists and is owned by the
role, and that no other role may connect to it (``REVOKE CONNECT ... FROM PUBLIC``): two
services never share a database (each keeps its own ``consumer_offsets`` and migration
history) and cannot read each other's. Running it again changes nothing else: it is safe on
every deploy. The schema inside each database stays the service's own (its migrations).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import psycopg2
from psycopg2 import sql

__all__ = ["ServiceDatabase", "main", "parse_service_url", "provision"]


@dataclass(frozen=True)
class ServiceDatabase:
    user: str
    password: str
    database: str

    def __repr__(self) -> str:  # never print a password
        return f"ServiceDatabase(user={self.user!r}, database={self.database!r})"


def parse_service_url(url: str) -> ServiceDatabase:
    """The role, password and database a service URL names."""
    parts = urlsplit(url.strip())
    database = parts.path.lstrip("/")
    if not parts.username or parts.password is None or not database:
        raise ValueError(
            f"a service URL needs a user, a password and a database: {parts.scheme}://"
            f"{parts.username or '?'}:***@{parts.hostname or '?'}/{database or '?'}"
        )
    return ServiceDatabase(unquote(parts.username), unquote(parts.password), database)


def provision(admin_dsn: str, services: Sequence[ServiceDatabase]) -> list[str]:
    """Bring every service's role and database up to date; returns what was done, per line."""
    if len({s.database for s in services}) != len(services):
        raise ValueError("two services must not share a database")
    done: list[str] = []
    conn = psycopg2.connect(admin_dsn)
    conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
    try:
        with conn.cursor() as cur:
            for service in services:
                done.extend(_one(cur, service))
    finally:
        conn.close()
    return done


def _one(cur: psycopg2.extensions.cursor, service: ServiceDatabase) -> Iterable[str]:
    role, database = sql.Identifier(service.user), sql.Identifier(service.database)
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (service.user,))
    if cur.fetchone() is None:
        cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(role))
        yield f"role {service.user}: created"
    # Every run: a rotated password (or a role made by hand without LOGIN) is corrected.
    cur.execute(
        sql.SQL("ALTER ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %s").format(
            role
        ),
        (service.password,),
    )
    cur.execute(
        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (database.string,)
    )
    row = cur.fetchone()
    if row is None:
        cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(database, role))
        yield f"database {service.database}: created, owned by {service.user}"
    elif row[0] != service.user:
        cur.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(database, role))
        yield f"database {service.database}: owner {row[0]} -> {service.user}"
    cur.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(database))
    cur.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(database, role))
    yield f"{service.user}: login and password set; only it may connect to {service.database}"


def main(argv: Sequence[str] | None = None) -> int:
    del argv
    admin = os.environ.get("ADMIN_DATABASE_URL", "")
    urls = [u for u in os.environ.get("SERVICE_DATABASE_URLS", "").split(",") if u.strip()]
    if not admin or not urls:
        print(
            "provision: set ADMIN_DATABASE_URL and SERVICE_DATABASE_URLS (comma-separated)",
            file=sys.stderr,
        )
        return 2
    try:
        services = [parse_service_url(u) for u in urls]
        admin_dsn = admin.replace("postgresql+psycopg2://", "postgresql://", 1)
        for line in provision(admin_dsn, services):
            print(f"provision: {line}")
    except (ValueError, psycopg2.Error) as exc:
        print(f"provision: {type(exc).__name__}: {str(exc).strip()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
