#!/usr/bin/env bash
# Start PulseAudio (if it is not running) with a null sink as the default speaker and its
# monitor as the default microphone, so tests play and record through real devices.
set -euo pipefail
if ! pactl info >/dev/null 2>&1; then
  pulseaudio --daemonize=yes --exit-idle-time=-1 --log-target=stderr >/dev/null 2>&1 || true
  for _ in $(seq 50); do pactl info >/dev/null 2>&1 && break; sleep 0.1; done
fi
if ! pactl list short sinks | grep -q breeze_null; then
  pactl load-module module-null-sink sink_name=breeze_null \
    sink_properties=device.description=BreezeNull rate=48000 >/dev/null
fi
pactl set-default-sink breeze_null
pactl set-default-source breeze_null.monitor
