#!/usr/bin/env bash
# Set up Breeze on a Debian/Ubuntu machine: system packages, .venv, the project and its extras.
# Usage: scripts/setup.sh [app|test]   (test adds the audio and terminal tools the tests use)
# A second run only checks what is there and returns quickly.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-app}

packages=(libportaudio2 espeak-ng g++)
[ "$mode" = test ] && packages+=(pulseaudio libasound2-plugins pulseaudio-utils tmux sox chromium chromium-driver)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "breeze setup: installing Debian packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv

# Reinstall only when the project's requirements changed since the last install.
extras=""
[ "$mode" = test ] && extras="[test]"
stamp=".venv/.breeze-installed-$mode"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "breeze setup: installing the project into .venv (llama-cpp-python compiles on first install)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".$extras"
  touch "$stamp"
fi
