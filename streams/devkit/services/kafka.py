"""Single-node Apache Kafka 4.1.1 (KRaft, broker+controller in one JVM) on loopback.

The broker's runtime classpath is downloaded ONCE from Maven Central with `mvn` (see
kafka-pom.xml) into ``${LEARNSTREAM_CACHE_DIR:-~/.cache/learnstream}/kafka-4.1.1/lib``, outside
the repo. Per state dir, ``<state>/kafka`` holds server.properties, the chosen ports, the log
dirs (``data/``), ``broker.pid`` and ``broker.log``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from streams.devkit.services import (
    ServicesError,
    choose_port,
    file_lock,
    log,
    pid_alive,
    port_is_free,
    private_dir,
    read_int,
    run_async,
    write_atomic,
)

KAFKA_VERSION = "4.1.1"
POM = Path(__file__).with_name("kafka-pom.xml")
HEAP_OPTS = ["-Xmx512m", "-Xms256m"]
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
MAX_LOG_BYTES = 50 * 1024 * 1024
START_MARKER = "=== starting broker"

# Keep strong references to brokers started by this process (avoids "still running" warnings).
_children: list[subprocess.Popen] = []


# ------------------------------------------------------------------------------- the jars


def cache_dir() -> Path:
    return Path(os.environ.get("LEARNSTREAM_CACHE_DIR") or "~/.cache/learnstream").expanduser()


def kafka_home() -> Path:
    return cache_dir().resolve() / f"kafka-{KAFKA_VERSION}"


def lib_dir() -> Path:
    return kafka_home() / "lib"


def _require_tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if not path:
        raise ServicesError(f"`{name}` not found on PATH: {hint}")
    return path


def _java() -> str:
    return _require_tool(
        "java", "Kafka needs a Java 17+ runtime (e.g. apt-get install openjdk-17-jre-headless)"
    )


def ensure_jars() -> Path:
    """The Kafka lib dir, fetching the jars with Maven the first time (marker file = complete)."""
    home = kafka_home()
    lib = home / "lib"
    marker = home / ".complete"
    pom_text = POM.read_text()
    want = hashlib.sha256(pom_text.encode()).hexdigest()
    if marker.exists() and marker.read_text().strip() == want and any(lib.glob("kafka_2.13-*.jar")):
        return lib
    mvn = _require_tool(
        "mvn", "Maven is needed once to download the Kafka jars (apt-get install maven)"
    )
    _java()
    home.mkdir(parents=True, exist_ok=True)
    with file_lock(home / ".fetch.lock"):
        if marker.exists() and marker.read_text().strip() == want:  # fetched by a concurrent run
            return lib
        marker.unlink(missing_ok=True)
        shutil.rmtree(lib, ignore_errors=True)
        pom = home / "pom.xml"  # a copy: Maven must not write anything next to the repo's pom
        pom.write_text(pom_text)
        mvn_log = home / "mvn.log"
        log(f"fetching Kafka {KAFKA_VERSION} jars into {lib} (once; ~30 s) ...")
        started = time.monotonic()
        cmd = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={lib}",
            "-DincludeScope=runtime",
        ]
        with open(mvn_log, "wb") as out:
            rc = subprocess.run(
                cmd, cwd=home, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            ).returncode
        if rc != 0:
            raise ServicesError(
                f"downloading the Kafka jars with Maven failed (exit {rc})", mvn_log
            )
        jars = {p.name for p in lib.glob("*.jar")}
        missing = [
            j
            for j in (
                f"kafka_2.13-{KAFKA_VERSION}.jar",
                "slf4j-simple-2.0.16.jar",
                "slf4j-api-2.0.16.jar",
            )
            if j not in jars
        ]
        if missing:
            raise ServicesError(
                f"Maven finished but {', '.join(missing)} missing in {lib}", mvn_log
            )
        marker.write_text(want + "\n")
        log(f"fetched {len(jars)} jars in {time.monotonic() - started:.1f} s")
    return lib


# ------------------------------------------------------------------------- per state dir


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def properties(self) -> Path:
        return self.root / "server.properties"

    @property
    def pid_file(self) -> Path:
        return self.root / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "broker.log"

    @property
    def ports_file(self) -> Path:
        return self.root / "ports.json"

    @property
    def cluster_id_file(self) -> Path:
        return self.root / "cluster.id"


def layout(sd: Path) -> Layout:
    return Layout(sd / "kafka")


def _stored_ports(lay: Layout) -> dict[str, int]:
    try:
        data = json.loads(lay.ports_file.read_text())
        return {"port": int(data["port"]), "controller_port": int(data["controller_port"])}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def running_pid(lay: Layout) -> int | None:
    """Pid of OUR broker for this state dir (pid file alive and its command line matches)."""
    pid = read_int(lay.pid_file)
    if not pid_alive(pid):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    if b"kafka.Kafka" in cmdline and str(lay.properties).encode() in cmdline:
        return pid
    return None  # stale pid file, pid reused by something else


def _properties(lay: Layout, port: int, cport: int) -> str:
    return f"""\
# Written by `learnstream services up` on every start; edits are overwritten.
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.quorum.bootstrap.servers=127.0.0.1:{cport}
log.dirs={lay.data}
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
num.partitions=1
auto.create.topics.enable=false
"""


def _java_cmd(lib: Path, *args: str, heap: list[str] | None = None) -> list[str]:
    return [
        _java(),
        *(heap or []),
        "-Djava.awt.headless=true",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
        "-Dorg.slf4j.simpleLogger.showDateTime=true",
        "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd HH:mm:ss.SSS",
        "-cp",
        f"{lib}/*",
        *args,
    ]


def _run_tool(lib: Path, lay: Layout, *args: str) -> str:
    proc = subprocess.run(
        _java_cmd(lib, "kafka.tools.StorageTool", *args),
        cwd=lay.root,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    with open(lay.log_file, "a") as fh:
        fh.write(
            f"=== StorageTool {' '.join(args)} (exit {proc.returncode})\n{proc.stdout}{proc.stderr}"
        )
    if proc.returncode != 0:
        raise ServicesError(
            f"kafka.tools.StorageTool {args[0]} failed (exit {proc.returncode})", lay.log_file
        )
    return proc.stdout


def _format_storage(lib: Path, lay: Layout) -> None:
    if (lay.data / "meta.properties").exists():
        return
    shutil.rmtree(lay.data, ignore_errors=True)  # half-formatted: start over
    cluster_id = lay.cluster_id_file.read_text().strip() if lay.cluster_id_file.exists() else ""
    if not cluster_id:
        cluster_id = _run_tool(lib, lay, "random-uuid").strip().splitlines()[-1].strip()
        write_atomic(lay.cluster_id_file, cluster_id + "\n")
    log(f"formatting Kafka storage in {lay.data} (cluster id {cluster_id})")
    _run_tool(lib, lay, "format", "-t", cluster_id, "-c", str(lay.properties), "--standalone")


def _rotate_log(lay: Layout) -> None:
    try:
        if lay.log_file.stat().st_size > MAX_LOG_BYTES:
            os.replace(lay.log_file, lay.log_file.with_suffix(".log.1"))
    except FileNotFoundError:
        pass


@dataclass
class Starting:
    """What `start` hands to `finish_start`: the broker may still be booting."""

    lay: Layout
    bootstrap: str
    pid: int
    proc: subprocess.Popen | None  # None when an already-running broker is reused


def start(sd: Path) -> Starting:
    """Reuse this state dir's broker if running, else launch it (without waiting for readiness)."""
    lay = layout(sd)
    private_dir(lay.root)  # the broker's data and logs: its owner's only (0700)
    pid = running_pid(lay)
    ports = _stored_ports(lay)
    if pid and ports:
        return Starting(lay, f"127.0.0.1:{ports['port']}", pid, None)
    if pid:  # running but we lost its ports: cannot talk to it reliably, restart it
        log(f"Kafka pid {pid} has no recorded ports; restarting it")
        _stop_pid(lay, pid)

    lib = ensure_jars()
    port = choose_port(ports.get("port"))
    cport = choose_port(ports.get("controller_port"), exclude=(port,))
    if ports and (port, cport) != (ports["port"], ports["controller_port"]):
        log(
            f"previous Kafka ports {ports['port']}/{ports['controller_port']} are taken; "
            f"using {port}/{cport}"
        )
    write_atomic(lay.ports_file, json.dumps({"port": port, "controller_port": cport}) + "\n")
    write_atomic(lay.properties, _properties(lay, port, cport))
    _rotate_log(lay)
    _format_storage(lib, lay)

    log(f"starting Kafka {KAFKA_VERSION} on 127.0.0.1:{port} (log: {lay.log_file})")
    with open(lay.log_file, "ab") as out:
        out.write(f"{START_MARKER} {time.strftime('%Y-%m-%d %H:%M:%S')} port={port}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            _java_cmd(lib, "kafka.Kafka", str(lay.properties), heap=HEAP_OPTS),
            cwd=lay.root,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives the CLI, not hit by its Ctrl-C
        )
    _children.append(proc)
    write_atomic(lay.pid_file, f"{proc.pid}\n")
    return Starting(lay, f"127.0.0.1:{port}", proc.pid, proc)


def finish_start(st: Starting) -> str:
    """Wait until the broker answers a metadata request; return the bootstrap address."""
    started = time.monotonic()

    def died() -> str | None:
        if st.proc is not None:
            rc = st.proc.poll()
            return None if rc is None else f"exited with code {rc}"
        return None if pid_alive(st.pid) else "is no longer running"

    wait_ready(st.bootstrap, timeout=READY_TIMEOUT_S, log_file=st.lay.log_file, died=died)
    if st.proc is not None:
        log(f"Kafka ready on {st.bootstrap} in {time.monotonic() - started:.1f} s (pid {st.pid})")
    else:
        log(f"Kafka already running on {st.bootstrap} (pid {st.pid})")
    return st.bootstrap


async def _probe(bootstrap: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await asyncio.wait_for(admin.start(), 10)
        await asyncio.wait_for(admin.list_topics(), 10)
    finally:
        try:
            await asyncio.wait_for(admin.close(), 5)
        except Exception:  # noqa: BLE001 - closing a half-started client
            pass


class _Died(Exception):
    pass


async def _wait(bootstrap: str, timeout: float, died) -> Exception | None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        reason = died() if died else None
        if reason:
            return _Died(f"the broker process {reason}")
        try:
            await _probe(bootstrap)
            return None
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
            last = exc
        if time.monotonic() >= deadline:
            return last or TimeoutError()
        await asyncio.sleep(0.5)


def wait_ready(
    bootstrap: str, *, timeout: float = READY_TIMEOUT_S, log_file: Path | None = None, died=None
) -> None:
    """Retry an aiokafka admin `list_topics()` until it works; ServicesError after `timeout`."""
    aiokafka_logger = logging.getLogger("aiokafka")
    level = aiokafka_logger.level
    aiokafka_logger.setLevel(logging.CRITICAL)  # connection-refused noise while the JVM boots
    try:
        error = run_async(_wait(bootstrap, timeout, died))
    finally:
        aiokafka_logger.setLevel(level)
    if isinstance(error, _Died):
        raise ServicesError(f"Kafka failed to start: {error}", log_file, since=START_MARKER)
    if error is not None:
        detail = str(error) or type(error).__name__
        if not detail.startswith(type(error).__name__):
            detail = f"{type(error).__name__}: {detail}"
        raise ServicesError(
            f"Kafka at {bootstrap} is not ready after {timeout:.0f} s: {detail}",
            log_file,
            since=START_MARKER,
        )


# ------------------------------------------------------------------------- stop / status


def _stop_pid(lay: Layout, pid: int) -> None:
    log(f"stopping Kafka (pid {pid}) ...")
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if pid_alive(pid):
        log(f"Kafka did not stop within {STOP_TIMEOUT_S:.0f} s; killing it")
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(pid):
            raise ServicesError(f"could not stop Kafka (pid {pid})", lay.log_file)
    lay.pid_file.unlink(missing_ok=True)
    log("Kafka stopped")


def stop(sd: Path) -> None:
    """Stop this state dir's broker (SIGTERM, then SIGKILL after 30 s). Data is kept."""
    lay = layout(sd)
    pid = running_pid(lay)
    if pid is None:
        lay.pid_file.unlink(missing_ok=True)
        log("Kafka is not running")
        return
    _stop_pid(lay, pid)


def _lock(sd: Path):
    return file_lock(sd / "services.lock")


def kafka_stop(sd: Path | None = None) -> None:
    """Stop ONLY Kafka (controlled shutdown), keeping its data and ports for `kafka_start()`."""
    from streams.config import state_dir

    sd = sd or state_dir()
    with _lock(sd):
        stop(sd)


def kafka_start(sd: Path | None = None) -> str:
    """Start ONLY Kafka again on the SAME ports and data, wait until it answers; return the
    bootstrap address (no-op if running)."""
    from streams.config import state_dir

    sd = sd or state_dir()
    sd.mkdir(parents=True, exist_ok=True)
    with _lock(sd):
        lay = layout(sd)
        ports = _stored_ports(lay)
        if running_pid(lay) is None:
            if not ports:
                raise ServicesError("Kafka has no recorded ports yet: run `learnstream services up` first")
            taken = [p for p in (ports["port"], ports["controller_port"]) if not port_is_free(p)]
            if taken:
                raise ServicesError(
                    f"cannot restart Kafka on its ports {ports['port']}/{ports['controller_port']}: "
                    f"{', '.join(map(str, taken))} in use by another process"
                )
        st = start(sd)
        if ports and st.bootstrap != f"127.0.0.1:{ports['port']}":  # a port was taken meanwhile
            _stop_pid(lay, st.pid)
            raise ServicesError(f"Kafka came up on {st.bootstrap}, not on its port {ports['port']}", lay.log_file)
        return finish_start(st)


def status(sd: Path) -> dict:
    lay = layout(sd)
    pid = running_pid(lay)
    port = _stored_ports(lay).get("port")
    return {
        "state": "running" if pid else "stopped",
        "pid": pid,
        "port": port,
        "bootstrap": f"127.0.0.1:{port}" if port else None,
        "data_dir": str(lay.data),
        "log_file": str(lay.log_file),
        "version": KAFKA_VERSION,
        "jars": str(lib_dir()),
    }
