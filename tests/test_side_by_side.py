"""halo-engine 0.3.5 and halo-live installed side by side, in both orders, in one venv.

halo-engine owns the top-level `engine` package and a `halo` script; this project
installs only `halo_live` (and `halo-live`, plus its own `halo`). One throwaway
venv gets halo-engine then this project, then halo-engine again, then this project
again; after each step the venv's own python and scripts are run, from a folder
outside the checkout, to show that neither breaks the other and that `halo` belongs
to whichever was installed last. Skipped only where halo-engine cannot be installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.reference import REFERENCE_REQUIREMENT, ReferenceEngine

pytestmark = [pytest.mark.reference, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
HALO_LIVE, HALO_ENGINE = "halo-live", "halo-engine"
TRACES = 3

# Which distribution a console script belongs to, by the module its text imports.
SCRIPT_OWNERS = {"halo_live": HALO_LIVE, "halo_cli": HALO_ENGINE}

# Runs in the venv: three agent runs through the Agents SDK's tracing API, no model call.
WRITE_TRACES = r"""
import sys
from agents.tracing import agent_span, custom_span, function_span, trace
from halo_live import setup_tracing

path, runs = sys.argv[1], int(sys.argv[2])
processor = setup_tracing(path=path, service_name="side-by-side", project_id="side-by-side")
for i in range(runs):
    with trace(f"run {i}"):
        with agent_span(name="solver"):
            with function_span(name="lookup", input="{}", output="42"):
                pass
            with custom_span(name="note", data={"run": i}):
                pass
processor.shutdown()
"""

# Runs in the venv: where each top-level name comes from, or the error importing it.
WHERE_FROM = r"""
import importlib, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        found[name] = {"file": importlib.import_module(name).__file__}
    except ImportError as exc:
        found[name] = {"error": type(exc).__name__, "missing": exc.name}
print(json.dumps(found))
"""


@dataclass
class SideBySide:
    """A venv holding both projects; `last` is the one installed most recently."""

    root: Path
    work: Path  # cwd for everything run in the venv: outside the checkout
    source: Path | None = None  # the copy of this project that is installed
    last: str = ""

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def site_packages(self) -> Path:
        return self.root / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"

    def script(self, name: str) -> Path:
        return self.root / "bin" / name

    def run(self, *argv: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        env = dict(os.environ if env is None else env)
        env.pop("PYTHONPATH", None)  # console scripts run without -I
        return subprocess.run([str(a) for a in argv], cwd=self.work, env=env,
                              capture_output=True, text=True, timeout=600)

    def pip(self, *args: str | Path) -> subprocess.CompletedProcess:
        # --no-cache-dir: throwaway, so ~/.cache is left untouched
        return self.run(self.python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "--no-cache-dir", *args)

    def must_pip(self, *args: str | Path) -> None:
        done = self.pip(*args)
        assert done.returncode == 0, f"pip install {' '.join(map(str, args))} failed:\n{done.stderr[-3000:]}"

    def where_from(self, *names: str) -> dict:
        done = self.run(self.python, "-I", "-c", WHERE_FROM, *names)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def install_last(self, dist: str) -> None:
        """Reinstall `dist` (files only) over the other, unless it already went in last."""
        if self.last != dist:
            target = self.source if dist == HALO_LIVE else REFERENCE_REQUIREMENT
            self.must_pip("--force-reinstall", "--no-deps", target)
            self.last = dist


def script_owner(script: Path) -> str:
    """The distribution whose entry point a console script runs."""
    module = re.search(r"^from (\w+)[\w.]* import", script.read_text(), re.MULTILINE)
    assert module, script.read_text()
    return SCRIPT_OWNERS[module.group(1)]


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> SideBySide:
    """halo-engine (no deps, plus pydantic as tests/reference.py does), then this project with its deps."""
    root = tmp_path_factory.mktemp("side-by-side")
    sbs = SideBySide(root / "venv", work=root / "work")
    sbs.work.mkdir()
    subprocess.run([sys.executable, "-m", "venv", str(sbs.root)], check=True, timeout=600)
    engine = sbs.pip("--no-deps", REFERENCE_REQUIREMENT)
    if engine.returncode != 0:
        pytest.skip(f"{REFERENCE_REQUIREMENT} cannot be installed: {engine.stderr.strip()[-500:]}")
    sbs.must_pip("pydantic>=2.6")
    # A clean copy of the checkout: building in the checkout reuses its build/ folder,
    # where files since moved or deleted would still ship in the wheel.
    sbs.source = root / "source"
    shutil.copytree(REPO, sbs.source, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "*.so", "__pycache__", "*.halo-index", ".halo-index"))
    sbs.must_pip(sbs.source)
    sbs.last = HALO_LIVE
    return sbs


@pytest.fixture(scope="module", params=[HALO_LIVE, HALO_ENGINE, HALO_LIVE],
                ids=["engine-then-live", "then-engine-again", "then-live-again"])
def installed(request, venv) -> SideBySide:
    """The venv after each install order, in turn; `last` names the package installed last."""
    venv.install_last(request.param)
    return venv


@pytest.fixture(scope="module")
def traces(installed, tmp_path_factory) -> Path:
    """A file written by `setup_tracing()` in the venv, as it is after this install order."""
    path = tmp_path_factory.mktemp("traces") / "traces.jsonl"
    env = {**os.environ, "OPENAI_AGENTS_DISABLE_TRACING": "0"}
    env.pop("OPENAI_API_KEY", None)
    done = installed.run(installed.python, "-I", "-c", WRITE_TRACES, path, str(TRACES), env=env)
    assert done.returncode == 0, done.stderr
    assert path.stat().st_size > 0
    return path


def test_engine_is_halo_engines(installed):
    """`engine` and `halo_cli` are halo-engine's, whichever went in last."""
    found = installed.where_from("engine.traces.trace_store", "halo_cli")
    site = installed.site_packages
    assert Path(found["engine.traces.trace_store"]["file"]) == site / "engine" / "traces" / "trace_store.py"
    # its CLI, `python -m halo_cli.main` (there is no halo_cli/__main__.py); running it needs
    # typer, httpx and inference-catalyst-tracing, which the --no-deps install leaves out
    assert Path(found["halo_cli"]["file"]) == site / "halo_cli" / "__init__.py"
    assert (site / "halo_cli" / "main.py").is_file()


def test_halo_live_is_one_namespace(installed):
    """halo_live and its engine import; no bare exporter, indexer or demo exists."""
    found = installed.where_from("halo_live", "halo_live.engine.tools", "exporter", "indexer", "demo")
    site = installed.site_packages
    assert Path(found["halo_live"]["file"]) == site / "halo_live" / "__init__.py"
    assert Path(found["halo_live.engine.tools"]["file"]).is_relative_to(site / "halo_live" / "engine")
    for bare in ("exporter", "indexer", "demo"):
        assert found[bare] == {"error": "ModuleNotFoundError", "missing": bare}


def test_halo_live_tool_counts_what_setup_tracing_wrote(installed, traces):
    done = installed.run(installed.script("halo-live"), "tool", "count_traces", traces, "--args", "{}")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"result": {"total": TRACES}}


def test_halo_engine_loads_what_setup_tracing_wrote(installed, traces, tmp_path, monkeypatch):
    """halo-engine's own index builder and TraceStore (tests/reference.py's driver) read the file."""
    monkeypatch.chdir(installed.work)  # the driver runs in our cwd
    out = ReferenceEngine(installed.python).run([traces], [{"tool": "count_traces", "args": {}}], tmp_path)
    assert out["trace_count"] == TRACES
    assert out["answers"] == [{"ok": {"result": {"total": TRACES}}}]


def test_halo_belongs_to_the_package_installed_last(installed):
    assert script_owner(installed.script("halo")) == installed.last


def test_halo_live_script_is_always_this_project(installed):
    assert script_owner(installed.script("halo-live")) == HALO_LIVE
