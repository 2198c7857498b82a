"""The local stack: moto, the warehouse stand-in, the four services and the dashboard, as child processes.

``moviepipe up`` runs it in the foreground (Ctrl-C stops everything); ``--detach`` runs the same thing in
the background and returns once every component answers; ``moviepipe down`` stops it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from shared.aws import aws_environment
from shared.settings import STAGES, Settings

SERVICES = STAGES
DASHBOARD = "dashboard"
APPS = (*SERVICES, DASHBOARD)
"""The stack's FastAPI apps (run by uvicorn, each ready at ``/ready``): the stages, then the dashboard."""
START_TIMEOUT_SECONDS = 180
STOP_TIMEOUT_SECONDS = 20


class StackError(Exception):
    """The local stack could not be started or stopped."""


@dataclass
class Component:
    """One process of the stack."""

    name: str
    argv: list[str]
    port: int
    ready_path: str
    process: subprocess.Popen | None = field(default=None, repr=False)

    def url(self, settings: Settings) -> str:
        return f"http://{settings.host}:{self.port}"


def components(settings: Settings) -> list[Component]:
    """The stack's processes, in start order."""
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
        found.append(
            Component(
                service,
                [
                    python,
                    "-m",
                    "uvicorn",
                    f"services.{service}.app:app",
                    "--host",
                    settings.host,
                    "--port",
                    str(settings.port(service)),
                    "--no-access-log",
                    "--timeout-graceful-shutdown",
                    "15",
                ],
                settings.port(service),
                "/ready",
            )
        )
    return found


def child_environment(settings: Settings) -> dict[str, str]:
    """The environment every child process gets: this one's, plus the stack's resolved settings."""
    env = dict(os.environ)
    env.update(aws_environment(settings))
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
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError, PermissionError):
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
    """Start, watch and stop the stack's processes."""

    def __init__(self, settings: Settings, on_step: Callable[[str], None] = lambda _: None):
        self.settings = settings
        self.components = components(settings)
        self.on_step = on_step

    def start(self) -> None:
        """Start every component in order, waiting for each to answer; provisions AWS resources."""
        from deploy.provision import provision

        busy = [c for c in self.components if _port_in_use(self.settings.host, c.port)]
        if busy:
            names = ", ".join(f"{c.name} ({self.settings.host}:{c.port})" for c in busy)
            raise StackError(
                f"ports already in use: {names}; is a stack already running? try `moviepipe down`"
            )
        log_dir(self.settings).mkdir(parents=True, exist_ok=True)
        env = child_environment(self.settings)
        try:
            for component in self.components:
                self.on_step(f"starting {component.name} on {self.settings.host}:{component.port}")
                log = (log_dir(self.settings) / f"{component.name}.log").open("ab")
                component.process = subprocess.Popen(
                    component.argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
                )
                if component.name == "moto":
                    self._wait(component)
                    self.on_step("provisioning buckets, queues, notifications, alerts topic, extracts table")
                    provision(self.settings)
                elif component.name == "warehouse":
                    self._wait(component)
            for component in self.components[2:]:
                self._wait(component)
        except BaseException:
            self.stop()
            raise

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

    def watch(self) -> str | None:
        """Block until a component dies or we are told to stop; name the component that died."""
        while True:
            for component in self.components:
                if component.process and component.process.poll() is not None:
                    return component.name
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop the apps together, then the warehouse, then moto; SIGKILL what will not stop in time."""
        services = [c for c in self.components if c.name in APPS]
        infrastructure = [c for c in reversed(self.components) if c.name not in APPS]
        for group in (services, *([c] for c in infrastructure)):
            running = [c for c in group if c.process and c.process.poll() is None]
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


def run_foreground(settings: Settings, on_step: Callable[[str], None]) -> int:
    """``moviepipe up``: start the stack, keep it running until Ctrl-C/SIGTERM or a component dies."""
    stack = Stack(settings, on_step)

    def _terminate(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # Also SIGINT: a shell that starts us in the background leaves SIGINT ignored.
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    settings.home.mkdir(parents=True, exist_ok=True)
    try:
        stack.start()
        pid_file(settings).write_text(str(os.getpid()))
        on_step("stack is up")
        died = stack.watch()
        on_step(f"{died} stopped unexpectedly; stopping the stack (logs in {log_dir(settings)})")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stack.stop()
        with contextlib.suppress(FileNotFoundError):
            if pid_file(settings).read_text().strip() == str(os.getpid()):
                pid_file(settings).unlink()


def start_detached(settings: Settings, on_step: Callable[[str], None]) -> int:
    """``moviepipe up --detach``: run the stack in the background and return once it answers."""
    if (pid := running_pid(settings)) and is_up(settings):
        on_step(f"stack already running (pid {pid})")
        return pid
    settings.home.mkdir(parents=True, exist_ok=True)
    log_dir(settings).mkdir(parents=True, exist_ok=True)
    log = (log_dir(settings) / "stack.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "moviepipe.cli", "up"],
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
        pending = [c for c in components(settings) if not answers(c.url(settings) + c.ready_path, 0.5)]
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
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS * 3
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it when this process started it
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    pid_file(settings).unlink(missing_ok=True)
    return True
