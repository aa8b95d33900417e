"""A throwaway PostgreSQL server for tests: initdb into a temporary folder, started on a free
loopback port, stopped and deleted afterwards. Never the machine's own server on 5432."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tierlift.devstack import free_port


def _bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise RuntimeError(f"{name} not found: install PostgreSQL (Debian: apt-get install postgresql)")
    return found


def _as_postgres(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield a SQLAlchemy URL of a fresh database `tierlift` on a private server."""
    # Its own folder under /tmp: pytest's tmp_path is private to root, out of the postgres user's reach.
    workdir = Path(tempfile.mkdtemp(prefix="tierlift-pg-"))
    data = workdir / "pgdata"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres")
        shutil.chown(data, "postgres")
    subprocess.run(
        _as_postgres([_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]),
        check=True, capture_output=True,
    )  # fmt: skip
    port = free_port()
    proc = subprocess.Popen(
        _as_postgres([_bin("postgres"), "-D", str(data), "-p", str(port), "-k", str(workdir), "-h", "127.0.0.1",
                      "-c", "fsync=off", "-c", "synchronous_commit=off"]),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while subprocess.run([_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(port)], capture_output=True).returncode:
            assert proc.poll() is None, "postgres exited while starting"
            assert time.monotonic() < deadline, "postgres did not start within 30s"
            time.sleep(0.1)
        subprocess.run([_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "tierlift"], check=True)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/tierlift"
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(workdir, ignore_errors=True)
