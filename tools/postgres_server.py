"""A throwaway PostgreSQL server from the distribution's binaries, for tests and benchmarks.

`temporary_postgres()` runs `initdb` and `pg_ctl` from Debian's `postgresql` package in a temporary directory,
on a free port, with its unix socket in that directory (so nothing under /var/run is needed), and stops and
removes it at the end. Durability is off (`fsync=off`): a throwaway server that loses data on a power cut
costs nothing and commits much faster. PostgreSQL refuses to run as root, so under root (CI containers) the
server runs as the `postgres` user the package creates. What is missing raises PostgresUnavailable with the
command that installs it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from wayline_cli.suite import free_port

__all__ = ["PostgresUnavailable", "create_database", "create_schema", "temporary_postgres"]


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be started here; the message says what to install or what failed."""


_BINARIES = "/usr/lib/postgresql/*/bin"
_SUPERUSER = "postgres"
_START_TIMEOUT_SECONDS = 60


def _binaries() -> Path:
    """The bin directory of the newest PostgreSQL installed, or a test failure saying how to install one."""
    found = sorted(
        (Path(p).parent for p in glob.glob(f"{_BINARIES}/initdb")),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
    )
    if not found:
        raise PostgresUnavailable(
            f"PostgreSQL is not installed (no initdb under {_BINARIES}); a real server is needed. "
            "Install it with `apt-get install -y --no-install-recommends postgresql` (what .ci/run does)."
        )
    return found[-1]


def _as_server_user(command: list[str]) -> list[str]:
    """`command` run as the `postgres` user when we are root (PostgreSQL refuses root), else as ourselves."""
    if os.geteuid() != 0:
        return command
    try:
        pwd.getpwnam(_SUPERUSER)
    except KeyError:
        raise PostgresUnavailable(
            "running as root, but there is no `postgres` user to run PostgreSQL as; install Debian's "
            "`postgresql` package, which creates it"
        ) from None
    return ["runuser", "-u", _SUPERUSER, "--", *command]


def _run(command: list[str], what: str, log: Path | None = None) -> None:
    done = subprocess.run(_as_server_user(command), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        server_log = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
        raise PostgresUnavailable(
            f"{what} failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}\n{server_log}"
        )


@contextlib.contextmanager
def temporary_postgres() -> Iterator[str]:
    """The URL of a superuser connection to a fresh PostgreSQL server that lives for the block."""
    bin_dir = _binaries()
    # Not under pytest's tmp dirs: those are private to root, and the server user must reach its files.
    root = Path(tempfile.mkdtemp(prefix="wayline-postgres-"))
    data, sockets, log = root / "data", root / "sockets", root / "server.log"
    sockets.mkdir()
    if os.geteuid() == 0:
        server_user = pwd.getpwnam(_SUPERUSER)
        for path in (root, sockets):
            os.chown(path, server_user.pw_uid, server_user.pw_gid)
    port = free_port()
    try:
        _run(
            [
                str(bin_dir / "initdb"),
                "--pgdata",
                str(data),
                "--username",
                _SUPERUSER,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
            "initdb",
        )
        options = (
            f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        _run(
            [
                str(bin_dir / "pg_ctl"),
                "--pgdata",
                str(data),
                "--log",
                str(log),
                "--options",
                options,
                "--wait",
                "--timeout",
                str(_START_TIMEOUT_SECONDS),
                "start",
            ],
            "starting PostgreSQL",
            log,
        )
        yield f"postgresql://{_SUPERUSER}@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                subprocess.run(
                    _as_server_user(
                        [str(bin_dir / "pg_ctl"), "--pgdata", str(data), "--mode", "fast", "--wait", "stop"]
                    ),
                    capture_output=True,
                    check=False,
                    timeout=_START_TIMEOUT_SECONDS,
                )
        shutil.rmtree(root, ignore_errors=True)


def create_database(server_url: str) -> str:
    """Create an empty database with a unique name on the server of `server_url`; its URL."""
    name = f"db_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def create_schema(server_url: str) -> str:
    """Create an empty schema with a unique name in the database of `server_url`; a URL whose connections
    use only it (`search_path`). As isolated as a database of its own for our stores, which name no schema,
    and much cheaper: a CREATE DATABASE copies a template (50-130 ms here) and hundreds of them leave many
    files to remove at the end, a schema costs well under a millisecond."""
    name = f"s_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    separator = "&" if "?" in server_url else "?"
    return f"{server_url}{separator}options={quote(f'-c search_path={name}')}"
