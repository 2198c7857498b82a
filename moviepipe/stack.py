"""The local stack: moto, the warehouse stand-in, the four services and the dashboard, as child processes.

``moviepipe up`` runs it in the foreground (Ctrl-C stops everything); ``--detach`` runs the same thing in
the background and returns once every component answers; ``moviepipe down`` stops it.

The stack supervises its processes as ECS does its tasks: a process that dies is started again after a
back-off (1 s, doubling to 30 s), the others keep running, and a process that dies
``CRASH_LOOP_EXITS`` times within ``CRASH_LOOP_SECONDS`` raises one alert. ``--replicas`` runs more than
one copy of a stage's service on the same queue (replica *k* listens on the stage's port + 10·(k-1)).
What runs, with its pid, port, restarts and last exit, is in ``$MOVIEPIPE_HOME/stack.json``
(``moviepipe status``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from shared.aws import aws_environment
from shared.logs import log_event
from shared.settings import STAGES, Settings

SERVICES = STAGES
DASHBOARD = "dashboard"
APPS = (*SERVICES, DASHBOARD)
"""The stack's FastAPI apps (run by uvicorn, each ready at ``/ready``): the stages, then the dashboard."""
START_TIMEOUT_SECONDS = 180
STOP_TIMEOUT_SECONDS = 20
SAVE_TIMEOUT_SECONDS = 1800
"""How long ``moviepipe down`` waits for the stack to stop and save its state before killing it."""
RESTART_BACKOFF_SECONDS = (1, 2, 4, 8, 16, 30)
"""Waits before starting a dead process again: the n-th exit in a row waits the n-th value (then the last)."""
CRASH_LOOP_EXITS = 5
CRASH_LOOP_SECONDS = 300
"""A process that exits this many times within this many seconds is crash-looping: one alert is raised."""
HEALTHY_SECONDS = 60
"""A process up this long is healthy again: its next exit waits the shortest back-off."""
MAX_REPLICAS = 8
REPLICA_PORT_STEP = 10

logger = logging.getLogger(__name__)


class StackError(Exception):
    """The local stack could not be started or stopped."""


@dataclass
class Component:
    """One process of the stack, and what the supervisor knows of it."""

    name: str
    argv: list[str]
    port: int
    ready_path: str
    service: str = ""
    """The component it is a copy of (``loader`` for ``loader-2``); its own name if it has no replicas."""
    replica: int = 1
    process: subprocess.Popen | None = field(default=None, repr=False)
    started_at: float | None = None
    """When its process started (monotonic seconds)."""
    started_wall: float | None = None
    restarts: int = 0
    failures: int = 0
    """Exits in a row, each soon after its start: the back-off grows with them."""
    last_exit: int | None = None
    exits: deque = field(default_factory=lambda: deque(maxlen=CRASH_LOOP_EXITS), repr=False)
    """When it last exited (monotonic seconds), for the crash-loop check."""
    restart_at: float | None = None
    """When it is due to be started again after exiting (monotonic seconds); None while it runs."""
    alerted: bool = False

    def __post_init__(self) -> None:
        self.service = self.service or self.name

    def url(self, settings: Settings) -> str:
        return f"http://{settings.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def parse_replicas(spec: str | None) -> dict[str, int]:
    """``"2"`` (every stage) or ``"unzipper=3,loader=2"``: copies per stage's service, 1 unless said."""
    counts = dict.fromkeys(SERVICES, 1)
    if not spec:
        return counts
    for part in spec.split(","):
        name, _, number = part.strip().rpartition("=")
        targets = [name.strip()] if name else list(SERVICES)
        unknown = [target for target in targets if target not in SERVICES]
        if unknown:
            raise StackError(f"--replicas: {unknown[0]!r} is not a stage (one of {', '.join(SERVICES)})")
        if not number.strip().isdigit() or not 1 <= int(number) <= MAX_REPLICAS:
            raise StackError(f"--replicas: {part.strip()!r}: a count from 1 to {MAX_REPLICAS} is needed")
        for target in targets:
            counts[target] = int(number)
    return counts


def replica_port(settings: Settings, service: str, replica: int) -> int:
    """Replica 1 listens on the service's own port; replica k on that port + 10·(k-1)."""
    return settings.port(service) + REPLICA_PORT_STEP * (replica - 1)


def components(settings: Settings, replicas: dict[str, int] | None = None) -> list[Component]:
    """The stack's processes, in start order; ``replicas`` copies of a stage's service (1 each by default)."""
    python = sys.executable
    found = [
        Component(
            "moto",
            [python, "-m", "moto.server", "-H", settings.host, "-p", str(settings.moto_port)],
            settings.moto_port,
            "/moto-api/",
        ),
        Component(
            "warehouse",
            [
                python,
                "-m",
                "moviepipe.warehouse",
                "--host",
                settings.host,
                "--port",
                str(settings.warehouse_port),
                "--data-dir",
                str(settings.home / "warehouse"),
                "--aws-endpoint-url",
                str(settings.aws_endpoint_url),
            ],
            settings.warehouse_port,
            "/health",
        ),
    ]
    for service in APPS:
        for replica in range(1, (replicas or {}).get(service, 1) + 1):
            port = replica_port(settings, service, replica)
            found.append(
                Component(
                    service if replica == 1 else f"{service}-{replica}",
                    [
                        python,
                        "-m",
                        "uvicorn",
                        f"services.{service}.app:app",
                        "--host",
                        settings.host,
                        "--port",
                        str(port),
                        "--no-access-log",
                        "--timeout-graceful-shutdown",
                        "15",
                    ],
                    port,
                    "/ready",
                    service=service,
                    replica=replica,
                )
            )
    return found


MOTO_KEY_BUFFER_BYTES = 16 << 20
"""moto keeps an object in memory up to this size, and writes a larger one to a temporary file first (5 MB
by default): that cost the IMDb sample's 7 MB and 12 MB files 0.05 s an upload. Objects of the scaled
sources (hundreds of MB) still go to disk."""


def child_environment(settings: Settings) -> dict[str, str]:
    """The environment every child process gets: this one's, plus the stack's resolved settings."""
    env = dict(os.environ)
    env.update(aws_environment(settings))
    env.setdefault("MOTO_S3_DEFAULT_KEY_BUFFER_SIZE", str(MOTO_KEY_BUFFER_BYTES))
    env.update(
        {
            "MOVIEPIPE_HOME": str(settings.home.resolve()),
            "MOVIEPIPE_PREFIX": settings.prefix,
            "MOVIEPIPE_HOST": settings.host,
            "MOVIEPIPE_ENVIRONMENT": settings.environment,
            "SPARK_LOCAL_IP": env.get("SPARK_LOCAL_IP", "127.0.0.1"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    for name in ("moto", "warehouse", "dashboard", *SERVICES):
        env[f"MOVIEPIPE_{name.upper()}_PORT"] = str(settings.port(name))
    return env


def pid_file(settings: Settings) -> Path:
    return settings.home / "stack.pid"


def state_file(settings: Settings) -> Path:
    """What the running stack's supervisor last saw of each process (``moviepipe status``)."""
    return settings.home / "stack.json"


def read_state(settings: Settings) -> dict | None:
    """The running stack's processes as ``stack.json`` has them; None when no stack runs from this home."""
    if running_pid(settings) is None:
        return None
    try:
        return json.loads(state_file(settings).read_text())
    except (OSError, ValueError):
        return None


def log_dir(settings: Settings) -> Path:
    return settings.home / "logs"


def answers(url: str, timeout: float = 1.0) -> bool:
    """Whether something answers 2xx at ``url``."""
    try:
        return httpx.get(url, timeout=timeout).status_code < 300
    except httpx.HTTPError:
        return False


def running_pid(settings: Settings) -> int | None:
    """The pid of a running stack started from this home, if any."""
    path = pid_file(settings)
    if not path.exists():
        return None
    try:
        pid = int(path.read_text().strip())
    except (ValueError, FileNotFoundError):
        # Not written whole yet (or just removed): no stack to name, and nothing stale to remove.
        return None
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        path.unlink(missing_ok=True)
        return None
    return pid


def is_up(settings: Settings) -> bool:
    """Whether the whole stack answers: every service and the dashboard ready."""
    return all(answers(f"http://{settings.host}:{settings.port(s)}/ready") for s in APPS)


def _port_in_use(host: str, port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


class Stack:
    """Start, supervise and stop the stack's processes."""

    def __init__(
        self,
        settings: Settings,
        on_step: Callable[[str], None] = lambda _: None,
        replicas: dict[str, int] | None = None,
    ):
        self.settings = settings
        self.components = components(settings, replicas)
        self.on_step = on_step
        self._env: dict[str, str] = {}
        self._up = False
        """Whether the whole stack came up (then its AWS state is saved when it stops)."""

    def start(self) -> None:
        """Start every component in order, waiting for each to answer; provisions AWS resources."""
        busy = [c for c in self.components if _port_in_use(self.settings.host, c.port)]
        if busy:
            names = ", ".join(f"{c.name} ({self.settings.host}:{c.port})" for c in busy)
            raise StackError(
                f"ports already in use: {names}; is a stack already running? try `moviepipe down`"
            )
        log_dir(self.settings).mkdir(parents=True, exist_ok=True)
        self._env = child_environment(self.settings)
        try:
            for component in self.components:
                self.on_step(f"starting {component.name} on {self.settings.host}:{component.port}")
                self._launch(component)
                if component.name in ("moto", "warehouse"):
                    self._wait(component)
                    if component.name == "moto":
                        self._provision(restore=True)
            for component in self.components[2:]:
                self._wait(component)
        except BaseException:
            self.stop()
            raise
        self._up = True
        self.write_state()

    def _launch(self, component: Component) -> None:
        log = (log_dir(self.settings) / f"{component.name}.log").open("ab")
        with log:
            component.process = subprocess.Popen(
                component.argv, env=self._env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        component.started_at = time.monotonic()
        component.started_wall = time.time()

    def _provision(self, restore: bool = False) -> None:
        """Make the AWS resources; with ``restore``, put the last ``down``'s state back into them first,
        before the buckets announce new objects (``moviepipe/snapshot.py``)."""
        import dataclasses

        from deploy.provision import provision
        from deploy.resources import resources
        from moviepipe import snapshot

        if restore and snapshot.has_snapshot(self.settings):
            provision(self.settings, dataclasses.replace(resources(self.settings), notifications=[]))
            snapshot.restore(self.settings, self.on_step)
        self.on_step("provisioning buckets, queues, notifications, alerts topic, extracts table")
        provision(self.settings)

    def _wait(self, component: Component) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        url = component.url(self.settings) + component.ready_path
        while time.monotonic() < deadline:
            if component.process and component.process.poll() is not None:
                log = log_dir(self.settings) / f"{component.name}.log"
                raise StackError(
                    f"{component.name} exited with code {component.process.returncode}; see {log}"
                )
            if answers(url):
                return
            time.sleep(0.2)
        raise StackError(f"{component.name} did not answer at {url} within {START_TIMEOUT_SECONDS}s")

    def supervise(self, stopping: Callable[[], bool] = lambda: False, interval: float = 0.5) -> None:
        """Until ``stopping()``: start again what died (after its back-off), the rest running on."""
        while not stopping():
            self.check_once()
            time.sleep(interval)

    def check_once(self, now: float | None = None) -> None:
        """One look at every process: note what exited, start what is due, write ``stack.json``."""
        now = time.monotonic() if now is None else now
        changed = False
        for component in self.components:
            if component.restart_at is None and component.process and component.process.poll() is not None:
                self._exited(component, now)
                changed = True
            elif component.restart_at is not None and now >= component.restart_at:
                self._restart(component)
                changed = True
        if changed:
            self.write_state()

    def _exited(self, component: Component, now: float) -> None:
        component.last_exit = component.process.returncode
        if component.started_at is not None and now - component.started_at >= HEALTHY_SECONDS:
            component.failures = 0  # it had been up a while: this exit starts a new count
        component.failures += 1
        component.exits.append(now)
        delay = RESTART_BACKOFF_SECONDS[min(component.failures, len(RESTART_BACKOFF_SECONDS)) - 1]
        component.restart_at = now + delay
        log = log_dir(self.settings) / f"{component.name}.log"
        self.on_step(
            f"{component.name} exited with code {component.last_exit}; starting it again in {delay} s "
            f"(log: {log})"
        )
        log_event(
            logger,
            "process_exited",
            level=logging.WARNING,
            component=component.name,
            exit_code=component.last_exit,
            restart_in_seconds=delay,
        )
        looping = len(component.exits) == CRASH_LOOP_EXITS and now - component.exits[0] <= CRASH_LOOP_SECONDS
        if looping and not component.alerted:
            component.alerted = True
            self._alert_crash_loop(component, log)
        elif not looping:
            component.alerted = False

    def _alert_crash_loop(self, component: Component, log: Path) -> None:
        from shared.alerts import Alert, raise_alert

        message = (
            f"{component.name} exited {CRASH_LOOP_EXITS} times within {CRASH_LOOP_SECONDS} s (last exit "
            f"code {component.last_exit}); the stack keeps starting it again, every "
            f"{RESTART_BACKOFF_SECONDS[-1]} s"
        )
        try:
            raise_alert(
                self.settings,
                Alert(
                    stage="stack",
                    event="crash_loop",
                    code="CRASH_LOOP",
                    message=message,
                    evidence=str(log),
                    details={"component": component.name, "exit_code": component.last_exit},
                    dedupe=f"{component.name}:{component.exits[0]:.0f}",
                ),
            )
        except Exception as exc:  # moto itself may be what is down: the log line still says it
            log_event(logger, "alert_failed", str(exc), level=logging.ERROR, component=component.name)

    def _restart(self, component: Component) -> None:
        component.restart_at = None
        component.restarts += 1
        self.on_step(f"starting {component.name} again (restart {component.restarts})")
        self._launch(component)
        if component.name == "moto":
            # A new moto holds nothing: buckets, queues and topics are made again before the rest use them.
            try:
                self._wait(component)
                self._provision()
            except StackError as exc:
                self.on_step(str(exc))

    def _save_state(self) -> None:
        """Keep moto's state for the next ``up`` (the services have stopped: nothing changes it now)."""
        from moviepipe import snapshot

        self.on_step("saving the buckets, queues and tables for the next `moviepipe up`")
        try:
            snapshot.save(self.settings, self.on_step)
        except Exception as exc:  # the last good snapshot stays; say why this one failed
            self.on_step(f"could not save the stack's state ({type(exc).__name__}: {exc}); kept the last one")
            log_event(logger, "state_save_failed", str(exc), level=logging.ERROR)

    def write_state(self) -> None:
        """``stack.json``: each process's pid, port, state, restarts and last exit code."""
        processes = []
        for component in self.components:
            state = "running" if component.running else "restarting" if component.restart_at else "stopped"
            processes.append(
                {
                    "name": component.name,
                    "service": component.service,
                    "replica": component.replica,
                    "pid": component.process.pid if component.running else None,
                    "port": component.port,
                    "state": state,
                    "started_at": component.started_wall if component.running else None,
                    "restarts": component.restarts,
                    "last_exit": component.last_exit,
                }
            )
        document = {"pid": os.getpid(), "written_at": time.time(), "processes": processes}
        path = state_file(self.settings)
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(document, indent=1))
        temporary.replace(path)

    def stop(self) -> None:
        """Stop the apps together, then the warehouse, then moto; SIGKILL what will not stop in time."""
        for component in self.components:
            component.restart_at = None
        services = [c for c in self.components if c.service in APPS]
        infrastructure = [c for c in reversed(self.components) if c.service not in APPS]
        for group in (services, *([c] for c in infrastructure)):
            running = [c for c in group if c.running]
            if group and group[0].name == "moto" and self._up and group[0].running:
                self._save_state()
            if not running:
                continue
            self.on_step(f"stopping {', '.join(c.name for c in running)}")
            for component in running:
                component.process.terminate()
            deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
            for component in running:
                try:
                    component.process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    component.process.kill()
                    component.process.wait()


def run_foreground(
    settings: Settings, on_step: Callable[[str], None], replicas: dict[str, int] | None = None
) -> int:
    """``moviepipe up``: start the stack and supervise it until Ctrl-C/SIGTERM."""
    stack = Stack(settings, on_step, replicas)

    def _terminate(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # Also SIGINT: a shell that starts us in the background leaves SIGINT ignored.
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    settings.home.mkdir(parents=True, exist_ok=True)
    try:
        stack.start()
        # Whole or not at all: `moviepipe up --detach` polls for this file while it is written.
        written = pid_file(settings).with_suffix(".pid.tmp")
        written.write_text(str(os.getpid()))
        written.replace(pid_file(settings))
        on_step("stack is up")
        stack.supervise()
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        stack.stop()
        with contextlib.suppress(FileNotFoundError):
            if pid_file(settings).read_text().strip() == str(os.getpid()):
                pid_file(settings).unlink()
                state_file(settings).unlink(missing_ok=True)


def start_detached(settings: Settings, on_step: Callable[[str], None], replicas: str | None = None) -> int:
    """``moviepipe up --detach``: run the stack in the background and return once it answers."""
    planned = components(settings, parse_replicas(replicas))
    if (pid := running_pid(settings)) and is_up(settings):
        on_step(f"stack already running (pid {pid})")
        return pid
    settings.home.mkdir(parents=True, exist_ok=True)
    log_dir(settings).mkdir(parents=True, exist_ok=True)
    log = (log_dir(settings) / "stack.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "moviepipe.cli", "up", *(["--replicas", replicas] if replicas else [])],
        env=child_environment(settings),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS + 60
    waiting_for = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackError(
                f"the stack exited with code {process.returncode}; see {log_dir(settings)}/stack.log"
            )
        pending = [c for c in planned if not answers(c.url(settings) + c.ready_path, 0.5)]
        if not pending and running_pid(settings):
            return process.pid
        if pending and pending[0].name != waiting_for:
            waiting_for = pending[0].name
            on_step(f"waiting for {waiting_for}")
        time.sleep(0.3)
    stop_detached(settings, on_step)
    raise StackError(f"the stack did not come up in time; see {log_dir(settings)}")


def stop_detached(settings: Settings, on_step: Callable[[str], None]) -> bool:
    """``moviepipe down``: stop a stack started from this home; False if none was running."""
    pid = running_pid(settings)
    if pid is None:
        return False
    on_step(f"stopping the stack (pid {pid})")
    os.kill(pid, signal.SIGTERM)
    # The stack stops its services, then saves moto's state (moviepipe/snapshot.py): that takes as long
    # as the data changed since the last `down` takes to copy, so it is given time, and said so.
    deadline = time.monotonic() + SAVE_TIMEOUT_SECONDS
    told = time.monotonic()
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it when this process started it
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() - told > 15:
            told = time.monotonic()
            on_step(f"still stopping (saving state); see {log_dir(settings)}/stack.log")
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    pid_file(settings).unlink(missing_ok=True)
    return True
