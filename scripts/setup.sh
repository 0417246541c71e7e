#!/usr/bin/env bash
# Install what is missing for MaskWatch: Debian libraries for Qt, then the virtualenv at .venv/.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

QT_DEBS="libegl1 libgl1 libfontconfig1 libxkbcommon0 libdbus-1-3 libglib2.0-0 \
libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 \
libxcb-render-util0 libxcb-image0 xvfb"
missing=""
for deb in $QT_DEBS; do
  dpkg -s "$deb" >/dev/null 2>&1 || missing="$missing $deb"
done
if [[ -n "$missing" ]]; then
  echo "setup: installing Debian packages:$missing"
  if [[ $(id -u) -eq 0 ]]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get install -y -q $missing >/dev/null 2>&1 || {
    $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q $missing >/dev/null; }
fi

PY=${PYTHON:-python3.11}
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv with $PY"
  "$PY" -m venv .venv
fi
stamp=.venv/.maskwatch-requirements
want=$(cat requirements.txt scripts/setup.sh | sha1sum | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  # torch arrives as a CUDA build: the finished .venv holds about 6.2 GB, and pip unpacks
  # wheels beside it on the way. Say so plainly instead of failing part way through.
  need_mb=8000
  free_mb=$(df --output=avail -B1M .venv | tail -1 | tr -d ' ')
  if [[ -f $stamp ]]; then need_mb=2000; fi
  if (( free_mb < need_mb )); then
    echo "setup: error: ${free_mb} MB free on the disk holding .venv;" \
      "installing the packages needs about ${need_mb} MB" >&2
    exit 1
  fi
  echo "setup: installing Python packages into .venv (first run takes a few minutes)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
  # KD_Lib 0.0.32 pins torch 1.8.1 and an old pip: take its code alone.
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps KD_Lib==0.0.32
  echo "$want" > "$stamp"
fi
