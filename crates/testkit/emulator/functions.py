"""Runs the Lambda functions moto holds, as Lambda runs a ``provided.al2023`` function: the
``bootstrap`` from the zip Lambda was given, with the function's environment, Lambda's reserved
variables and credentials for its role, polling a Runtime API (2018-06-01) of its own, on the
function's architecture (arm64 under ``qemu-aarch64-static`` on another CPU), stopped at its
timeout. Instances stay warm between invocations and start again when the code or the
configuration changes. What a function writes goes to CloudWatch Logs in moto, one stream an
instance, between Lambda's START, END and REPORT lines.

Lambda developer guide: "Using the Lambda runtime API for custom runtimes", "Defined runtime
environment variables", "Lambda execution environment", "Working with Lambda function logs".
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import json
import os
import platform
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RUNTIME = "/2018-06-01/runtime"
# How many instances of one function may run at once; more requests wait for one.
MAX_INSTANCES = 8


class Outcome:
    """How one invocation ended: ``response`` (the function's answer, as JSON), ``error`` (it
    reported one), ``timeout`` (stopped at its timeout) or ``crash`` (its process exited)."""

    def __init__(self, kind: str, payload=None, detail: str = ""):
        self.kind, self.payload, self.detail = kind, payload, detail


class RuntimeApi:
    """One instance's Runtime API, on a free loopback port."""

    def __init__(self):
        self.events: queue.Queue = queue.Queue()
        self.results: dict[str, Outcome] = {}
        self.init_error: dict | None = None
        self.changed = threading.Condition()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet: the function's own output is what is logged
                pass

            def do_GET(self):
                if self.path != f"{RUNTIME}/invocation/next":
                    return self.answer(404, {"errorMessage": "not found"})
                request_id, event, deadline_ms, arn = api.events.get()
                body = json.dumps(event).encode()
                self.send_response(200)
                for name, value in [
                    ("Content-Type", "application/json"),
                    ("Lambda-Runtime-Aws-Request-Id", request_id),
                    ("Lambda-Runtime-Deadline-Ms", str(deadline_ms)),
                    ("Lambda-Runtime-Invoked-Function-Arn", arn),
                    ("Lambda-Runtime-Trace-Id", f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0"),
                    ("Content-Length", str(len(body))),
                ]:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    payload = json.loads(raw) if raw else None
                except ValueError:
                    payload = {"errorMessage": "the runtime posted a body that is not JSON"}
                parts = self.path[len(RUNTIME):].strip("/").split("/")
                with api.changed:
                    if parts == ["init", "error"]:
                        api.init_error = payload or {}
                    elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                        kind = "response" if parts[2] == "response" else "error"
                        api.results[parts[1]] = Outcome(kind, payload)
                    else:
                        return self.answer(404, {"errorMessage": "not found"})
                    api.changed.notify_all()
                self.answer(202, {"status": "OK"})

            def answer(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def _die_with_parent():
    """The function's process is killed when its parent thread ends: the spawner, which lives
    as long as the emulator, so no instance outlives the emulator (prctl(2): the signal is
    sent when the thread that made the child ends, not the process)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    PR_SET_PDEATHSIG = 1
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


# One thread makes every function process, and never ends before the emulator does.
_spawner = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="lambda-spawner")


class Instance:
    """One execution environment of a function: its process, its Runtime API, its log stream."""

    def __init__(self, function, region: str, endpoint: str, logs):
        self.function, self.region, self.logs = function, region, logs
        self.name = function.function_name
        self.group = f"/aws/lambda/{self.name}"
        self.stream = time.strftime("%Y/%m/%d", time.gmtime()) + f"/[$LATEST]{uuid.uuid4().hex}"
        self.started = time.monotonic()
        self.first = True
        self.runtime = RuntimeApi()
        self.directory = tempfile.mkdtemp(prefix="tokendeploy-lambda-")
        task = os.path.join(self.directory, "task")
        with zipfile.ZipFile(_zip_stream(function.code_bytes)) as archive:
            archive.extractall(task)
            for info in archive.infolist():
                mode = (info.external_attr >> 16) & 0o777
                if mode:
                    os.chmod(os.path.join(task, info.filename), mode)
        self.logs.open_stream(self.group, self.stream)
        command = [os.path.join(task, "bootstrap")]
        arch = (function.architectures or ["x86_64"])[0]
        if arch == "arm64" and platform.machine() not in ("aarch64", "arm64"):
            command = ["qemu-aarch64-static", *command]
        environment = self.environment(task, endpoint)
        self.process = _spawner.submit(
            subprocess.Popen,
            command,
            cwd=task,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        ).result()
        threading.Thread(target=self.copy_output, daemon=True).start()

    def environment(self, task: str, endpoint: str) -> dict:
        function = self.function
        credentials = _role_credentials(function, self.region)
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "LAMBDA_TASK_ROOT": task,
            "_HANDLER": function.handler or "bootstrap",
            "AWS_LAMBDA_RUNTIME_API": self.runtime.address,
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": self.group,
            "AWS_LAMBDA_LOG_STREAM_NAME": self.stream,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": credentials[0],
            "AWS_SECRET_ACCESS_KEY": credentials[1],
            "AWS_SESSION_TOKEN": credentials[2],
            # The emulator's own services: what the function calls (Secrets Manager) is here,
            # as LocalStack points its functions at itself.
            "AWS_ENDPOINT_URL": endpoint,
        }
        env.update(function.environment_vars or {})
        return env

    def copy_output(self):
        for raw in self.process.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if line:
                self.logs.write(self.group, self.stream, line)

    def alive(self) -> bool:
        return self.process.poll() is None

    def invoke(self, event: dict) -> tuple[Outcome, float]:
        """Runs one invocation; its outcome and how long it took, in milliseconds."""
        function = self.function
        request_id = str(uuid.uuid4())
        timeout = float(function.timeout or 3)
        deadline = time.time() + timeout
        self.logs.write(self.group, self.stream, f"START RequestId: {request_id} Version: $LATEST")
        began = time.monotonic()
        self.runtime.events.put((request_id, event, int(deadline * 1000), function.function_arn))
        outcome = None
        with self.runtime.changed:
            while outcome is None:
                outcome = self.runtime.results.pop(request_id, None)
                if outcome is not None:
                    break
                if self.runtime.init_error is not None:
                    outcome = Outcome("crash", self.runtime.init_error, "the runtime failed to start")
                elif not self.alive():
                    outcome = Outcome("crash", None, f"Runtime exited with error: exit status {self.process.returncode}")
                elif time.time() >= deadline:
                    outcome = Outcome("timeout", None, f"Task timed out after {timeout:.2f} seconds")
                else:
                    self.runtime.changed.wait(0.05)
        took = (time.monotonic() - began) * 1000
        if outcome.kind in ("timeout", "crash"):
            self.logs.write(self.group, self.stream, f"{_timestamp()} {request_id} {outcome.detail}")
            self.stop()
        init = ""
        if self.first:
            init = f"\tInit Duration: {(began - self.started) * 1000:.2f} ms"
            self.first = False
        self.logs.write(self.group, self.stream, f"END RequestId: {request_id}")
        self.logs.write(
            self.group,
            self.stream,
            f"REPORT RequestId: {request_id}\tDuration: {took:.2f} ms\tBilled Duration: {int(took) + 1} ms"
            f"\tMemory Size: {function.memory_size} MB\tMax Memory Used: {self.max_memory_mb()} MB{init}",
        )
        return outcome, took

    def max_memory_mb(self) -> int:
        try:
            with open(f"/proc/{self.process.pid}/status", encoding="ascii") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) // 1024
        except OSError:
            pass
        return 0

    def stop(self):
        if self.alive():
            self.process.kill()
            self.process.wait()
        self.runtime.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def _zip_stream(data: bytes):
    import io

    return io.BytesIO(data)


def _timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z"


def _role_credentials(function, region: str) -> tuple[str, str, str]:
    """Temporary credentials for the function's role, from moto's STS, as Lambda gives them."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sts.models import sts_backends
    from moto.utilities.utils import get_partition

    sts = sts_backends[DEFAULT_ACCOUNT_ID][get_partition(region)]
    role = sts.assume_role(
        region_name=region,
        role_session_name=function.function_name,
        role_arn=function.role,
        policy=None,
        duration=3600,
        external_id=None,
    )
    return role.access_key_id, role.secret_access_key, role.session_token


class Logs:
    """Writes into moto's CloudWatch Logs, as Lambda writes a function's output."""

    def __init__(self, account: str, region: str):
        from moto.logs.models import logs_backends

        self.backend = logs_backends[account][region]
        self.lock = threading.Lock()

    def open_stream(self, group: str, stream: str):
        with self.lock:
            if group not in self.backend.groups:
                # Lambda makes the group on a first invocation when nobody made it before.
                self.backend.create_log_group(group, {})
            self.backend.create_log_stream(group, stream)

    def write(self, group: str, stream: str, message: str):
        event = {"timestamp": int(time.time() * 1000), "message": message}
        with self.lock:
            try:
                self.backend.put_log_events(group, stream, [event])
            except Exception:  # the group deleted meanwhile (down): Lambda's output is lost too
                pass


class Functions:
    """Every function's warm instances, started again when its code or configuration changes."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.lock = threading.Condition()
        # function ARN -> (what the instances were started with, idle instances, running count)
        self.pools: dict[str, list] = {}

    def invoke(self, account: str, region: str, function, event: dict) -> tuple[Outcome, float, str]:
        """One invocation of ``function``; its outcome, duration (ms) and the log stream."""
        key = _started_with(function)
        arn = function.function_arn
        with self.lock:
            while True:
                pool = self.pools.get(arn)
                if pool is None or pool[0] != key:
                    for stale in pool[1] if pool else []:
                        stale.stop()
                    pool = self.pools[arn] = [key, [], 0]
                if pool[1] or pool[2] < MAX_INSTANCES:
                    break
                self.lock.wait(0.1)
            instance = pool[1].pop() if pool[1] else None
            pool[2] += 1
        try:
            if instance is None or not instance.alive():
                instance = Instance(function, region, self.endpoint, Logs(account, region))
            outcome, took = instance.invoke(event)
            return outcome, took, instance.stream
        finally:
            with self.lock:
                current = self.pools.get(arn)
                if current is not None and current[0] == key:
                    current[2] -= 1
                    if instance is not None and instance.alive():
                        current[1].append(instance)
                elif instance is not None:
                    instance.stop()
                self.lock.notify_all()

    def forget(self, arn: str):
        """Stops a deleted function's idle instances (running ones stop when they finish)."""
        with self.lock:
            pool = self.pools.pop(arn, None)
            for instance in pool[1] if pool else []:
                instance.stop()

    def stop_all(self):
        with self.lock:
            for pool in self.pools.values():
                for instance in pool[1]:
                    instance.stop()
            self.pools.clear()


def _started_with(function) -> tuple:
    return (
        function.code_sha_256,
        tuple(function.architectures or ()),
        json.dumps(function.environment_vars or {}, sort_keys=True),
        function.timeout,
        function.memory_size,
        function.role,
        function.handler,
    )
