"""Start ``segzero serve`` in a child process on loopback and wait until it answers (tests, benchmarks, demos).

    from segzero.serve.process import serve_subprocess
    with serve_subprocess(["--reasoner", "models/reasoner", "--segmenter", "models/segmenter"]) as url:
        httpx.get(url + "/healthz")           # url = "http://127.0.0.1:<free port>"

The child runs ``python -m segzero.cli.main serve --host 127.0.0.1 --port P ARGS``; its output is kept in memory
(the last ``keep_lines`` lines, shown if it fails to start). On exit it gets SIGTERM, then SIGKILL after
``stop_timeout`` seconds.
"""

from __future__ import annotations

import collections
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class ServerStartError(RuntimeError):
    """The child exited or did not answer ``/healthz`` in time; the message ends with its last output lines."""


@contextmanager
def serve_subprocess(
    args: list[str],
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    startup_timeout: float = 180.0,
    stop_timeout: float = 10.0,
    keep_lines: int = 60,
    env: dict | None = None,
) -> Iterator[str]:
    """Run ``segzero serve`` with ``args`` until the block ends; yields its base URL once ``/healthz`` is 200."""
    port = port or free_port(host)
    cmd = [sys.executable, "-m", "segzero.cli.main", "serve", "--host", host, "--port", str(port), *args]
    child_env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), **(env or {})}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=child_env, stdin=subprocess.DEVNULL
    )
    lines: collections.deque[str] = collections.deque(maxlen=keep_lines)
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    url = f"http://{host}:{port}"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                raise ServerStartError(f"segzero serve exited with {proc.returncode}:\n" + "".join(lines))
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise ServerStartError(f"segzero serve did not answer in {startup_timeout:.0f} s:\n" + "".join(lines))
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=stop_timeout)
        reader.join(timeout=2)
        if proc.stdout is not None:
            proc.stdout.close()
