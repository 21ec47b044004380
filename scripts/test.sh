#!/usr/bin/env bash
# Runs every check and test Gatehouse has, on a fresh Debian 12 machine or a developer's.
# Installs what the tests need first (squidGuard, curl, openssl, Chromium, PostgreSQL,
# aiosmtpd, Node.js with playwright-core and oidc-provider, Prometheus's promtool, OpenLDAP's slapd, radclient,
# MIT Kerberos's KDC and client, and libkrb5-dev + libclang-dev to build the Kerberos feature).
set -euo pipefail
cd "$(dirname "$0")/.."

# squidGuard: the oracle of tests/squidguard_differential.rs; curl: the client of tests/proxy.rs;
# openssl: the TLS origin server of tests/proxy.rs; chromium and certutil (libnss3-tools):
# the browser test of tests/proxy.rs.
missing=()
command -v squidGuard >/dev/null 2>&1 || missing+=(squidguard)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v certutil >/dev/null 2>&1 || missing+=(libnss3-tools)
# PostgreSQL: the second event store back end (safeguarding/tests/store.rs starts its own
# throw-away cluster on 127.0.0.1); pip: to install the SMTP server below.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
# Node.js and npm: playwright-core drives Chromium through the admin page (tests/admin.rs);
# promtool (Debian's prometheus package) parses /metrics.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v pip3 >/dev/null 2>&1 || python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
# libseccomp's Python binding and systemd-analyze: tests/bypass.rs runs the proxy under the
# system-call filter of deploy/gatehouse.service; unshare (util-linux) makes its private
# network namespace.
/usr/bin/python3 -c "import seccomp" >/dev/null 2>&1 || missing+=(python3-seccomp)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
# OpenLDAP's slapd (and slapadd) and freeradius-utils' radclient: the school directory and
# the Wi-Fi controller's accounting of tests/identity.rs.
[ -x /usr/sbin/slapd ] || missing+=(slapd)
command -v radclient >/dev/null 2>&1 || missing+=(freeradius-utils)
# Kerberos single sign-on (the `kerberos` feature): MIT's GSSAPI headers and libclang to
# build it; a KDC, kadmin.local and kinit for tests/kerberos.rs.
[ -f /usr/include/gssapi/gssapi.h ] || missing+=(libkrb5-dev)
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || missing+=(libclang-dev)
[ -x /usr/sbin/krb5kdc ] || missing+=(krb5-kdc)
[ -x /usr/sbin/kadmin.local ] || missing+=(krb5-admin-server)
command -v kinit >/dev/null 2>&1 || missing+=(krb5-user)
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing ${missing[*]}..."
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Debian starts a packaged PostgreSQL on install; the tests use their own clusters.
# aiosmtpd: the real SMTP server that receives alerts and digests in the tests.
if ! python3 -c "import aiosmtpd" >/dev/null 2>&1; then
  echo "Installing aiosmtpd..."
  python3 -m pip install -q aiosmtpd 2>/dev/null || python3 -m pip install -q --break-system-packages aiosmtpd
fi

# playwright-core (no browser download: the tests use Debian's chromium) and oidc-provider
# (the school's OpenID provider of tests/signin.rs).
if [ ! -d tests/e2e/node_modules/playwright-core ] || [ ! -d tests/e2e/node_modules/oidc-provider ]; then
  echo "Installing playwright-core and oidc-provider..."
  (cd tests/e2e && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --silent)
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --features gatehouse/kerberos -- -D warnings
cargo test --workspace --features gatehouse/kerberos
