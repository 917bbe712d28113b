if [ ! -d /var/lib/eventflow ]; then
    mkdir -m 0750 /var/lib/eventflow && chown eventflow:eventflow /var/lib/eventflow
fi
if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null 2>&1 || true
    # $1 is 2 or more on an upgrade: restart a running service on the new binary.
    [ "$1" -ge 2 ] && systemctl try-restart eventflow.service >/dev/null 2>&1 || true
fi
exit 0
