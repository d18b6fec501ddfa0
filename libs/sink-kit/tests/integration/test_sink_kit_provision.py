"""``sink_kit.provision`` against the real PostgreSQL: each service's role and database."""

from __future__ import annotations

import psycopg2
import pytest
from devstack import PostgresServer
from sink_kit.provision import ServiceDatabase, main, parse_service_url, provision


def _password_hash(server: PostgresServer, role: str) -> str | None:
    with server.connect("postgres") as conn, conn.cursor() as cur:
        cur.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,))
        row = cur.fetchone()
    return None if row is None else row[0]


def test_each_service_gets_its_own_login_and_database_and_a_rerun_changes_nothing_else(
    sink_postgres: PostgresServer, unique_id: str
) -> None:
    a = ServiceDatabase(f"svc_a_{unique_id}", "first-secret", f"db_a_{unique_id}")
    b = ServiceDatabase(f"svc_b_{unique_id}", "other-secret", f"db_b_{unique_id}")
    admin = sink_postgres.dsn("postgres")
    done = provision(admin, [a, b])
    assert f"role {a.user}: created" in done
    assert f"database {a.database}: created, owned by {a.user}" in done
    first_hash = _password_hash(sink_postgres, a.user)
    assert first_hash and first_hash.startswith("SCRAM-SHA-256$")
    # The role works in its own database: it owns it, it can create its schema there.
    own = psycopg2.connect(
        f"host=127.0.0.1 port={sink_postgres.port} user={a.user} dbname={a.database}"
    )
    with own, own.cursor() as cur:
        cur.execute("CREATE TABLE consumer_offsets (id int)")
    own.close()
    # ... and may not even connect to the other service's.
    with pytest.raises(psycopg2.OperationalError, match="permission denied"):
        psycopg2.connect(
            f"host=127.0.0.1 port={sink_postgres.port} user={a.user} dbname={b.database}"
        )
    # A second run (every deploy) creates nothing; a rotated password is applied.
    rotated = ServiceDatabase(a.user, "rotated-secret", a.database)
    again = provision(admin, [rotated, b])
    assert not [line for line in again if "created" in line]
    assert _password_hash(sink_postgres, a.user) not in (None, first_hash)


def test_two_services_may_not_share_a_database(sink_postgres: PostgresServer) -> None:
    with pytest.raises(ValueError, match="share a database"):
        provision(
            sink_postgres.dsn("postgres"),
            [ServiceDatabase("x", "p", "same"), ServiceDatabase("y", "q", "same")],
        )


def test_the_job_reads_its_environment_and_never_prints_a_password(
    sink_postgres: PostgresServer,
    unique_id: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = (
        f"postgresql+psycopg2://svc_c_{unique_id}:p%40ss-w0rd@127.0.0.1:{sink_postgres.port}"
        f"/db_c_{unique_id}?sslmode=disable"
    )
    assert parse_service_url(url) == ServiceDatabase(
        f"svc_c_{unique_id}", "p@ss-w0rd", f"db_c_{unique_id}"
    )
    monkeypatch.setenv("ADMIN_DATABASE_URL", sink_postgres.url("postgres"))
    monkeypatch.setenv("SERVICE_DATABASE_URLS", url)
    assert main() == 0
    out = capsys.readouterr()
    assert f"database db_c_{unique_id}: created" in out.out
    assert "p@ss-w0rd" not in out.out + out.err
    monkeypatch.setenv("SERVICE_DATABASE_URLS", "postgresql://nobody@host/db")
    assert main() == 1
    assert "needs a user, a password and a database" in capsys.readouterr().err
    monkeypatch.delenv("ADMIN_DATABASE_URL")
    assert main() == 2
