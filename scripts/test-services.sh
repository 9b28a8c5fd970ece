#!/usr/bin/env bash
# Start the services the test suite uses, where we can. Tests that need a service skip with a
# reason when it is absent; under CI=true a skip of that kind is a failure (see tests/conftest.py),
# so CI must get them all from here.
set -u
have() { command -v "$1" >/dev/null 2>&1; }
is_root() { [ "$(id -u)" = 0 ]; }

apt_install() {
  is_root && have apt-get || return 0
  if [ ! -f /tmp/.postroom-apt-updated ]; then
    apt-get update -qq >/dev/null 2>&1 && touch /tmp/.postroom-apt-updated
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 \
    || echo "services: could not install $*" >&2
}

need=()
have swaks || need+=(swaks)
have /usr/sbin/smtp-source || [ -x /usr/sbin/smtp-source ] || need+=(postfix)
have chromium || need+=(chromium chromium-driver)
# SpamAssassin's spamd for the spam check (tests/integration/test_spamassassin.py starts its
# own on a loopback port).
[ -x /usr/sbin/spamd ] || need+=(spamassassin spamd)
if [ "${CI:-}" = true ] && [ ${#need[@]} -gt 0 ]; then
  apt_install "${need[@]}"
fi

# PostgreSQL on 127.0.0.1:5432 (this machine's kind starts it; start it again if it stopped).
if have pg_isready && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  if have pg_ctlcluster; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
fi
exit 0
