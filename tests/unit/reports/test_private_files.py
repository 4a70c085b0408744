"""Report files hold a workspace's data: written 0600 from their creation, in directories made 0700
(issue #24), whatever the umask."""

from __future__ import annotations

import os
import stat
import uuid
from datetime import UTC, datetime

from streams.reports.runner import _write, output_path


def _mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_a_report_file_and_its_new_directories_are_private(tmp_path, monkeypatch):
    seen: list[int] = []
    real_fdopen = os.fdopen

    def spying_fdopen(fd, *args, **kwargs):
        seen.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(os, "fdopen", spying_fdopen)
    root = tmp_path / "reports"
    path = output_path(root, uuid.uuid4(), "Weekly engagement", datetime(2026, 12, 7, tzinfo=UTC), "csv")
    old = os.umask(0)
    try:
        _write(path, b"a,b\n1,2\n")
        _write(path, b"a,b\n3,4\n")  # replaced, still private
    finally:
        os.umask(old)
    assert seen == [0o600, 0o600]
    assert path.read_bytes() == b"a,b\n3,4\n"
    assert _mode(path) == 0o600
    for d in (root, path.parent.parent, path.parent):
        assert _mode(d) == 0o700, d
