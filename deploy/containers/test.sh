#!/usr/bin/env bash
# make test-containers: build moviepipe's images with podman, run the compose stack through docker-compose
# pointed at podman's Docker-compatible socket, push one IMDb extract through it end to end, check that it
# reconciled, and tear everything down. Any step that cannot run here fails, saying which and why.
set -euo pipefail
cd "$(dirname "$0")/../.."

STEP="starting"
fail() { echo "test-containers FAILED at step '$STEP': $*" >&2; exit 1; }
trap 'rc=$?; [ $rc -ne 0 ] && echo "test-containers FAILED at step '"'"'$STEP'"'"' (exit $rc)" >&2; cleanup; exit $rc' EXIT

WORK="$(mktemp -d /tmp/moviepipe-containers.XXXXXX)"
SOCKET="$WORK/podman.sock"
PROJECT="moviepipe-containers"
BASE="localhost/moviepipe-python:bookworm"
EXTRA_CA_DIR="${MOVIEPIPE_BUILD_CA_DIR:-/usr/local/share/ca-certificates}"
STARTED=$(date +%s)
SERVICE_PID=""
HEALTH_PID=""

cleanup() {
  set +e
  if [ -n "$SERVICE_PID" ]; then
    DOCKER_HOST="unix://$SOCKET" docker-compose -p "$PROJECT" down -v --remove-orphans >/dev/null 2>&1
    kill "$SERVICE_PID" 2>/dev/null; wait "$SERVICE_PID" 2>/dev/null
  fi
  [ -n "$HEALTH_PID" ] && kill "$HEALTH_PID" 2>/dev/null
  podman --runtime runc pod rm -f -a >/dev/null 2>&1
  podman --runtime runc rm -f -a >/dev/null 2>&1
  rm -rf "$WORK"
}

STEP="tools"
for tool in podman debootstrap docker-compose runc curl; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (apt-get install podman debootstrap docker-compose runc curl)"
done
# crun (podman's default runtime) fails on this host's cgroups and rlimits; runc with fixed ulimits works.
cat > "$WORK/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
CONF
export CONTAINERS_CONF="$WORK/containers.conf"

STEP="base image"
if ! podman image exists "$BASE"; then
  # No registry here: a Debian bookworm base from debootstrap, plus the distribution's Python 3.11.
  if ! podman image exists localhost/debian-minbase:bookworm; then
    debootstrap --variant=minbase bookworm "$WORK/rootfs" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1 \
      || fail "debootstrap could not build a bookworm root (see its log): $(tail -3 "$WORK/debootstrap.log")"
    tar -C "$WORK/rootfs" -c . | podman import - localhost/debian-minbase:bookworm >/dev/null
    rm -rf "$WORK/rootfs"
  fi
  printf 'FROM localhost/debian-minbase:bookworm\nRUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates && rm -rf /var/lib/apt/lists/*\n' \
    > "$WORK/Containerfile.base"
  podman build -q -t "$BASE" -f "$WORK/Containerfile.base" "$WORK" >/dev/null
fi

STEP="images"
# This machine's extra CAs (its TLS-inspecting proxy) as a build argument: the build stage only, cached.
extra_ca="$(cat "$EXTRA_CA_DIR"/*.crt 2>/dev/null || true)"
BUILD_STARTED=$(date +%s)
for target in app spark; do  # docker format: OCI images drop HEALTHCHECK
  podman build -q --format docker --build-arg "BASE_IMAGE=$BASE" --build-arg "EXTRA_CA_CERTS=$extra_ca" \
    -f deploy/Dockerfile --target "$target" -t "localhost/moviepipe:$target" . >"$WORK/build-$target.log" 2>&1 \
    || fail "building moviepipe:$target failed: $(tail -5 "$WORK/build-$target.log")"
done
for target in app spark; do
  health=$(podman image inspect --format '{{.Config.Healthcheck}}' "localhost/moviepipe:$target")
  [ -n "$health" ] && [ "$health" != "<nil>" ] || fail "image moviepipe:$target has no HEALTHCHECK"
done
BUILD_SECONDS=$(( $(date +%s) - BUILD_STARTED ))
for target in app spark; do
  user=$(podman image inspect --format '{{.Config.User}}' "localhost/moviepipe:$target")
  [ "$user" = "moviepipe" ] || fail "image moviepipe:$target runs as '$user', not the moviepipe user"
  podman run --rm "localhost/moviepipe:$target" nothing >/dev/null 2>&1 && fail "the entrypoint accepted an unknown component"
done
podman run --rm localhost/moviepipe:spark moviepipe --help >/dev/null || fail "the spark image's entrypoint does not start moviepipe"
podman run --rm --entrypoint java localhost/moviepipe:spark -version >/dev/null 2>&1 || fail "the spark image has no Java"
podman run --rm --entrypoint sh localhost/moviepipe:app -c 'command -v java' >/dev/null 2>&1 && fail "the app image carries Java"

STEP="compose up"
podman system service --time=0 "unix://$SOCKET" >"$WORK/podman-service.log" 2>&1 &
SERVICE_PID=$!
for _ in $(seq 50); do [ -S "$SOCKET" ] && break; sleep 0.2; done
[ -S "$SOCKET" ] || fail "podman system service did not open $SOCKET"
export DOCKER_HOST="unix://$SOCKET"
# Without systemd, podman runs health checks only when asked: ask every 2 s while compose waits on them.
( set +e  # a check that fails (a container still starting) must not end the loop
  while true; do
    for id in $(podman ps -q 2>/dev/null); do podman healthcheck run "$id" >/dev/null 2>&1; done
    sleep 2
  done ) &
HEALTH_PID=$!
UP_STARTED=$(date +%s)
docker-compose -p "$PROJECT" up -d --no-build >"$WORK/compose.log" 2>&1 \
  || fail "docker-compose up failed: $(tail -5 "$WORK/compose.log")"
for _ in $(seq 120); do
  curl -fsS http://127.0.0.1:8001/health >/dev/null 2>&1 && break
  sleep 1
done
curl -fsS http://127.0.0.1:8001/health >/dev/null || fail "the extractor container never answered /health"
UP_SECONDS=$(( $(date +%s) - UP_STARTED ))

STEP="extract"
answer=$(curl -fsS -X POST http://127.0.0.1:8001/extracts -H 'content-type: application/json' -d '{"source":"imdb"}') \
  || fail "POST /extracts was refused"
extract_id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["extract_id"])' <<<"$answer")
EXTRACT_STARTED=$(date +%s)
status=""
for _ in $(seq 300); do
  progress=$(curl -fsS "http://127.0.0.1:8001/extracts/$extract_id" || true)
  status=$(python3 -c 'import json,sys; print(json.load(sys.stdin).get("status",""))' <<<"${progress:-{\}}" 2>/dev/null || true)
  case "$status" in loaded|failed|quarantined|dead_lettered) break ;; esac
  sleep 2
done
[ "$status" = "loaded" ] || fail "extract $extract_id ended '$status', not loaded: $progress"
python3 - "$progress" <<'PY' || fail "extract $extract_id did not reconcile"
import json, sys
extract = json.loads(sys.argv[1])
loader = extract["stages"]["loader"]
counts = loader.get("counts", {})
print(f"extract {extract['extract_id']}: {counts}")
assert loader.get("reconciliation") == "RECONCILED", loader
assert counts["loaded"] + counts["rejected"] + counts["duplicates"] == counts["extracted"] > 0, counts
PY

STEP="report"
EXTRACT_SECONDS=$(( $(date +%s) - EXTRACT_STARTED ))
APP_BYTES=$(podman image inspect --format '{{.Size}}' localhost/moviepipe:app)
SPARK_BYTES=$(podman image inspect --format '{{.Size}}' localhost/moviepipe:spark)
TOTAL_SECONDS=$(( $(date +%s) - STARTED ))
echo "images: moviepipe:app ${APP_BYTES} bytes, moviepipe:spark ${SPARK_BYTES} bytes; built in ${BUILD_SECONDS}s"
echo "test-containers passed in ${TOTAL_SECONDS}s: compose up ${UP_SECONDS}s, extract ${EXTRACT_SECONDS}s"
if [ -n "${MOVIEPIPE_CONTAINERS_REPORT:-}" ]; then  # moviepipe bench --only containers
  printf '{"total_seconds": %s, "build_seconds": %s, "up_seconds": %s, "extract_seconds": %s, "app_image_bytes": %s, "spark_image_bytes": %s, "extract_id": "%s"}\n' \
    "$TOTAL_SECONDS" "$BUILD_SECONDS" "$UP_SECONDS" "$EXTRACT_SECONDS" "$APP_BYTES" "$SPARK_BYTES" "$extract_id" \
    > "$MOVIEPIPE_CONTAINERS_REPORT"
fi
