"""`make run`: prepare what is missing, then start the whole system with honcho.

Steps: database schema (Alembic), demo admin, Rasa model (trained when
models/ has none), service token for the action server, then webapp, worker,
Rasa, action server and the local mail catcher. Ctrl-C stops everything.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from devenv import ROOT, VAR, system_env

MODEL = ROOT / "models" / "zapdesk.tar.gz"
VENV = ROOT / ".venv" / "bin"
RASA_VENV = ROOT / ".venv-rasa" / "bin"


def say(text: str) -> None:
    try:
        print(f"\033[1;32m[run]\033[0m {text}", flush=True)
    except BrokenPipeError:  # output piped to a reader that is gone
        pass


def flask(env: dict, *args: str, capture: bool = False) -> str:
    result = subprocess.run([str(VENV / "flask"), "--app", "webapp.wsgi", *args], cwd=ROOT, env=env,
                            check=True, text=True, capture_output=capture)
    return (result.stdout or "").strip()


def ensure_model(env: dict) -> None:
    if MODEL.exists():
        return
    say("no trained model in models/: training one (a few minutes, once)")
    subprocess.run([str(RASA_VENV / "rasa"), "train", "--fixed-model-name", "zapdesk", "--out", "models"],
                   cwd=ROOT, env=env, check=True)


def relay(stream) -> None:
    """Copy honcho's output to ours; keep draining it if ours is closed."""
    out = sys.stdout.buffer
    for line in iter(stream.readline, b""):
        try:
            out.write(line)
            out.flush()
        except (BrokenPipeError, ValueError):
            out = open(os.devnull, "wb")


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (Linux /proc), to stop them even if honcho dies first."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def stop_all(pids: set[int]) -> None:
    """SIGTERM what is left, then SIGKILL after a grace period."""
    alive = {p for p in pids if Path(f"/proc/{p}").exists()}
    for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 0)):
        for pid in alive:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + grace
        while alive and time.time() < deadline:
            time.sleep(0.2)
            alive = {p for p in alive if Path(f"/proc/{p}").exists()}
        if not alive:
            return


def wait_ready(urls: dict[str, str], proc: subprocess.Popen, timeout: float = 240) -> bool:
    pending = dict(urls)
    deadline = time.time() + timeout
    while pending and time.time() < deadline and proc.poll() is None:
        for name, url in list(pending.items()):
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status < 500:
                        del pending[name]
            except Exception:
                pass
        time.sleep(0.5)
    return not pending


def main() -> int:
    env = system_env()
    VAR.mkdir(exist_ok=True)
    (VAR / "mailbox").mkdir(exist_ok=True)
    say("database schema")
    flask(env, "db", "upgrade")
    credentials = flask(env, "seed-demo", "--credentials-file", str(VAR / "demo-admin.txt"), capture=True)
    ensure_model(env)
    env["WEBAPP_SERVICE_TOKEN"] = flask(env, "service-token", capture=True).splitlines()[-1]
    web = f"http://127.0.0.1:{env['WEB_PORT']}"
    say("starting webapp, worker, Rasa, action server and mail catcher")
    # honcho's output passes through this process: if our stdout goes away
    # (make run | tee, and Ctrl-C kills tee), honcho must not die on a broken
    # pipe halfway through stopping its children.
    honcho = subprocess.Popen([str(VENV / "honcho"), "-f", "Procfile", "start"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    threading.Thread(target=relay, args=(honcho.stdout,), daemon=True).start()
    family: set[int] = set()
    stopping = threading.Event()

    def watch() -> None:
        while honcho.poll() is None:
            family.update(descendants(honcho.pid))
            if stopping.wait(1):
                # Ctrl-C reached honcho too; give it time to stop its children cleanly.
                try:
                    honcho.wait(timeout=25)
                except subprocess.TimeoutExpired:
                    honcho.kill()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    # Ctrl-C reaches honcho through the terminal's process group; we wait for it.
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    signal.signal(signal.SIGTERM, lambda *_: (honcho.terminate(), stopping.set()))
    if wait_ready({"webapp": f"{web}/healthz"}, honcho, timeout=60):
        say(f"""
\033[1m  ZapDesk is running.\033[0m
    Agent interface     {web}/agent/     ({credentials.removeprefix('Demo admin: ')})
    WhatsApp simulator  {web}/dev/simulator
    Dev mailbox         {web}/dev/mailbox
    REST API            {web}/api/v1
  Press Ctrl-C to stop.
""")
    # Rasa takes ~30 s to load its model; messages sent meanwhile wait in the queue.
    if wait_ready({"rasa": f"http://127.0.0.1:{env['RASA_PORT']}/",
                   "actions": f"http://127.0.0.1:{env['ACTIONS_PORT']}/health"}, honcho):
        say("the assistant is ready: say 'oi' in the simulator")
    elif honcho.poll() is None:
        say("Rasa or the action server is not answering yet; see the log above")
    watcher.join()
    # Whatever honcho left running (it was killed, or died), stop it here:
    # nothing may keep the ports.
    stop_all(family)
    return honcho.returncode


if __name__ == "__main__":
    sys.exit(main())
