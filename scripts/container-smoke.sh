#!/usr/bin/env bash
# Container smoke test: build ctxfy's image from the real Dockerfile with podman, run it the
# way a platform would (read-only root filesystem, no capabilities, non-root) and check it
# over HTTP on 127.0.0.1. Then stop and remove everything it created.
#
#   sudo scripts/container-smoke.sh          # or: nox -s container
#
# Needs root, podman (4.3+), runc, debootstrap and curl (Debian: apt-get install podman runc
# debootstrap curl). Podman keeps all of its state in a temporary directory of its own:
# nothing is pulled from or pushed to a registry, and no image, container or volume of
# yours is touched. The base image is built locally by scripts/build-base-image.sh
# (debootstrap Debian 13 "trixie", whose python3 is 3.13) and tagged with the name the
# Dockerfile's BASE_IMAGE defaults to, so the Dockerfile is built as it is.
#
# Environment:
#   CTXFY_SMOKE_BASE_CACHE  a file to keep the base image in between runs (podman save /
#                           load); unset: built afresh every run (about a minute)
#   CTXFY_SMOKE_PIP_CERT    CA bundle for pip in the build stage (default $PIP_CERT or
#                           $SSL_CERT_FILE when set), passed as a build secret
#   CTXFY_SMOKE_PORT        port for the server (default: a free one)
#   CTXFY_SMOKE_KEEP        set to 1 to keep the temporary directory for inspection
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

step() { printf '\n--- %s (%ds)\n' "$*" "$(($(date +%s) - started))"; }
fail() {
    printf 'container-smoke: FAILED: %s\n' "$*" >&2
    exit 1
}
check() { printf '  ok: %s\n' "$*"; }

[ "$(id -u)" = 0 ] || fail "run as root (podman with its own storage, debootstrap)"
for tool in podman runc debootstrap curl python3; do
    command -v "$tool" >/dev/null || fail "$tool is missing (apt-get install podman runc debootstrap curl)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/ctxfy-smoke.XXXXXX")
suffix=$(basename "$work" | cut -d. -f2 | tr '[:upper:]' '[:lower:]')
image=localhost/ctxfy-smoke:$suffix
base_local=localhost/ctxfy-smoke-base:$suffix
volume=ctxfy-smoke-data-$suffix
server=ctxfy-smoke-$suffix
base_image=$(sed -n 's/^ARG BASE_IMAGE=//p' Dockerfile | head -1)
[ -n "$base_image" ] || fail "no 'ARG BASE_IMAGE=' default in the Dockerfile"

# Podman's configuration for this machine kind: runc, cgroupfs (no systemd), explicit
# ulimits, file-based events, and storage under $work so that removing it removes all.
mkdir -p "$work/storage" "$work/run" "$work/tmp"
cat >"$work/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$work/events.log"
tmp_dir = "$work/tmp"

[network]
network_backend = "netavark"
network_config_dir = "$work/networks"
EOF
cat >"$work/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$work/storage"
runroot = "$work/run"
EOF
printf 'unqualified-search-registries = []\n' >"$work/registries.conf"
# containers/image keeps a blob-digest cache for root in /var/lib/containers/cache whatever
# the storage configuration says; remember whether it was there, to remove it if not.
blob_cache=/var/lib/containers/cache/blob-info-cache-v1.boltdb
blob_cache_existed=$([ -e "$blob_cache" ] && echo yes || echo no)
export CONTAINERS_CONF=$work/containers.conf
export CONTAINERS_STORAGE_CONF=$work/storage.conf
export CONTAINERS_REGISTRIES_CONF=$work/registries.conf
export TMPDIR=$work/tmp

cleanup() {
    local code=$?
    set +e
    printf '\n--- cleanup\n'
    podman rm --force --time 5 "$server" >/dev/null 2>&1
    for leftover in $(podman ps --all --quiet --filter "name=ctxfy-smoke-$suffix"); do
        podman rm --force "$leftover" >/dev/null 2>&1
    done
    podman volume rm --force "$volume" >/dev/null 2>&1
    podman rmi --force "$image" "$base_local" "$base_image" >/dev/null 2>&1
    # Only this run's private storage is reset (CONTAINERS_STORAGE_CONF points into $work).
    podman system reset --force >/dev/null 2>&1
    if [ "$blob_cache_existed" = no ]; then
        rm -f "$blob_cache"
        rmdir /var/lib/containers/cache /var/lib/containers 2>/dev/null
    fi
    if [ "${CTXFY_SMOKE_KEEP:-}" = 1 ]; then
        echo "kept $work"
    else
        grep -F "$work/" /proc/mounts | cut -d' ' -f2 | sort -r | xargs -r -n1 umount -l
        rm -rf --one-file-system "$work"
    fi
    printf 'container-smoke: %s in %ds\n' "$([ "$code" = 0 ] && echo passed || echo FAILED)" \
        "$(($(date +%s) - started))"
    exit "$code"
}
trap cleanup EXIT
# Podman asks systemd to schedule health checks and logs an error when there is none (as
# here); the check itself is run by hand below, so that line is noise.
podman() {
    command podman "$@" 2> >(grep -v 'unable to get systemd connection' >&2)
}
trap 'exit 130' INT TERM

version=$(python3 -c "import re,pathlib; print(re.search(r'__version__ = \"([^\"]+)\"', pathlib.Path('ctxfy/__about__.py').read_text()).group(1))")
port=${CTXFY_SMOKE_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
base_url=http://127.0.0.1:$port

step "base image $base_image (local, from debootstrap)"
cache=${CTXFY_SMOKE_BASE_CACHE:-}
if [ -n "$cache" ] && [ -s "$cache" ]; then
    podman load --quiet --input "$cache" >/dev/null
    podman tag localhost/ctxfy-smoke-base:cached "$base_local"
    podman rmi localhost/ctxfy-smoke-base:cached >/dev/null
    echo "loaded from $cache"
else
    scripts/build-base-image.sh "$base_local"
    if [ -n "$cache" ]; then
        podman tag "$base_local" localhost/ctxfy-smoke-base:cached
        podman save --quiet --output "$cache" localhost/ctxfy-smoke-base:cached
        podman rmi localhost/ctxfy-smoke-base:cached >/dev/null
    fi
fi
podman tag "$base_local" "$base_image"

step "build the image from ./Dockerfile (version $version)"
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
# A machine behind a TLS-inspecting proxy trusts it through its CA bundle: hand the bundle
# to pip in the build stage as a build secret (it never lands in a layer).
secret=()
cert=${CTXFY_SMOKE_PIP_CERT:-${PIP_CERT:-${SSL_CERT_FILE:-}}}
[ -n "$cert" ] && [ -s "$cert" ] && secret=(--secret "id=pip_cert,src=$cert")
podman build --quiet --format docker --pull=never --network host "${secret[@]}" \
    --build-arg VERSION="$version" \
    --build-arg REVISION="$revision" \
    --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --tag "$image" --file Dockerfile . >/dev/null
podman image inspect "$image" --format '{{.Size}}' | awk '{printf "  image size: %.0f MB\n", $1/1e6}'

step "image metadata"
inspect() { podman image inspect "$image" --format "$1"; }
[ "$(inspect '{{.Config.User}}')" = "10001:10001" ] || fail "USER is $(inspect '{{.Config.User}}')"
check "USER 10001:10001"
[ "$(inspect '{{index .Config.Labels "org.opencontainers.image.version"}}')" = "$version" ] ||
    fail "label org.opencontainers.image.version is not $version"
[ -n "$(inspect '{{index .Config.Labels "org.opencontainers.image.source"}}')" ] ||
    fail "no org.opencontainers.image.source label"
[ "$(inspect '{{index .Config.Labels "org.opencontainers.image.base.name"}}')" = "$base_image" ] ||
    fail "label org.opencontainers.image.base.name is '$(inspect '{{index .Config.Labels "org.opencontainers.image.base.name"}}')', not $base_image"
check "OCI labels: version $version, source, base.name $base_image, revision $(inspect '{{index .Config.Labels "org.opencontainers.image.revision"}}' | cut -c1-12)"
inspect '{{json .Config.Healthcheck.Test}}' | grep -q healthcheck.py || fail "no HEALTHCHECK"
check "HEALTHCHECK $(inspect '{{json .Config.Healthcheck.Test}}')"
inspect '{{json .Config.ExposedPorts}}' | grep -q '"8000/tcp"' || fail "port 8000 not exposed"
inspect '{{json .Config.Volumes}}' | grep -q '"/data"' || fail "/data is not a volume"
check "EXPOSE 8000, VOLUME /data, ENTRYPOINT $(inspect '{{json .Config.Entrypoint}}')"
# shellcheck disable=SC2016 # expanded inside the container
podman run --rm --network none --no-healthcheck --entrypoint /bin/sh "$image" -c '
    for tool in gcc cc c++ g++ make ld pip pip3 curl wget; do
        if command -v "$tool" >/dev/null; then echo "found $tool"; exit 1; fi
    done
    test ! -e /opt/venv/bin/pip && test ! -e /opt/build && test ! -e /wheels && test ! -e /src || exit 1
    found=$(find / -xdev \( -name ".env" -o -name "*.key" -o -name "*.db" -o -name ".git" \
        -o -name "bootstrap-admin.key" -o -path "/opt/venv/*/tests/data" \) -print 2>/dev/null | head -5)
    [ -z "$found" ] || { echo "unexpected: $found"; exit 1; }
    test "$(stat -c %u:%a /data)" = "10001:700"
' || fail "the runtime image holds a build tool, pip, sources or secrets, or /data is wrong"
check "no compiler, pip, curl, sources, .env, keys or databases; /data is 10001, 0700"

step "create an admin key with the CLI, in a one-off container on the data volume"
podman volume create "$volume" >/dev/null
admin_json=$(podman run --rm --read-only --read-only-tmpfs=false --network none --no-healthcheck --cap-drop ALL \
    --security-opt no-new-privileges --volume "$volume:/data" "$image" \
    keys create --name smoke-admin --scope admin --json)
admin_key=$(printf '%s' "$admin_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
[[ $admin_key == ctxfy_* ]] || fail "keys create printed no key"
check "admin key $(printf '%s' "$admin_key" | cut -d_ -f2) created"

step "run the server: --read-only, --cap-drop ALL, no-new-privileges, --network host, port $port"
# --read-only-tmpfs=false: podman's --read-only alone mounts writable tmpfs on /tmp, /var/tmp
# and /run; Docker's and Kubernetes' read-only root does not, so neither does this test.
# --health-interval disable: podman schedules health checks with systemd timers, and this
# machine has no systemd; the image's HEALTHCHECK is run by hand below instead.
podman run --detach --name "$server" --read-only --read-only-tmpfs=false --network host --cap-drop ALL \
    --security-opt no-new-privileges --volume "$volume:/data" --health-interval disable \
    --env CTXFY_PORT="$port" --env CTXFY_ALLOWED_HOSTS="127.0.0.1:$port" \
    "$image" >/dev/null
run_at=$(date +%s)
for _ in $(seq 1 120); do
    if curl -fsS --max-time 2 "$base_url/ready" >/dev/null 2>&1; then break; fi
    [ "$(podman inspect "$server" --format '{{.State.Running}}')" = true ] || {
        podman logs "$server" | tail -20 >&2
        fail "the server exited"
    }
    sleep 0.5
done
curl -fsS --max-time 2 "$base_url/ready" >/dev/null || fail "/ready did not answer 200 in 60 s"
check "ready $(($(date +%s) - run_at))s after podman run"

step "HTTP checks"
code() { curl -s -o "$work/body" -w '%{http_code}' --max-time 10 "$@"; }
[ "$(code "$base_url/health")" = 200 ] || fail "/health: $(cat "$work/body")"
check "/health 200 $(cat "$work/body")"
if [ "$(code "$base_url/ready")" != 200 ] || ! grep -q '"ready"' "$work/body"; then
    fail "/ready: $(cat "$work/body")"
fi
check "/ready 200 $(cat "$work/body")"
[ "$(code "$base_url/metrics")" = 200 ] || fail "/metrics: $(head -c 300 "$work/body")"
grep -q '^http_server_request_duration_seconds_count{' "$work/body" ||
    fail "/metrics lacks http_server_request_duration_seconds"
check "/metrics 200 ($(grep -c '^[a-z]' "$work/body") samples)"

user_json=$(podman exec "$server" python -m ctxfy keys create --name smoke --scope read --json)
user_key=$(printf '%s' "$user_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
check "read key created with 'podman exec ... keys create' while the server runs"

mcp_headers=(-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream')
init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"container-smoke","version":"1"}}}'
[ "$(code -X POST "${mcp_headers[@]}" -d "$init" "$base_url/mcp")" = 401 ] || fail "/mcp without a key is not 401"
check "POST /mcp without a key: 401"
[ "$(code -H "Authorization: Bearer $user_key" "$base_url/v1/keys")" = 403 ] || fail "/v1/keys with a read key is not 403"
[ "$(code -H "X-API-Key: $admin_key" "$base_url/v1/keys")" = 200 ] || fail "/v1/keys with the admin key: $(cat "$work/body")"
[ "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["keys"]) if isinstance(d, dict) else len(d))' "$work/body")" = 2 ] ||
    fail "/v1/keys does not list the two keys: $(cat "$work/body")"
check "/v1/keys: 403 with the read key, 200 with two keys for the admin key"

session=$(curl -s -D - -o "$work/body" --max-time 10 -X POST "${mcp_headers[@]}" \
    -H "Authorization: Bearer $user_key" -d "$init" "$base_url/mcp" |
    tr -d '\r' | sed -n 's/^[Mm]cp-[Ss]ession-[Ii]d: //p')
[ -n "$session" ] || fail "initialize gave no session: $(cat "$work/body")"
auth=(-H "Authorization: Bearer $user_key" -H "Mcp-Session-Id: $session" -H 'MCP-Protocol-Version: 2025-06-18')
[ "$(code -X POST "${mcp_headers[@]}" "${auth[@]}" -d '{"jsonrpc":"2.0","method":"notifications/initialized"}' "$base_url/mcp")" = 202 ] ||
    fail "notifications/initialized was not accepted"
get='{"jsonrpc":"2.0","id":2,"method":"prompts/get","params":{"name":"context_stack","arguments":{"objective":"Ship ctxfy in a container"}}}'
[ "$(code -X POST "${mcp_headers[@]}" "${auth[@]}" -d "$get" "$base_url/mcp")" = 200 ] ||
    fail "prompts/get: $(cat "$work/body")"
sed -n 's/^data: //p' "$work/body" >"$work/get.json"
python3 - "$work/get.json" <<'EOF' || fail "prompts/get answer: $(head -c 500 "$work/body")"
import json, sys
answer = json.loads(open(sys.argv[1]).read())
messages = answer["result"]["messages"]
text = "".join(m["content"]["text"] for m in messages)
assert "Ship ctxfy in a container" in text, text[:300]
EOF
check "authenticated prompts/get context_stack returned the rendered prompt"

step "process, filesystem and health check"
pid=$(podman inspect "$server" --format '{{.State.Pid}}')
uids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$pid/status")
[ "$uids" = "10001 10001 10001 10001" ] || fail "the server runs with UIDs $uids"
podman top "$server" huser | tail -n +2 | grep -qv '^10001$' && fail "a process in the container is not UID 10001"
check "every process runs as UID 10001 (host view: /proc/$pid/status)"
capeff=$(awk '/^CapEff:/ {print $2}' "/proc/$pid/status")
[ "$capeff" = 0000000000000000 ] || fail "effective capabilities $capeff"
check "no capabilities (CapEff $capeff)"
[ "$(podman inspect "$server" --format '{{.HostConfig.ReadonlyRootfs}}')" = true ] || fail "root filesystem is writable"
podman exec "$server" sh -c 'touch /opt/venv/x 2>/dev/null' && fail "wrote to the root filesystem"
podman exec "$server" sh -c 'touch /tmp/x 2>/dev/null' && fail "/tmp is writable: not a Docker-like read-only root"
check "root filesystem read-only, /tmp included (a write fails)"
podman healthcheck run "$server" >/dev/null || fail "the image's HEALTHCHECK failed"
[ "$(podman inspect "$server" --format '{{.State.Health.Status}}' 2>/dev/null || podman inspect "$server" --format '{{.State.Healthcheck.Status}}')" = healthy ] ||
    fail "the container is not reported healthy"
check "podman healthcheck run: healthy"
unused=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
podman exec --env CTXFY_PORT="$unused" "$server" python /opt/ctxfy/healthcheck.py >/dev/null 2>&1 &&
    fail "the health check passed with nothing listening"
check "the health check command fails when nothing answers"

step "graceful stop (SIGTERM)"
t0=$(date +%s)
podman stop --time 30 "$server" >/dev/null
elapsed=$(($(date +%s) - t0))
exit_code=$(podman inspect "$server" --format '{{.State.ExitCode}}')
[ "$exit_code" = 0 ] || fail "exit code $exit_code after SIGTERM"
[ "$elapsed" -lt 30 ] || fail "SIGTERM did not stop it: podman waited the full 30 s"
check "SIGTERM: exit code 0 after ${elapsed}s"

podman logs "$server" >"$work/stdout.log" 2>"$work/stderr.log"
python3 - "$work/stdout.log" <<'EOF' || fail "the logs are not one JSON object per line with request lines"
import json, sys
lines = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
events = {line.get("event") for line in lines}
assert {"mcp.request", "http.request"} <= events, events
EOF
if grep -qF "$(printf '%s' "$user_key" | cut -d_ -f3)" "$work/stdout.log" "$work/stderr.log" ||
    grep -qF "$(printf '%s' "$admin_key" | cut -d_ -f3)" "$work/stdout.log" "$work/stderr.log"; then
    fail "a key secret appears in the container's logs"
fi
check "logs: JSON lines with mcp.request and http.request, no key secret"
