"""A real Prometheus and Alertmanager for the tests and the demo (Debian's `prometheus` and
`prometheus-alertmanager`, installed with apt-get when missing and running as root).

Python helpers::

    ensure()                                        -> {"prometheus": Path, "alertmanager": Path, "promtool": Path}
    find_binary(name)                               -> Path | None   ("prometheus", "alertmanager", "promtool", "amtool")
    start_prometheus(config_path, port, data_dir)   -> Process       (waits for /-/ready)
    start_alertmanager(config_path, port, data_dir) -> Process       (waits for /-/ready)
    handle.url, handle.port, handle.stop()

Both run as child processes on 127.0.0.1 (`port=None` or 0: a free port), log to
``<data_dir>/<name>.log`` and are stopped by ``handle.stop()`` (SIGTERM, SIGKILL after 10 s) or
when the handle is used as a context manager.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from streams.devkit.services import ServicesError, apt_install, free_port, log, tail

#: binary name -> (the names it goes by on PATH / in /usr/bin, the Debian package that has it)
BINARIES: dict[str, tuple[tuple[str, ...], str]] = {
    "prometheus": (("prometheus",), "prometheus"),
    "promtool": (("promtool",), "prometheus"),
    "alertmanager": (("prometheus-alertmanager", "alertmanager"), "prometheus-alertmanager"),
    "amtool": (("amtool",), "prometheus-alertmanager"),
}
READY_TIMEOUT_S = 60.0


def find_binary(name: str) -> Path | None:
    """The path of `name` (see BINARIES; Debian's Alertmanager is /usr/bin/prometheus-alertmanager),
    or None when it is not installed."""
    try:
        names, _ = BINARIES[name]
    except KeyError:
        raise ValueError(f"unknown monitoring binary {name!r}: one of {', '.join(BINARIES)}") from None
    for candidate in names:
        path = shutil.which(candidate) or (f"/usr/bin/{candidate}" if os.access(f"/usr/bin/{candidate}", os.X_OK) else None)
        if path:
            return Path(path)
    return None


def ensure() -> dict[str, Path]:
    """Make sure Prometheus, promtool and Alertmanager are installed (apt-get as root); their paths."""
    missing = sorted({BINARIES[name][1] for name in BINARIES if find_binary(name) is None})
    if missing:
        apt_install(missing, "Prometheus / Alertmanager", f"sudo apt-get install -y {' '.join(missing)}")
    found = {name: find_binary(name) for name in BINARIES}
    still = [name for name, path in found.items() if path is None]
    if still:
        raise ServicesError(f"{', '.join(still)} not found after installing {' '.join(missing)}")
    return {name: path for name, path in found.items() if path is not None}


@dataclass
class Process:
    """A running Prometheus or Alertmanager started by `start_prometheus` / `start_alertmanager`."""

    name: str
    port: int
    proc: subprocess.Popen
    log_file: Path
    argv: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds; idempotent."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # loopback only
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _start(name: str, argv: list[str], port: int, data_dir: Path, timeout: float) -> Process:
    log_file = data_dir / f"{name}.log"
    with open(log_file, "ab") as out:
        out.write(f"=== {time.strftime('%Y-%m-%dT%H:%M:%S')} start: {' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=data_dir)
    handle = Process(name=name, port=port, proc=proc, log_file=log_file, argv=argv)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServicesError(f"{name} exited with status {proc.returncode} before it was ready",
                                log_file, since="=== ")
        if _http_ok(f"{handle.url}/-/ready"):
            return handle
        time.sleep(0.1)
    handle.stop()
    raise ServicesError(f"{name} was not ready on {handle.url} within {timeout:.0f} s", log_file, since="=== ")


def _binary(name: str) -> Path:
    path = find_binary(name)
    if path is None:
        raise ServicesError(f"{name} is not installed: run `learnstream services monitoring` (make test does)")
    return path


def _prepare(port: int | None, data_dir: Path | str) -> tuple[int, Path]:
    data = Path(data_dir)
    data.mkdir(parents=True, exist_ok=True)
    return (port or free_port()), data


def start_prometheus(config_path: Path | str, port: int | None = None, data_dir: Path | str = ".",
                     *, timeout: float = READY_TIMEOUT_S, extra_args: tuple[str, ...] = ()) -> Process:
    """Prometheus with `config_path` on 127.0.0.1:`port` (None: a free one), its TSDB in
    `data_dir`/tsdb; returns once /-/ready answers 200. The admin and lifecycle APIs are on."""
    port, data = _prepare(port, data_dir)
    argv = [str(_binary("prometheus")), f"--config.file={Path(config_path).resolve()}",
            f"--web.listen-address=127.0.0.1:{port}", f"--storage.tsdb.path={data / 'tsdb'}",
            "--web.enable-lifecycle", "--web.enable-admin-api", *extra_args]
    handle = _start("prometheus", argv, port, data, timeout)
    log(f"prometheus ready on {handle.url} (log: {handle.log_file})")
    return handle


def start_alertmanager(config_path: Path | str, port: int | None = None, data_dir: Path | str = ".",
                       *, timeout: float = READY_TIMEOUT_S, extra_args: tuple[str, ...] = ()) -> Process:
    """Alertmanager with `config_path` on 127.0.0.1:`port` (None: a free one), its silences and
    notification log in `data_dir`/am; no cluster gossip (so several can run side by side);
    returns once /-/ready answers 200."""
    port, data = _prepare(port, data_dir)
    argv = [str(_binary("alertmanager")), f"--config.file={Path(config_path).resolve()}",
            f"--web.listen-address=127.0.0.1:{port}", f"--storage.path={data / 'am'}",
            "--cluster.listen-address=", *extra_args]
    handle = _start("alertmanager", argv, port, data, timeout)
    log(f"alertmanager ready on {handle.url} (log: {handle.log_file})")
    return handle


def log_tail(handle: Process, lines: int = 30) -> str:
    """The last lines of a started process' log (for assertion messages)."""
    return tail(handle.log_file, lines=lines, since="=== ")


__all__ = ["Process", "ensure", "find_binary", "log_tail", "start_alertmanager", "start_prometheus"]
