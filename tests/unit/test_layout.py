"""The house rules that import-linter does not see: every product module imports on its own, and
none of them (nor the worker's command) loads the dev kit."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def product_modules() -> list[str]:
    """Every module of streams/, db/ and schemas/ but the dev kit's, found without importing any."""
    out: list[str] = []

    def walk(path: Path, prefix: str) -> None:
        for info in pkgutil.iter_modules([str(path)]):
            name = f"{prefix}.{info.name}"
            if name == "streams.devkit":
                continue
            out.append(name)
            if info.ispkg:
                walk(path / info.name, name)

    for top in ("streams", "db", "schemas"):
        out.append(top)
        walk(ROOT / top, top)
    return out


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


def test_every_product_module_imports_without_the_dev_kit():
    modules = product_modules()
    assert "streams.worker" in modules and "streams.cli" in modules and not any(".devkit" in m for m in modules)
    loaded = _run(
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('streams.devkit'))))"
    )
    assert loaded == ""


def test_the_worker_command_does_not_load_the_dev_kit():
    out = _run(
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from streams.cli import cli, register\n"
        "register()\n"
        "helped = CliRunner().invoke(cli, ['worker', '--help'])\n"
        "assert helped.exit_code == 0, helped.output\n"
        "import streams.worker, streams.app\n"
        "print(sorted(m for m in sys.modules if m.startswith('streams.devkit')))"
    )
    assert out == "[]"


def test_the_dev_kit_commands_plug_into_the_cli():
    out = _run(
        "from click.testing import CliRunner\n"
        "from streams.cli import cli, register\n"
        "register()\n"
        "listed = CliRunner().invoke(cli, ['--help']).output\n"
        "print(' '.join(c for c in ('demo', 'bench', 'services') if f'  {c} ' in listed))"
    )
    assert out == "demo bench services"
