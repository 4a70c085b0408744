"""A headless Chromium for the tests that open reports in a browser (Debian's `chromium`,
installed with apt-get when missing and running as root)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from streams.devkit.services import ServicesError, apt_install

NAMES = ("chromium", "chromium-browser", "google-chrome")
#: what this machine's closed network needs (no background connections, no first-run, no GPU)
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--force-device-scale-factor=1")


def find() -> Path | None:
    for name in NAMES:
        path = shutil.which(name)
        if path:
            return Path(path)
    return None


def ensure() -> Path:
    """The Chromium binary, installed if missing."""
    path = find()
    if path is None:
        apt_install(["chromium"], "Chromium (for the report screenshot tests)", "sudo apt-get install -y chromium")
        path = find()
        if path is None:
            raise ServicesError("chromium was installed but is not on PATH")
    return path


def run(url: str, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Chromium headless on `url` with a fresh profile; `args` e.g. --screenshot=F or --dump-dom."""
    binary = find()
    if binary is None:
        raise ServicesError("Chromium is not installed: run `learnstream services browser` (make test does)")
    with tempfile.TemporaryDirectory(prefix="learnstream-chromium-") as profile:
        return subprocess.run([str(binary), *FLAGS, f"--user-data-dir={profile}", *args, url],
                              capture_output=True, timeout=timeout, cwd=profile)
