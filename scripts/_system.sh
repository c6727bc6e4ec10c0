# Sourced by scripts/test: the Debian packages the suites need. They are never
# skipped, so what is missing is installed here (the browser test drives
# Debian's Chromium through chromedriver, since Selenium's own download is not
# reachable; the Celery and Redis-store suites start their own redis-server;
# the monitoring suite checks the alerting rules with promtool and scrapes a
# real app with a Prometheus server, both from Debian's `prometheus`).
missing=()
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    missing+=(chromium chromium-driver)
fi
if ! command -v redis-server >/dev/null; then
    missing+=(redis-server)
fi
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
    missing+=(prometheus)
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "bento-track: installing ${missing[*]} for the test suite" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        SUDO="sudo"
    fi
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${missing[@]}"
fi
