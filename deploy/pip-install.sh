#!/bin/sh
# pip install into the image's environment (/opt/moviepipe), trusting extra CA certificates if the build
# was given them (builds behind a TLS-inspecting proxy): the build secret `ca` (a PEM bundle), or the PEM
# text in the build argument EXTRA_CA_CERTS. Runs in build stages only; the bundle is not kept.
set -eu
if [ -s /run/secrets/ca ]; then
  export PIP_CERT=/run/secrets/ca
elif [ -n "${EXTRA_CA_CERTS:-}" ]; then
  { cat /etc/ssl/certs/ca-certificates.crt; printf '%s\n' "$EXTRA_CA_CERTS"; } > /tmp/ca.pem
  export PIP_CERT=/tmp/ca.pem
fi
/opt/moviepipe/bin/pip install --no-cache-dir --disable-pip-version-check "$@"
rm -f /tmp/ca.pem
find /opt/moviepipe -name __pycache__ -prune -exec rm -rf {} +
