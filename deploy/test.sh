#!/usr/bin/env bash
# Checks the deploy recipes, as scripts/test.sh runs them:
# - the systemd unit passes `systemd-analyze verify` without a word;
# - every variable in its environment file is a flag the relay has, and the
#   relay starts from that file (ports and certificate swapped for loopback
#   and self-signed ones) and serves HTTPS and TURN on the HTTPS port;
# - the container image builds (deploy/container/build.sh) and serves the
#   app over HTTPS.
# The relays run in a network namespace of their own that has only `lo`.
# Needs root, target/release/meshcast-relay, dist/ and podman.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${MESHCAST_RELAY_BIN:-target/release/meshcast-relay}
log() { printf '\033[1mdeploy:\033[0m %s\n' "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

ns=meshcast-deploy-$$
tmp=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  podman umount meshcast-deploy-test >/dev/null 2>&1 || true
  podman rm -f -t 0 meshcast-deploy-test >/dev/null 2>&1 || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
inns() { ip netns exec "$ns" "$@"; }

# Waits until https://127.0.0.1:PORT/healthz answers ok in the namespace.
healthy() {
  for _ in $(seq 100); do
    [ "$(inns curl -sk "https://127.0.0.1:$1/healthz" 2>/dev/null)" = ok ] && return 0
    sleep 0.1
  done
  return 1
}

log "systemd unit"
sed "s#/usr/local/bin/meshcast-relay#$(realpath "$bin")#" deploy/systemd/meshcast-relay.service >"$tmp/meshcast-relay.service"
out=$(systemd-analyze verify "$tmp/meshcast-relay.service" 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify: $out"

log "environment file"
help=$("$bin" --help)
vars=()
while IFS= read -r line; do
  case "$line" in '' | '#'*) continue ;; esac
  name=${line%%=*}
  grep -qF "[env: $name=" <<<"$help" || fail "relay.env: $name is not a relay flag"
  # The certificate files are replaced by a self-signed certificate below.
  case "$name" in MESHCAST_TLS_CERT | MESHCAST_TLS_KEY) continue ;; esac
  vars+=("$line")
done <deploy/systemd/relay.env
# The file as written, but on loopback with a self-signed certificate.
env -i "${vars[@]}" \
  MESHCAST_LISTEN=127.0.0.1:443 MESHCAST_DIST=dist MESHCAST_STATE_DIR="$tmp/state" \
  MESHCAST_TLS_SELF_SIGNED=true MESHCAST_REDIRECT_HTTP=127.0.0.1:80 \
  MESHCAST_TURN_LISTEN=127.0.0.1:3478 MESHCAST_TURN_TLS_LISTEN=127.0.0.1:5349 \
  MESHCAST_TURN_RELAY_IP=127.0.0.1 MESHCAST_TURN_HOST=localhost \
  ip netns exec "$ns" "$bin" >"$tmp/relay.log" 2>&1 &
pid=$!
healthy 443 || { cat "$tmp/relay.log" >&2; fail "the relay did not start from relay.env"; }
grep -q 'on_https=Some(127.0.0.1:443)' "$tmp/relay.log" || { cat "$tmp/relay.log" >&2; fail "no TURN on the HTTPS port"; }
[ "$(inns curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:80/)" = 308 ] || fail "no redirect from port 80"
kill "$pid"
wait "$pid" 2>/dev/null || true
pid=

log "container image"
image=meshcast-deploy-test
deploy/container/build.sh "$image" >/dev/null
state=/state
if ! inns podman run -d --name "$image" --network host -e MESHCAST_LISTEN=127.0.0.1:3000 \
  "$image" --tls-self-signed >"$tmp/podman.log" 2>&1; then
  # Some sandboxes (no usable cgroup mount) let podman build images but not
  # run them: run the image's own filesystem, entrypoint, environment and
  # user with chroot instead, so the image is still what is tested.
  log "podman cannot run containers here ($(tail -1 "$tmp/podman.log")); running the image with chroot"
  inns podman rm -f -t 0 "$image" >/dev/null 2>&1 || true
  container=$(podman create --name "$image" "$image")
  root=$(podman mount "$container")
  mkdir -p "$root$state" && chown 65534:65534 "$root$state"
  mapfile -t image_env < <(podman image inspect "$image" --format '{{range .Config.Env}}{{println .}}{{end}}' | grep .)
  user=$(podman image inspect "$image" --format '{{.Config.User}}')
  entry=$(podman image inspect "$image" --format '{{index .Config.Entrypoint 0}}')
  # The image's environment, then the test's loopback address.
  env -i "${image_env[@]}" MESHCAST_LISTEN=127.0.0.1:3000 \
    ip netns exec "$ns" chroot --userspec="$user" "$root" "$entry" --tls-self-signed >"$tmp/podman.log" 2>&1 &
  pid=$!
fi
healthy 3000 || { cat "$tmp/podman.log" >&2; inns podman logs "$image" >&2 2>/dev/null || true; fail "the image does not serve HTTPS"; }
inns curl -sk https://127.0.0.1:3000/ | grep -q '<title>meshcast</title>' || fail "the image does not serve the app"
size=$(podman image inspect "$image" --format '{{.Size}}')
log "ok (image: $((size / 1000000)) MB, FROM scratch)"
