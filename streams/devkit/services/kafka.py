"""Single-node Apache Kafka 4.1.1 (KRaft, broker+controller in one JVM) on loopback, with
authentication and ACLs.

Clients connect to the CLIENT listener with SASL_PLAINTEXT + SCRAM-SHA-512 as one of the principals
``admin`` (super user), ``worker``, ``producer``, ``alerts`` (their ACLs: streams.kafka_acls); a
client without credentials or with a wrong password is refused, and ``allow.everyone.if.no.acl.found``
is false. The same principals may also log in with SASL PLAIN (same passwords, listed in the 0600
server.properties): the kcat configs use it, because librdkafka before 2.6.1 (Debian 12's kcat has
2.0.2) computes a SCRAM proof that Kafka 4.x rejects (librdkafka#4895). PLAIN sends the password
itself, but only over loopback, whose traffic only root can capture (root reads the files anyway).
The CONTROLLER listener (loopback, its own port) takes SASL PLAIN for the user ``controller`` only
(a super user: the broker registers with it); SCRAM cannot serve it because SCRAM credentials live
in the metadata the controller serves. Passwords are generated once per state dir into
``<state>/kafka/credentials.json`` (0600 from the first byte, in a 0700 directory);
``kcat-<principal>.conf`` files (0600) hold each principal as a ``kcat -F`` config.

A fresh cluster gets its SCRAM users at format time (``--add-scram``). A state dir formatted by an
older learnstream (PLAINTEXT, no users) is upgraded in place, data kept: one extra start of the
broker in which only the admin may log in (PLAIN, static), ConfigCommand adds the SCRAM users, stop;
then the normal start.

The broker's runtime classpath is downloaded ONCE from Maven Central with `mvn` (see
kafka-pom.xml) into ``${LEARNSTREAM_CACHE_DIR:-~/.cache/learnstream}/kafka-4.1.1/lib``, outside
the repo. Per state dir, ``<state>/kafka`` holds server.properties, the chosen ports, the log
dirs (``data/``), ``broker.pid`` and ``broker.log``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import secrets
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
    write_private,
)
from streams.kafka_auth import KafkaAuth

KAFKA_VERSION = "4.1.1"
POM = Path(__file__).with_name("kafka-pom.xml")
HEAP_OPTS = ["-Xmx512m", "-Xms256m"]
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
MAX_LOG_BYTES = 50 * 1024 * 1024
START_MARKER = "=== starting broker"
CONFIG_VERSION = "# learnstream-kafka-config: 3 (SASL/SCRAM and PLAIN + ACLs)"
PRINCIPALS = ("admin", "worker", "producer", "alerts")
CONTROLLER_USER = "controller"
MECHANISM = "SCRAM-SHA-512"

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

    @property
    def credentials_file(self) -> Path:
        return self.root / "credentials.json"

    @property
    def scram_marker(self) -> Path:
        """Exists once the SCRAM users are in the cluster's metadata (at format, or by upgrade)."""
        return self.root / "scram-users"

    def kcat_config(self, principal: str) -> Path:
        return self.root / f"kcat-{principal}.conf"


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


def credentials(lay: Layout) -> dict[str, str]:
    """user -> password for the principals and the controller user; generated on first use."""
    try:
        creds = json.loads(lay.credentials_file.read_text())
    except (OSError, ValueError):
        creds = {}
    missing = [u for u in (*PRINCIPALS, CONTROLLER_USER) if not isinstance(creds.get(u), str) or not creds[u]]
    if missing:
        creds.update({u: secrets.token_urlsafe(24) for u in missing})
        write_private(lay.credentials_file, json.dumps(creds, indent=1) + "\n")
    return creds


def principal_auth(sd: Path, principal: str) -> KafkaAuth:
    """The local broker's credentials of one principal (admin, worker, producer, alerts)."""
    creds = credentials(layout(sd))
    return KafkaAuth("SASL_PLAINTEXT", MECHANISM, principal, creds[principal])


def client_env(sd: Path) -> dict[str, str]:
    """The services.env lines for Kafka: the worker principal as the default client settings, and
    the kcat config file of each principal (LEARNSTREAM_KCAT_<PRINCIPAL>_CONFIG)."""
    lay = layout(sd)
    worker = principal_auth(sd, "worker")
    return {
        "LEARNSTREAM_KAFKA_SECURITY_PROTOCOL": worker.security_protocol,
        "LEARNSTREAM_KAFKA_SASL_MECHANISM": worker.sasl_mechanism,
        "LEARNSTREAM_KAFKA_SASL_USERNAME": worker.username,
        "LEARNSTREAM_KAFKA_SASL_PASSWORD": worker.password,
        **{f"LEARNSTREAM_KCAT_{p.upper()}_CONFIG": str(lay.kcat_config(p)) for p in PRINCIPALS},
    }


def _jaas(module: str, user: str, password: str, **users: str) -> str:
    extra = "".join(f' user_{u}="{p}"' for u, p in users.items())
    return f'{module} required username="{user}" password="{password}"{extra};'


def _properties(lay: Layout, port: int, cport: int, *, upgrade: bool = False) -> str:
    creds = credentials(lay)
    plain_module = "org.apache.kafka.common.security.plain.PlainLoginModule"
    ctl = creds[CONTROLLER_USER]
    plain = _jaas(plain_module, CONTROLLER_USER, ctl, **{CONTROLLER_USER: ctl})
    if upgrade:  # the admin via PLAIN (static) on the client listener, until its SCRAM user exists
        head = "# One-time upgrade run of a cluster formatted without SCRAM users (learnstream services up)."
        client = "PLAIN"
        jaas = f"listener.name.client.plain.sasl.jaas.config={_jaas(plain_module, 'admin', creds['admin'], admin=creds['admin'])}"
        extra = ""
    else:
        head = (f"{CONFIG_VERSION}\n# Written by `learnstream services up` on every start; edits are overwritten. "
                "Holds passwords: 0600.")
        client = f"{MECHANISM},PLAIN"
        scram = _jaas("org.apache.kafka.common.security.scram.ScramLoginModule", "admin", creds["admin"])
        client_plain = _jaas(plain_module, "admin", creds["admin"], **{u: creds[u] for u in PRINCIPALS})
        jaas = (f"listener.name.client.{MECHANISM.lower()}.sasl.jaas.config={scram}\n"
                f"listener.name.client.plain.sasl.jaas.config={client_plain}")
        extra = "group.initial.rebalance.delay.ms=0\nnum.partitions=1\n"
    return f"""\
{head}
process.roles=broker,controller
node.id=1
listeners=CLIENT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=CLIENT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=CLIENT
listener.security.protocol.map=CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT
sasl.enabled.mechanisms={client}
listener.name.client.sasl.enabled.mechanisms={client}
listener.name.controller.sasl.enabled.mechanisms=PLAIN
sasl.mechanism.inter.broker.protocol={client.split(",")[0]}
sasl.mechanism.controller.protocol=PLAIN
{jaas}
listener.name.controller.plain.sasl.jaas.config={plain}
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin;User:{CONTROLLER_USER}
controller.quorum.bootstrap.servers=127.0.0.1:{cport}
log.dirs={lay.data}
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
{extra}auto.create.topics.enable=false
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


def _argfile_line(arg: str) -> str:
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


@contextlib.contextmanager
def tool_cmd(lib: Path, lay: Layout, main: str, *args: str):
    """The java command line running `main` with `args` taken from a launcher argument file
    (`java … @file`, JDK 9+): SCRAM passwords among the args never reach the process's command
    line (/proc/<pid>/cmdline is world-readable). The file is 0600 from creation, in the 0700 state
    dir, and deleted when the block ends."""
    argfile = lay.root / f"tool-{secrets.token_hex(6)}.args"
    write_private(argfile, "".join(_argfile_line(a) + "\n" for a in (main, *args)))
    try:
        yield _java_cmd(lib, f"@{argfile}")
    finally:
        argfile.unlink(missing_ok=True)


def _run_tool(lib: Path, lay: Layout, *args: str, log_args: bool = True) -> str:
    with tool_cmd(lib, lay, "kafka.tools.StorageTool", *args) as cmd:
        proc = subprocess.run(
            cmd,
            cwd=lay.root,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
    with open(lay.log_file, "a") as fh:
        fh.write(
            f"=== StorageTool {' '.join(args) if log_args else args[0]} (exit {proc.returncode})\n"
            f"{proc.stdout}{proc.stderr}"
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
    log(f"formatting Kafka storage in {lay.data} (cluster id {cluster_id}), SCRAM users {', '.join(PRINCIPALS)}")
    creds = credentials(lay)
    scram = [arg for u in PRINCIPALS for arg in ("--add-scram", f"{MECHANISM}=[name={u},password={creds[u]}]")]
    _run_tool(lib, lay, "format", "-t", cluster_id, "-c", str(lay.properties), "--standalone", *scram, log_args=False)
    write_private(lay.scram_marker, " ".join(PRINCIPALS) + "\n")


def _upgrade(lib: Path, lay: Layout, port: int, cport: int, timeout: float = READY_TIMEOUT_S) -> None:
    """A cluster formatted without SCRAM users (by an older learnstream): start it once with the
    admin allowed in via PLAIN (static JAAS, client listener on loopback), add the SCRAM users with
    ConfigCommand, stop it. Data kept. (The controller listener does not serve this API.)"""
    creds = credentials(lay)
    log(f"upgrading the existing Kafka state in {lay.data} (data kept): adding SCRAM users "
        f"{', '.join(PRINCIPALS)} (a one-time extra start)")
    write_private(lay.properties, _properties(lay, port, cport, upgrade=True))
    client = lay.root / "upgrade-client.properties"
    write_private(client, "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.jaas.config=" + _jaas(
        "org.apache.kafka.common.security.plain.PlainLoginModule", "admin", creds["admin"]) + "\n")
    proc = _launch(lib, lay, port)
    deadline = time.monotonic() + timeout
    try:
        for user in PRINCIPALS:
            while True:
                if proc.poll() is not None:
                    raise ServicesError(f"Kafka failed to start for the upgrade (exit {proc.returncode})",
                                        lay.log_file, since=START_MARKER)
                with tool_cmd(lib, lay, "kafka.admin.ConfigCommand", "--bootstrap-server", f"127.0.0.1:{port}",
                               "--command-config", str(client), "--alter", "--entity-type", "users",
                               "--entity-name", user, "--add-config", f"{MECHANISM}=[password={creds[user]}]") as cmd:
                    out = subprocess.run(cmd, cwd=lay.root, capture_output=True, text=True, stdin=subprocess.DEVNULL)
                if out.returncode == 0:
                    break
                if time.monotonic() > deadline:
                    detail = (out.stdout + out.stderr).replace(creds[user], "***")
                    with open(lay.log_file, "a") as fh:
                        fh.write(f"=== ConfigCommand (add SCRAM user {user}) failed\n{detail[-4000:]}\n")
                    raise ServicesError(f"could not add the SCRAM user {user} to Kafka", lay.log_file)
                time.sleep(1.0)
    finally:
        client.unlink(missing_ok=True)
        _stop_pid(lay, proc.pid)
    write_private(lay.scram_marker, " ".join(PRINCIPALS) + "\n")


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
    private_dir(lay.root)  # passwords, the broker's data and logs: its owner's only (0700)
    pid = running_pid(lay)
    ports = _stored_ports(lay)
    if pid and ports and not (_current_config(lay) and lay.scram_marker.exists()):
        log(f"Kafka pid {pid} runs an older configuration (before SASL/ACLs, or an earlier one of them) of this state dir's "
            "local dev broker; restarting it with the current one, data kept")
        _stop_pid(lay, pid)
        pid = None
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
    _rotate_log(lay)
    if (lay.data / "meta.properties").exists() and not lay.scram_marker.exists():
        _upgrade(lib, lay, port, cport)
    write_private(lay.properties, _properties(lay, port, cport))
    _format_storage(lib, lay)
    proc = _launch(lib, lay, port)
    return Starting(lay, f"127.0.0.1:{port}", proc.pid, proc)


def broker_env() -> dict[str, str]:
    """The broker's environment: the caller's without LEARNSTREAM_* (the clients' SASL passwords,
    the database URL): the broker needs none of it, and a process's environment is readable by
    whoever can inspect it."""
    return {k: v for k, v in os.environ.items() if not k.startswith("LEARNSTREAM_")}


def _launch(lib: Path, lay: Layout, port: int) -> subprocess.Popen:
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
            env=broker_env(),
        )
    _children.append(proc)
    write_atomic(lay.pid_file, f"{proc.pid}\n")
    return proc


def _current_config(lay: Layout) -> bool:
    try:
        return lay.properties.read_text().startswith(CONFIG_VERSION)
    except OSError:
        return False


def finish_start(st: Starting) -> str:
    """Wait until the broker answers a metadata request; return the bootstrap address."""
    started = time.monotonic()

    def died() -> str | None:
        if st.proc is not None:
            rc = st.proc.poll()
            return None if rc is None else f"exited with code {rc}"
        return None if pid_alive(st.pid) else "is no longer running"

    admin = principal_auth(st.lay.root.parent, "admin")
    wait_ready(st.bootstrap, timeout=READY_TIMEOUT_S, log_file=st.lay.log_file, died=died, auth=admin)
    _grant_and_write_configs(st, admin)
    if st.proc is not None:
        log(f"Kafka ready on {st.bootstrap} in {time.monotonic() - started:.1f} s (pid {st.pid})")
    else:
        log(f"Kafka already running on {st.bootstrap} (pid {st.pid})")
    return st.bootstrap


def _grant_and_write_configs(st: Starting, admin: KafkaAuth) -> None:
    """The ACLs of the producer/worker/alerts principals for the configured names (idempotent), and
    one kcat config per principal."""
    from streams.config import load_settings
    from streams.kafka_acls import acl_plan, apply_acls

    try:
        run_async(apply_acls(st.bootstrap, admin, acl_plan(load_settings())))
    except Exception as exc:
        raise ServicesError(f"Kafka refused to create the principals' ACLs: {exc}", st.lay.log_file) from exc
    for principal in PRINCIPALS:  # PLAIN: see the module's docstring (librdkafka < 2.6.1 and SCRAM)
        write_private(st.lay.kcat_config(principal),
                      principal_auth(st.lay.root.parent, principal).kcat_config(st.bootstrap, mechanism="PLAIN"))


async def _probe(bootstrap: str, auth: KafkaAuth | None = None) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    from streams.kafka_auth import default_auth

    auth = auth or default_auth()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, **auth.client_kwargs())
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


async def _wait(bootstrap: str, timeout: float, died, auth: KafkaAuth | None = None) -> Exception | None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        reason = died() if died else None
        if reason:
            return _Died(f"the broker process {reason}")
        try:
            await _probe(bootstrap, auth)
            return None
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
            last = exc
        if time.monotonic() >= deadline:
            return last or TimeoutError()
        await asyncio.sleep(0.5)


def wait_ready(
    bootstrap: str, *, timeout: float = READY_TIMEOUT_S, log_file: Path | None = None, died=None,
    auth: KafkaAuth | None = None,
) -> None:
    """Retry an aiokafka admin `list_topics()` until it works; ServicesError after `timeout`."""
    aiokafka_logger = logging.getLogger("aiokafka")
    level = aiokafka_logger.level
    aiokafka_logger.setLevel(logging.CRITICAL)  # connection-refused noise while the JVM boots
    try:
        error = run_async(_wait(bootstrap, timeout, died, auth))
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
