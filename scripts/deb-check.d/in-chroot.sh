#!/bin/bash
# Runs inside a deb-check chroot, as root, started by scripts/deb-check. /ci holds the packages (debs/), a
# copy of the repository (src/) and of the shared fixtures (shared/).
#   in-chroot.sh cycle OLD.deb NEW.deb [--no-install-recommends]
#       install OLD, run the agent as its user the way the unit does, upgrade to NEW (a higher version),
#       remove, purge; check what each step must keep or leave.
#   in-chroot.sh sample      the installed package's `sample --root` over a fixture tree (run before purge
#                            by `cycle`; alone it needs the package installed)
#   in-chroot.sh tests [PYTEST ARGS...]   the agent's test suite from /ci/src with this release's packages
set -euo pipefail -o errtrace
trap 'echo "deb-check FAILED at in-chroot.sh line $LINENO: $BASH_COMMAND" >&2; [ ! -s /tmp/agent.log ] || tail -20 /tmp/agent.log >&2' ERR
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
export PYTHONDONTWRITEBYTECODE=1
HERE=$(dirname "$0")
APT=(apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
STATE=/var/lib/pi-stream-agent
CONFIG=/etc/pi-stream-agent/config.yaml
AGENT_PID=""
AGENT_PORT=""

step() { echo "--- $*"; }
fail() { echo "deb-check FAILED: $*" >&2; exit 1; }
expect_eq() { [ "$1" = "$2" ] || fail "$3: expected '$2', found '$1'"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {}, {'d': d}))" "$1"; }

# Our files anywhere on the system (not /ci, /proc, /sys, /dev, /tmp).
our_paths() {
  find / -xdev \( -path /ci -o -path /proc -o -path /sys -o -path /dev -o -path /tmp \) -prune -o \
    \( -name '*pi-stream*' -o -name '*pi_stream*' \) -print | sort
}

start_agent() {
  # As the unit runs it: its user and groups (video), CAP_SYSLOG only, no new privileges, umask 0027.
  : > /tmp/agent.log
  (umask 0027; exec setpriv --reuid=pi-stream --regid=pi-stream --init-groups \
     --inh-caps=-all,+syslog --ambient-caps=-all,+syslog --bounding-set=-all,+syslog --no-new-privs -- \
     /usr/bin/pi-stream-agent run --simulate --listen 127.0.0.1 --port 0 --no-zeroconf) \
     >/tmp/agent.log 2>&1 &
  AGENT_PID=$!
  local waited=0
  until AGENT_PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]\{1,5\}\) .*/\1/p' /tmp/agent.log | head -1) \
        && [ -n "$AGENT_PORT" ]; do
    kill -0 "$AGENT_PID" 2>/dev/null || { cat /tmp/agent.log; fail "the agent exited at start"; }
    [ "$waited" -lt 600 ] || { cat /tmp/agent.log; fail "the agent did not listen within 300 s"; }
    sleep 0.5; waited=$((waited + 1))
  done
  expect_eq "$(stat -c %U "/proc/$AGENT_PID")" pi-stream "the agent's user"
  grep -q '^CapAmb:.*0000000400000000' "/proc/$AGENT_PID/status" \
    || fail "the agent's ambient capabilities are not CAP_SYSLOG alone: $(grep Cap "/proc/$AGENT_PID/status")"
}

stop_agent() {
  kill -TERM "$AGENT_PID"
  local rc=0
  wait "$AGENT_PID" || rc=$?
  expect_eq "$rc" 0 "the agent's exit status on SIGTERM"
}

# apt-get, its (long) output in a log shown only when it fails.
apt_logged() {
  local log=$1; shift
  "${APT[@]}" "$@" >"$log" 2>&1 || { tail -40 "$log" >&2; fail "apt-get $*"; }
}

api() { python3 "$HERE/api_probe.py" "$AGENT_PORT" "$@"; }

state_sums() { (cd "$STATE" && sha256sum token agent_id streams.yaml 2>/dev/null) || true; }

cycle() {
  local old=$1 new=$2; shift 2
  local recommends=("$@")
  local old_version new_version
  old_version=$(dpkg-deb -f "$old" Version); new_version=$(dpkg-deb -f "$new" Version)
  [ -z "$(our_paths)" ] || fail "files of ours before installing: $(our_paths)"

  step "install $old_version: apt resolves the dependencies"
  apt_logged /tmp/install.log "${recommends[@]}" install "$old"
  echo "$(grep -c '^Unpacking' /tmp/install.log) packages unpacked; what postinst said:"
  tr -d '\r' </tmp/install.log | sed -n '/^pi-stream-agent is installed/,/mediamtx-config/p' | sed 's/^    [A-Za-z0-9_-]\{43\}$/    (the token)/'
  local token
  # apt runs dpkg on a pseudo-terminal: its lines end in CR LF.
  token=$(tr -d '\r' </tmp/install.log | sed -n 's/^    \([A-Za-z0-9_-]\{43\}\)$/\1/p')
  [ -n "$token" ] || fail "postinst printed no token"
  grep -q "Add integration" /tmp/install.log || fail "postinst did not say the next step"
  for pkg in python3-aiohttp python3-psutil python3-voluptuous python3-yaml python3-zeroconf; do
    dpkg-query -W -f='${Status}' "$pkg" | grep -q "install ok installed" || fail "$pkg not installed"
  done
  id -nG pi-stream | tr ' ' '\n' | grep -qx video || fail "pi-stream is not in group video"
  id -nG pi-stream | tr ' ' '\n' | grep -qx audio || fail "pi-stream is not in group audio"
  expect_eq "$(getent passwd pi-stream | cut -d: -f7)" /usr/sbin/nologin "pi-stream's shell"
  expect_eq "$(stat -c '%U:%G %a' "$STATE")" "pi-stream:pi-stream 750" "the state directory"
  expect_eq "$(stat -c '%U %a' "$STATE/token")" "pi-stream 600" "the token file"
  expect_eq "$(stat -c '%U:%G %a' "$CONFIG")" "root:pi-stream 640" "the config file"
  [ -L /etc/systemd/system/multi-user.target.wants/pi-stream-agent.service ] || fail "the service is not enabled"
  step "pi-stream-agent token, as root, with no options (the installed layout)"
  expect_eq "$(pi-stream-agent token)" "$token" "pi-stream-agent token"
  runuser -u pi-stream -- pi-stream-agent check-config
  pi-stream-agent --version

  step "run the agent as pi-stream, as the unit does; the API with the package's token"
  sed -i 's/^\(  interval_s:\) 5 /\1 7 /' "$CONFIG"   # a local change the upgrade must keep
  grep -q '^  interval_s: 7 ' "$CONFIG" || fail "could not edit $CONFIG"
  start_agent
  local info
  info=$(api "$token" GET /api/v1/info)
  expect_eq "$(json 'd["version"]' <<<"$info")" "$old_version" "info.version"
  expect_eq "$(json 'd["telemetry_interval_s"]' <<<"$info")" 7.0 "info.telemetry_interval_s"
  local agent_id
  agent_id=$(json 'd["agent_id"]' <<<"$info")
  local rc=0
  api "" GET /api/v1/info >/dev/null || rc=$?
  expect_eq "$rc" 3 "no token: 401"
  rc=0; api "wrong-token-wrong-token-wrong-token-wrong-tok" GET /api/v1/info >/dev/null || rc=$?
  expect_eq "$rc" 3 "a wrong token: 401"
  api "$token" PUT /api/v1/streams/ci_camera \
    '{"name": "CI camera", "enabled": false, "source": {"type": "test"}, "width": 640, "height": 480, "fps": 10, "bitrate": "1M"}' >/dev/null
  api "$token" GET /api/v1/streams | json '[s["id"] for s in d["streams"]]' | grep -q ci_camera \
    || fail "the stream was not stored"
  stop_agent
  sample
  local before
  before=$(state_sums)
  [ -n "$before" ] || fail "nothing in $STATE"

  step "upgrade to $new_version: config, token, agent id and streams kept"
  apt_logged /tmp/upgrade.log "${recommends[@]}" install "$new"
  if grep -q "Add integration" /tmp/upgrade.log; then fail "the upgrade printed the first-install message"; fi
  expect_eq "$(state_sums)" "$before" "the state files after the upgrade"
  grep -q '^  interval_s: 7 ' "$CONFIG" || fail "the upgrade replaced the edited config"
  expect_eq "$(stat -c '%U:%G %a' "$CONFIG")" "root:pi-stream 640" "the config file after the upgrade"
  start_agent
  info=$(api "$token" GET /api/v1/info)
  expect_eq "$(json 'd["version"]' <<<"$info")" "$new_version" "info.version after the upgrade"
  expect_eq "$(json 'd["agent_id"]' <<<"$info")" "$agent_id" "info.agent_id after the upgrade"
  expect_eq "$(json 'd["telemetry_interval_s"]' <<<"$info")" 7.0 "info.telemetry_interval_s after the upgrade"
  api "$token" GET /api/v1/streams | json '[s["id"] for s in d["streams"]]' | grep -q ci_camera \
    || fail "the stream was lost in the upgrade"
  stop_agent

  step "remove: the program goes, the state and the config stay"
  apt_logged /tmp/remove.log remove pi-stream-agent
  [ ! -e /usr/bin/pi-stream-agent ] || fail "/usr/bin/pi-stream-agent left after remove"
  [ ! -e /usr/lib/python3/dist-packages/pi_stream_agent ] || fail "the agent's modules (or byte-code) left after remove"
  expect_eq "$(state_sums)" "$before" "the state files after remove"
  [ -f "$CONFIG" ] || fail "remove deleted the config"
  getent passwd pi-stream >/dev/null || fail "remove deleted the user"

  step "purge: nothing of ours is left"
  apt_logged /tmp/purge.log purge pi-stream-agent
  if getent passwd pi-stream || getent group pi-stream; then fail "the user or group pi-stream is left"; fi
  if dpkg-statoverride --list | grep -q pi-stream; then fail "a stat override is left"; fi
  [ -z "$(our_paths)" ] || fail "left after purge: $(our_paths)"
  echo "install, run, upgrade, remove, purge: OK ($old_version -> $new_version)"
}

sample() {
  step "the installed agent: sample --root over the Pi 3B+ fixture tree"
  PI_STREAM_SHARED=/ci/shared python3 "$HERE/installed_sample.py"
}

tests() {
  step "the agent's tests with $(python3 --version) and this release's packages"
  cd /ci/src
  PI_STREAM_SHARED=/ci/shared python3 -m pytest -q -p no:cacheprovider "$@"
}

command=$1; shift
case "$command" in
  cycle) cycle "$@" ;;
  sample) sample ;;
  tests) tests "$@" ;;
  *) fail "unknown command $command" ;;
esac
