#!/usr/bin/env bash
# Makes throw-away certificates for trying manifoldd with TLS, as
# secure.textpb expects them: a CA of its own and a server certificate for
# localhost and 127.0.0.1 that it signed, valid for 30 days.
#
#   examples/tcp_broker/make-test-certs.sh [DIR]    # DIR defaults to ./certs
#
# Writes DIR/ca.pem (give it to clients: curl --cacert, manifold --tls_ca,
# nats.js tls.caFile), DIR/ca.key (keep it, or delete it: it only signs more
# certificates), DIR/server.pem and DIR/server.key (manifoldd's tls_cert
# and tls_key). Keys are P-256 and unencrypted, readable by their owner
# only. For a real deployment use certificates from your own CA, for the
# names clients connect to. Needs the `openssl` command.
set -euo pipefail

dir="${1:-certs}"
mkdir -p "$dir"
cd "$dir"
umask 077
step() {
  if ! out="$("$@" 2>&1)"; then
    echo "make-test-certs.sh: $* failed: $out" >&2
    exit 1
  fi
}
step openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout ca.key -out ca.pem -days 30 -subj "/CN=manifold example CA"
step openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout server.key -out server.csr -subj /CN=localhost
echo "subjectAltName=DNS:localhost,IP:127.0.0.1" >server.ext
step openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key \
  -CAcreateserial -days 30 -extfile server.ext -out server.pem
rm -f server.csr server.ext ca.srl
chmod 644 ca.pem server.pem
echo "wrote $PWD/{ca.pem,ca.key,server.pem,server.key}"
