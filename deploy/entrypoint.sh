#!/bin/sh
# The one entrypoint of moviepipe's images: the argument names the component to run.
set -eu
component="${1:-}"
[ $# -gt 0 ] && shift
port() { eval "echo \${MOVIEPIPE_$(echo "$1" | tr a-z A-Z)_PORT:-$2}"; }
serve() {  # serve NAME DEFAULT_PORT [uvicorn options]: a FastAPI app under uvicorn
  name="$1"
  p="$(port "$1" "$2")"
  shift 2
  export MOVIEPIPE_HEALTH_URL="http://127.0.0.1:${p}/health"
  exec uvicorn "services.${name}.app:app" --host "${MOVIEPIPE_HOST:-0.0.0.0}" --port "$p" "$@"
}
case "$component" in
  extractor) serve extractor 8001 "$@" ;;
  unzipper) serve unzipper 8002 "$@" ;;
  transformer) serve transformer 8003 "$@" ;;
  loader) serve loader 8004 "$@" ;;
  dashboard) serve dashboard 8000 "$@" ;;
  moto)
    p="$(port moto 4566)"
    export MOVIEPIPE_HEALTH_URL="http://127.0.0.1:${p}/moto-api/"
    exec python3 -m moto.server -H 0.0.0.0 -p "$p" "$@" ;;
  warehouse)
    p="$(port warehouse 8090)"
    export MOVIEPIPE_HEALTH_URL="http://127.0.0.1:${p}/health"
    exec python3 -m moviepipe.warehouse --host 0.0.0.0 --port "$p" \
      --data-dir "${MOVIEPIPE_HOME}/warehouse" ${AWS_ENDPOINT_URL:+--aws-endpoint-url "$AWS_ENDPOINT_URL"} "$@" ;;
  provision) exec python3 -m deploy.provision "$@" ;;
  moviepipe) exec moviepipe "$@" ;;
  *)
    echo "usage: moviepipe-entrypoint extractor|unzipper|transformer|loader|dashboard|moto|warehouse|provision|moviepipe [args]" >&2
    exit 64 ;;
esac
