#!/usr/bin/env bash
# Shared setup for tests/njs/inner.sh and bench/inner.sh, sourced inside the
# disposable container: packages, fixtures (keys, JWKS, JWTs), a test CA, a
# loopback IdP (a second nginx serving discovery + JWKS over TLS) and a
# loopback DNS for idp.test (ngx.fetch resolves only through nginx's resolver).
# Expects SRC; honours EXTRA_PACKAGES. Defines T, FX, say, die. Sourced again in the same
# container (run.sh sets up before rendering, inner.sh after), it only defines them.
T=/opt/mcpsec-test
FX=$T/fx
ISSUER=https://idp.test:8443/realms/t
AUDIENCE=https://mcp.test/mcp

say() { printf '== %s\n' "$*"; }
die() { printf 'not ok - setup: %s\n' "$*"; exit 1; }
[ -e "$T/setup.done" ] && return 0

say "installing nginx, njs, node, openssl, dnsmasq, pytest (apt)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/tmp/apt.log 2>&1 || die "apt-get update (see /tmp/apt.log)"
read -r -a extra_packages <<<"${EXTRA_PACKAGES:-}"
apt-get install -y -qq --no-install-recommends nginx libnginx-mod-http-js njs nodejs openssl \
    python3 python3-passlib python3-pytest dnsmasq-base "${extra_packages[@]}" >>/tmp/apt.log 2>&1 || die "apt-get install"
systemctl stop nginx >/dev/null 2>&1; systemctl disable -q nginx >/dev/null 2>&1
rm -f /etc/nginx/sites-enabled/default
# Two workers, as on a 2-core host, whatever the container's CPU count: the concurrency cases
# must cross workers (Debian's nginx.conf, not the role's: the role leaves it as it is).
sed -i 's/^worker_processes .*/worker_processes 2;/' /etc/nginx/nginx.conf
printf 'versions: %s, njs %s, node %s\n' "$(nginx -v 2>&1)" "$(njs -v)" "$(node -v)"

say "fixtures: keys, JWKS, tokens, test CA, IdP"
mkdir -p "$FX" "$T/idp"
node "$SRC/tests/njs/gen_fixtures.js" "$FX" "$ISSUER" "$AUDIENCE" || die "gen_fixtures.js"
cp "$FX/jwks.json" "$FX/openid-configuration" "$T/idp/"
(
  cd "$FX" &&
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=mcpsec-test-ca \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign &&
  openssl req -newkey rsa:2048 -nodes -keyout idp.key -out idp.csr -subj /CN=idp.test &&
  printf 'subjectAltName=DNS:idp.test\nextendedKeyUsage=serverAuth\n' >idp.ext &&
  openssl x509 -req -in idp.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out idp.pem -days 2 -extfile idp.ext
) >/tmp/openssl.log 2>&1 || die "openssl (see /tmp/openssl.log)"
cat >"$T/idp.conf" <<CONF
worker_processes 1;
pid /run/mcpsec-idp.pid;
error_log /var/log/mcpsec-idp-error.log;
events {}
http {
    access_log /var/log/mcpsec-idp-access.log;
    server {
        listen 127.0.0.1:8443 ssl;
        server_name idp.test;
        ssl_certificate $FX/idp.pem;
        ssl_certificate_key $FX/idp.key;
        default_type application/json;
        location = /realms/t/.well-known/openid-configuration { alias $T/idp/openid-configuration; }
        location = /realms/t/protocol/openid-connect/certs { alias $T/idp/jwks.json; }
    }
}
CONF
nginx -c "$T/idp.conf" || die "IdP nginx"
# ngx.fetch resolves through nginx's resolver, never /etc/hosts: a loopback DNS for idp.test.
dnsmasq --no-resolv --no-hosts --listen-address=127.0.0.153 --bind-interfaces --port=53 \
    --address=/idp.test/127.0.0.1 --user=nobody --group=nogroup --pid-file=/run/mcpsec-dnsmasq.pid || die "dnsmasq"
touch "$T/setup.done"
