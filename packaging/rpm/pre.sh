# eventflow: the system user, before the files that name it are installed.
getent group eventflow >/dev/null || groupadd -r eventflow
getent passwd eventflow >/dev/null || \
    useradd -r -g eventflow -d /var/lib/eventflow -s /sbin/nologin -c "EventFlow event processing host" eventflow
exit 0
