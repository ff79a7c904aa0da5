"""`make run`: prepare what is missing, then start the whole system with honcho.

Steps: database schema (Alembic), demo admin, Rasa model (trained when
models/ has none), service token for the action server, then webapp, worker,
Rasa, action server and the local mail catcher. Ctrl-C stops everything.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from devenv import ROOT, VAR, system_env

MODEL = ROOT / "models" / "zapdesk.tar.gz"
VENV = ROOT / ".venv" / "bin"
RASA_VENV = ROOT / ".venv-rasa" / "bin"


def say(text: str) -> None:
    print(f"\033[1;32m[run]\033[0m {text}", flush=True)


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
    honcho = subprocess.Popen([str(VENV / "honcho"), "-f", "Procfile", "start"], cwd=ROOT, env=env)
    # Ctrl-C reaches honcho through the terminal's process group; this process only waits.
    signal.signal(signal.SIGINT, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: honcho.terminate())
    if wait_ready({"webapp": f"{web}/healthz"}, honcho, timeout=60):
        print(f"""
\033[1m  ZapDesk is running.\033[0m
    Agent interface     {web}/agent/     ({credentials.removeprefix('Demo admin: ')})
    WhatsApp simulator  {web}/dev/simulator
    Dev mailbox         {web}/dev/mailbox
    REST API            {web}/api/v1
  Press Ctrl-C to stop.
""", flush=True)
    # Rasa takes ~30 s to load its model; messages sent meanwhile wait in the queue.
    if wait_ready({"rasa": f"http://127.0.0.1:{env['RASA_PORT']}/",
                   "actions": f"http://127.0.0.1:{env['ACTIONS_PORT']}/health"}, honcho):
        say("the assistant is ready: say 'oi' in the simulator")
    elif honcho.poll() is None:
        say("Rasa or the action server is not answering yet; see the log above")
    return honcho.wait()


if __name__ == "__main__":
    sys.exit(main())
