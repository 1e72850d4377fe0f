"""A real PostgreSQL server for the ledger's tests, from the Debian binaries (or any on PATH).

`session_cluster()` runs `initdb` once into a template and starts a copy of it: on
127.0.0.1 on a free port, its unix socket in its own directory, no fsync. Logins over TCP
check a password (scram), so a test can prove a password is refused and never shown;
the superuser logs in over the socket (trust) to make roles and databases. Postgres will
not run as root, so as root everything runs as the `postgres` user (else `nobody`).
Anything missing or failing skips the tests that need a server, with the reason.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest

ADMIN = "postgres"  # the superuser initdb makes
ROLE = "ledger"  # what the stores log in as, over TCP, with PASSWORD
PASSWORD = "Zq8:pw@x/S3cret-9"  # ':', '@' and '/' are escaped in a url: both forms must stay hidden
SERVER_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=40"


class Unavailable(Exception):
    """No server can run here; the reason is the skip's."""


def binaries() -> Path:
    """The directory of initdb, pg_ctl and postgres: on PATH, else Debian's newest."""
    found = shutil.which("initdb")
    on_path = [Path(found).resolve().parent] if found else []
    debian = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()]
    newest_first = sorted(debian, key=lambda p: int(p.parent.name), reverse=True)
    for directory in [*on_path, *newest_first]:
        if all((directory / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return directory
    raise Unavailable("no initdb, pg_ctl and postgres on PATH or in /usr/lib/postgresql/*/bin")


def run_as() -> tuple[list[str], int, int]:
    """The command prefix that drops root for postgres (none when not root), and its uid, gid."""
    if os.geteuid() != 0:
        return [], os.getuid(), os.getgid()
    for name in ("postgres", "nobody"):
        try:
            user = pwd.getpwnam(name)
        except KeyError:
            continue
        if shutil.which("runuser"):
            return ["runuser", "-u", name, "--"], user.pw_uid, user.pw_gid
        if shutil.which("setpriv"):
            ids = [f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
            return ["setpriv", *ids, "--"], user.pw_uid, user.pw_gid
        raise Unavailable("running as root, and neither runuser nor setpriv can drop to another user")
    raise Unavailable("running as root, and there is no `postgres` or `nobody` user to run the server as")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Cluster:
    """One running server: its data in `root`/data, its socket in `root`."""

    root: Path
    bin: Path
    prefix: list[str]
    port: int = 0

    def run(self, *command: str | Path, check: bool = True) -> str:
        done = subprocess.run(
            [*self.prefix, *map(str, command)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "LC_ALL": "C", "LANG": "C", "TZ": "UTC"},
            cwd=self.root,
        )
        if check and done.returncode != 0:
            name = Path(command[0]).name
            raise Unavailable(f"{name} exited {done.returncode}: {done.stderr.strip()[-800:]}")
        return done.stdout

    def start(self, tries: int = 3) -> None:
        for tried in range(1, tries + 1):  # a free port may be taken before the server binds it
            self.port = free_port()
            listen = f"-c listen_addresses=127.0.0.1 -c port={self.port}"
            where = f"{listen} -c unix_socket_directories={self.root}"
            try:
                self.run(self.bin / "pg_ctl", "-D", self.root / "data", "-l", self.root / "server.log", "-w",
                         "-t", "30", "-o", f"{where} {SERVER_OPTIONS}", "start")  # fmt: skip
                break
            except Unavailable as exc:
                if tried == tries:
                    log = self.root / "server.log"
                    raise Unavailable(f"{exc}; {log.read_text()[-800:] if log.exists() else ''}") from None
        self.admin(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")

    def stop(self) -> None:
        """Stop at once, as a crash would (no checkpoint): the tests need no data kept."""
        self.run(self.bin / "pg_ctl", "-D", self.root / "data", "-m", "immediate", "stop", check=False)

    def admin(self, statement: str, db: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(
            host=str(self.root), port=self.port, user=ADMIN, dbname=db, autocommit=True, connect_timeout=10
        ) as conn:
            conn.execute(statement)

    def new_database(self) -> str:
        """A fresh, empty database owned by ROLE: each test gets its own."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.admin(f"CREATE DATABASE {name} OWNER {ROLE}")
        return name

    def url(self, db: str, *, password: str = PASSWORD, port: int | None = None) -> str:
        return f"postgresql://{ROLE}:{quote(password, safe='')}@127.0.0.1:{port or self.port}/{db}"


@dataclass
class Servers:
    """The template made by initdb and the clusters started from copies of it."""

    root: Path
    bin: Path
    prefix: list[str]
    uid: int
    gid: int
    clusters: list[Cluster] = field(default_factory=list)
    started_s: float = 0.0  # initdb and the first server's start

    def start_cluster(self) -> Cluster:
        root = Path(tempfile.mkdtemp(prefix="c", dir=self.root))  # short: a socket path has ~100 bytes
        os.chown(root, self.uid, self.gid)
        cluster = Cluster(root, self.bin, self.prefix)
        cluster.run("cp", "-a", self.root / "template", root / "data")
        self.clusters.append(cluster)
        cluster.start()
        return cluster

    def stop(self) -> None:
        for cluster in self.clusters:
            cluster.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def session_servers() -> Iterator[Servers]:
    """Servers for a test session, removed at its end; skips when none can run."""
    pytest.importorskip("psycopg")
    started = time.monotonic()
    servers: Servers | None = None
    try:
        bin_dir = binaries()
        prefix, uid, gid = run_as()
        servers = Servers(Path(tempfile.mkdtemp(prefix="cascade-pg-")), bin_dir, prefix, uid, gid)
        os.chown(servers.root, uid, gid)
        Cluster(servers.root, bin_dir, prefix).run(
            bin_dir / "initdb", "-D", servers.root / "template", "--no-sync", "-A", "trust",
            "--auth-host=scram-sha-256", "-U", ADMIN, "-E", "UTF8", "--locale=C",
        )  # fmt: skip
        servers.start_cluster()
    except Exception as exc:  # whatever stops a server here skips the tests, it fails none
        if servers is not None:
            servers.stop()
        pytest.skip(f"no PostgreSQL server for the tests: {type(exc).__name__}: {exc}")
    servers.started_s = time.monotonic() - started
    try:
        yield servers
    finally:
        servers.stop()
