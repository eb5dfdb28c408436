#!/usr/bin/env bash
# The Debian packages the test suite uses, installed when missing:
#   mosquitto  the MQTT broker of the live-network tests
#   openssl    certificates and signatures are checked by the real openssl
#   chromium   the trace page is rendered in a headless browser
#   chromium-driver  Selenium drives that browser in the gateway console tests
#   nodejs     runs the bench's driver of a JavaScript peer simulator (tests/test_bench_peer.py)
# Idempotent: does nothing when all of them are present.
set -euo pipefail
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v node >/dev/null 2>&1 || need+=(nodejs)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "missing Debian packages: ${need[*]} (run as root, or: apt-get install ${need[*]})" >&2
    exit 1
  fi
else
  SUDO=
fi
echo "installing Debian packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
