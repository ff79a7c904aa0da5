#!/usr/bin/env bash
# Idempotent set-up of both Python environments (see docs/architecture.md):
#   .venv       the machine's Python (>= 3.10): webapp, worker, bot, tests
#   .venv-rasa  a Python 3.8-3.10: rasa==3.6.21 and the action server
# Each step leaves a stamp that records the hash of its inputs, so a second run
# does nothing and takes well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RASA_VERSION=3.6.21
TORCH_VERSION=2.13.0
mkdir -p var

# pip warns about every local index folder this machine lacks; keep real errors only.
quiet() { "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }; }
log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

stamp_ok() {  # stamp_ok NAME HASH -> 0 when the stamp is current
  [ -f "var/.stamp-$1" ] && [ "$(cat "var/.stamp-$1")" = "$2" ]
}
hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }

pick_main_python() {
  for c in "${PYTHON:-}" python3.11 python3.12 python3 ; do
    [ -n "$c" ] || continue
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
      command -v "$c"; return 0
    fi
  done
  return 1
}

find_rasa_python() {
  # Prefer an interpreter that is already on the machine; Rasa 3.6 supports 3.8-3.10.
  local c
  for c in "${RASA_PYTHON:-}" python3.10 python3.9 python3.8 \
           /usr/bin/python3.10 /usr/bin/python3.9 /usr/bin/python3.8 \
           "$HOME"/.pyenv/versions/3.10*/bin/python3.10 \
           "$HOME"/.pyenv/versions/3.9*/bin/python3.9 \
           "$HOME"/.pyenv/versions/3.8*/bin/python3.8 ; do
    [ -n "$c" ] || continue
    if "$c" -c 'import sys, ssl, sqlite3; sys.exit(0 if (3, 8) <= sys.version_info[:2] <= (3, 10) else 1)' >/dev/null 2>&1; then
      echo "$c"; return 0
    fi
  done
  return 1
}

install_python39_from_bullseye() {
  # Debian 12 ships no Python <= 3.10; Debian 11's 3.9 installs beside it (measured).
  if [ "$(id -u)" != 0 ] || ! [ -f /etc/debian_version ]; then
    echo "No Python 3.8-3.10 found. Install one (or set RASA_PYTHON) and run again." >&2
    exit 1
  fi
  log "installing Python 3.9 from Debian 11 (bullseye) packages"
  echo 'deb http://deb.debian.org/debian bullseye main' > /etc/apt/sources.list.d/bullseye.list
  printf 'Package: *\nPin: release n=bullseye\nPin-Priority: 100\n' > /etc/apt/preferences.d/bullseye
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bullseye python3.9 python3.9-dev >/dev/null
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -t bullseye python3-distutils python3-lib2to3 >/dev/null)
  for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$tmp/x"; done
  cp -rn "$tmp/x/usr/lib/python3.9/." /usr/lib/python3.9/
  rm -rf "$tmp"
}

# ---------------------------------------------------------------- .venv
MAIN_HASH=$(hash_of pyproject.toml scripts/setup.sh)
if ! stamp_ok main "$MAIN_HASH" || ! [ -x .venv/bin/python ]; then
  PY=$(pick_main_python) || { echo "Python >= 3.10 is required" >&2; exit 1; }
  log "creating .venv with $PY"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  quiet .venv/bin/python -m pip install -q --upgrade pip
  # torch first, with pip: pip takes the CPU build; a resolver that downloads
  # would fetch a multi-GB CUDA build instead.
  quiet .venv/bin/python -m pip install -q "torch==${TORCH_VERSION}"
  quiet .venv/bin/python -m pip install -q -e '.[dev]'
  echo "$MAIN_HASH" > var/.stamp-main
fi

# ---------------------------------------------------------------- .venv-rasa
RASA_HASH=$(hash_of requirements-rasa.txt scripts/setup.sh)
if ! stamp_ok rasa "$RASA_HASH" || ! [ -x .venv-rasa/bin/rasa ]; then
  RPY=$(find_rasa_python) || { install_python39_from_bullseye; RPY=$(find_rasa_python); }
  log "creating .venv-rasa with $RPY (rasa==${RASA_VERSION})"
  quiet .venv/bin/python -m pip install -q uv
  [ -x .venv-rasa/bin/python ] || .venv/bin/python -m uv venv -q --python "$RPY" .venv-rasa
  .venv/bin/python -m uv pip install -q --python .venv-rasa/bin/python -r requirements-rasa.txt
  echo "$RASA_HASH" > var/.stamp-rasa
fi

# ---------------------------------------------------------------- chromium (browser tests)
if [ "${SETUP_BROWSER:-0}" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian's chromium for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is missing: install Debian's 'chromium' package for the browser tests" >&2
  fi
fi
log "environments ready"
