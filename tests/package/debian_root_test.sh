#!/usr/bin/env bash
# The packages as a Debian user meets them (issue 15): scripts/package makes
# them, their file lists match packaging/expected/, and in a clean Debian 12
# root made now with mmdebstrap (from Debian's archive) the .deb installs with
# apt-get, serves its shipped config as the eventflow user, passes
# systemd-analyze, boots as a unit under systemd-nspawn, builds and loads a new
# plugin with eventflow-dev, upgrades keeping config and data, and is removed
# and purged. The .rpm installs with `rpm -i --root` and holds the same files.
#
# usage: debian_root_test.sh BUILD_DIR SOURCE_DIR. Needs root (chroot, mount,
# unshare) and Debian's archive; exits 77 (skipped) only when not root.
set -euo pipefail
export LC_ALL=C  # one sort order for every file list compared
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root for chroot, mount and unshare"; exit 77; }
for tool in mmdebstrap rpm dpkg-deb sqlite3 curl unshare chroot systemd-analyze; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is missing (scripts/bootstrap installs it)"; exit 1; }
done

work=$(mktemp -d /tmp/eventflow-debroot.XXXXXX)
root="$work/root"
started=$SECONDS
mark=$SECONDS
ok=0
umount_root() {
  for m in "$root/dev" "$root/proc"; do
    if mountpoint -q "$m" 2>/dev/null; then umount "$m" || umount -l "$m"; fi
  done
}
cleanup() {
  umount_root
  if [ "$ok" = 1 ]; then rm -rf "$work"; else echo "kept for inspection: $work"; fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; exit 1; }
step() {
  echo "ok - $1 ($((SECONDS - mark)) s)"
  mark=$SECONDS
}
in_root() {
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive "$@"
}
as_eventflow() {
  chroot --userspec="$uid:$gid" "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/var/lib/eventflow LANG=C.UTF-8 "$@"
}
apt_in_root() {
  in_root apt-get -y -q -o Dpkg::Use-Pty=0 "$@" >"$work/apt.log" 2>&1 || { cat "$work/apt.log"; fail "apt-get $*"; }
}
mount_root() {
  mkdir -p "$root/proc" "$root/dev"
  mount --bind /proc "$root/proc"
  mount --bind /dev "$root/dev"
}

# --- 1. scripts/package, twice: this version, then the same build as a higher one.
EVENTFLOW_BUILD_DIR="$build" EVENTFLOW_PACKAGE_DIR="$work/v1" "$src/scripts/package" >"$work/package.log" 2>&1 ||
  { cat "$work/package.log"; fail "scripts/package"; }
v1=$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")$/\1/p' "$build/CPackConfig.cmake")
v2="$v1.1"
EVENTFLOW_BUILD_DIR="$build" EVENTFLOW_PACKAGE_DIR="$work/v2" EVENTFLOW_PACKAGE_VERSION="$v2" EVENTFLOW_PACKAGE_LINT=0 \
  "$src/scripts/package" >"$work/package2.log" 2>&1 || { cat "$work/package2.log"; fail "scripts/package $v2"; }
refused=$(EVENTFLOW_PACKAGE_VERSION='1.0-2 bad' "$src/scripts/package" 2>&1) && fail "a bad version was packaged"
grep -q "EVENTFLOW_PACKAGE_VERSION '1.0-2 bad' is not a package version" <<<"$refused" || fail "bad version: $refused"
arch=$(dpkg --print-architecture)
deb="$work/v1/eventflow_${v1}_$arch.deb"
deb_dev="$work/v1/eventflow-dev_${v1}_$arch.deb"
rpm_rt="$work/v1/eventflow-$v1-1.$(uname -m).rpm"
rpm_dev="$work/v1/eventflow-devel-$v1-1.noarch.rpm"
step "scripts/package made $v1 and $v2, lintian and rpmlint clean"

# --- 2. File lists: the .debs against packaging/expected, each .rpm against its .deb.
deb_list() { dpkg-deb -c "$1" | awk '{ sub(/^\./, "", $6); print $1, $2, $6 }'; }
deb_files() { dpkg-deb -c "$1" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }' | sort; }
for pair in "$deb:eventflow" "$deb_dev:eventflow-dev"; do
  diff -u "$src/packaging/expected/${pair##*:}.list" <(deb_list "${pair%:*}") ||
    fail "${pair##*:}: the package's files differ from packaging/expected/${pair##*:}.list"
done
rpm_root="$work/rpmroot"
mkdir -p "$rpm_root"
# No scriptlets and no dependency check: the folder is not a system, only
# where the files land (the requirements are checked in the Debian root below).
# (Debian's rpm warns that it is not Debian's package manager: to the log.)
rpm -i --root "$rpm_root" --nodeps --noscripts "$rpm_rt" "$rpm_dev" 2>"$work/rpm.log" || { cat "$work/rpm.log"; fail "rpm -i --root"; }
[ "$(rpm -q --root "$rpm_root" eventflow)" = "eventflow-$v1-1.$(uname -m)" ] || fail "rpm -q eventflow"
diff -u <({ deb_files "$deb"; deb_files "$deb_dev"; } | sort) \
  <(cd "$rpm_root" && find . \( -type f -o -type l \) ! -path './var/lib/rpm/*' ! -path './root/.rpmdb/*' |
    sed 's/^\.//' | sort) || fail "the rpms install other files than the debs hold"
diff <(deb_files "$deb") <(rpm -qlp "$rpm_rt" | while read -r f; do [ -d "$rpm_root$f" ] || echo "$f"; done | sort) ||
  fail "rpm -qlp eventflow differs from the .deb"
rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpm_rt" | grep -q '^cn /etc/eventflow/eventflow.yaml$' ||
  fail "eventflow.yaml is not %config(noreplace) in the rpm"
rpm -qpR "$rpm_dev" | grep -qx "eventflow = $v1" || fail "eventflow-devel does not require eventflow = $v1"
step "file lists match packaging/expected and the rpms match the debs"

# --- 3. A clean Debian 12 root, fresh each run.
mmdebstrap --quiet --variant=apt bookworm "$root" >"$work/mmdebstrap.log" 2>&1 ||
  { cat "$work/mmdebstrap.log"; fail "mmdebstrap"; }
step "mmdebstrap --variant=apt bookworm"
mount_root
apt_in_root update
mkdir -p "$root/tmp/pkgs"
cp -r "$work/v1" "$work/v2" "$root/tmp/pkgs/"
apt_in_root install "/tmp/pkgs/v1/$(basename "$deb")"
step "apt-get install ./eventflow_${v1}_$arch.deb"

# --- 4. What the install made: the user, the state folder, the conffiles.
uid=$(in_root id -u eventflow) || fail "no eventflow user"
gid=$(in_root id -g eventflow)
[ "$uid" -lt 1000 ] || fail "eventflow is not a system user (uid $uid)"
[ "$(in_root getent passwd eventflow | cut -d: -f7)" = /usr/sbin/nologin ] || fail "eventflow has a login shell"
[ "$(in_root stat -c '%a %U %G' /var/lib/eventflow)" = "750 eventflow eventflow" ] ||
  fail "/var/lib/eventflow is $(in_root stat -c '%a %U %G' /var/lib/eventflow)"
in_root dpkg-query -W -f='${Conffiles}\n' eventflow | grep -q ' /etc/eventflow/eventflow.yaml ' ||
  fail "eventflow.yaml is not a conffile"
in_root dpkg-query -W -f='${Conffiles}\n' eventflow | grep -q ' /etc/eventflow/pipelines/purchases.yaml ' ||
  fail "the pipelines are not conffiles"
# rpm's automatic requires name sonames; each must be a library this Debian has.
libraries=$(in_root ldconfig -p)
while read -r req; do
  case $req in
    lib*'()(64bit)') soname=${req%%()*}
      grep -q "^[[:space:]]$soname (" <<<"$libraries" || fail "rpm requires $req, which Debian 12 has not" ;;
    /*) [ -e "$root$req" ] || fail "rpm requires $req, which is not there" ;;
  esac
done < <(rpm -qpR "$rpm_rt")
validated=$(as_eventflow /usr/bin/eventflow validate) || fail "eventflow validate as eventflow: $validated"
grep -q "3 pipelines, 15 plugins" <<<"$validated" || fail "validate: $validated"
step "eventflow user, /var/lib/eventflow 0750, conffiles, rpm requirements, validate"

# --- 4b. The man page renders without warnings and names every command; the
# bash completion offers the subcommands and every flag each --help names.
man_warnings=$(MANWIDTH=80 man --warnings -l "$root/usr/share/man/man1/eventflow.1.gz" 2>&1 >/dev/null)
[ -z "$man_warnings" ] || fail "man eventflow: $man_warnings"
commands=$(in_root eventflow help | sed -n 's/^  \([a-z]*\) .*/\1/p' | sort -u)
for c in $commands; do
  zcat "$root/usr/share/man/man1/eventflow.1.gz" | grep -q "^\.B eventflow $c" || fail "man eventflow has no '$c'"
done
apt_in_root install --no-install-recommends bash-completion
cp "$src/tests/package/complete.sh" "$root/tmp/complete.sh"
completes() { in_root bash /tmp/complete.sh "$@"; }
[ "$(completes eventflow '')" = "serve validate test dlq plugins plugin keys produce reload version help" ] ||
  fail "completion of commands: $(completes eventflow '')"
[ "$(completes eventflow serve --role '')" = "all api worker" ] || fail "completion of --role"
[ "$(completes eventflow plugin new demo --kind '')" = "validator enricher sink" ] || fail "completion of --kind"
for c in serve validate test "dlq list" "dlq show" "dlq replay" "dlq purge" "plugins list" "plugins show" "plugin new" \
  "keys new" produce reload; do
  read -ra words <<<"eventflow $c"
  offered=" $(completes "${words[@]}" --) "
  help=$(in_root eventflow "${words[@]:1}" --help 2>&1 || true)
  # dlq and plugins share one help page: their usage lines for this subcommand.
  if [ "${c%% *}" = dlq ] || [ "${c%% *}" = plugins ]; then
    help=$(in_root eventflow "${c%% *}" --help 2>&1 | grep -E "^(usage:| ) +eventflow $c( |$)" || true)
  fi
  for flag in $(grep -oE -- '--[a-z][a-z-]+' <<<"$help" | sort -u); do
    [ "$flag" = --help ] && continue
    [[ $offered == *" $flag "* ]] || fail "completion of 'eventflow $c --' lacks $flag (its --help names it): $offered"
  done
done
step "man page renders and names every command; bash completion offers commands and every --help flag"

# --- 5. serve on the shipped config, in a network namespace of its own
# (127.0.0.1:8000 is the shipped port, maybe in use on this machine).
event_id=$(cat /proc/sys/kernel/random/uuid)
export root uid gid event_id work
unshare -n bash -c '
  set -euo pipefail
  ip link set lo up
  chroot --userspec="$uid:$gid" "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/var/lib/eventflow \
    /usr/bin/eventflow serve >"$work/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do
    curl -fs http://127.0.0.1:8000/health/ready >/dev/null && break
    kill -0 $pid 2>/dev/null || { echo "serve exited"; exit 1; }
    sleep 0.1
  done
  answer=$(curl -s -w " %{http_code}" -X POST http://127.0.0.1:8000/events -H "Content-Type: application/json" \
    -d "{\"event_id\":\"$event_id\",\"event_type\":\"purchase\",\"user_id\":\"u-1\",\"properties\":{\"amount\":1299.5,\"currency\":\"USD\"}}")
  [ "${answer##* }" = 202 ] || { echo "POST answered $answer"; exit 1; }
  db="$root/var/lib/eventflow/eventflow.db"
  for _ in $(seq 300); do
    [ "$(sqlite3 "file:$db?mode=ro" "SELECT COUNT(*) FROM processed_events WHERE event_id = '"'"'$event_id'"'"'" 2>/dev/null)" = 1 ] && break
    sleep 0.1
  done
  kill -TERM $pid
  wait $pid
' || { cat "$work/serve.log"; fail "eventflow serve on the shipped config"; }
processed() { sqlite3 "file:$root/var/lib/eventflow/eventflow.db?mode=ro" "SELECT COUNT(*) FROM processed_events WHERE event_id = '$event_id'"; }
[ "$(processed)" = 1 ] || { cat "$work/serve.log"; fail "the event did not reach processed_events"; }
[ -z "$(in_root find /var/lib/eventflow ! -user eventflow)" ] || fail "files in /var/lib/eventflow not owned by eventflow"
step "serve as eventflow: a POST reached processed_events in /var/lib/eventflow, SIGTERM exit 0"

# --- 6. The unit, checked offline.
apt_in_root install --no-install-recommends systemd
systemd-analyze verify --man=no --root="$root" eventflow.service || fail "systemd-analyze verify"
exposure=$(systemd-analyze security --offline=true --root="$root" eventflow.service 2>&1 |
  sed -n 's/.*Overall exposure level for eventflow.service: \([0-9.]*\).*/\1/p')
awk -v e="$exposure" 'BEGIN { exit !(e != "" && e < 2.0) }' || fail "exposure '$exposure' is not below 2.0"
step "systemd-analyze verify passes; security exposure $exposure"

# --- 7. The unit, booted under systemd-nspawn: started, reloaded, stopped, in the journal.
if command -v systemd-nspawn >/dev/null; then
  cat >"$root/etc/systemd/system/eventflow-check.service" <<'EOF'
[Unit]
Description=starts eventflow.service, records what systemd says, powers off
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/bin/bash /usr/local/sbin/eventflow-check
ExecStartPost=/bin/systemctl poweroff
EOF
  mkdir -p "$root/usr/local/sbin"
  cat >"$root/usr/local/sbin/eventflow-check" <<EOF
out=/root/check.out
systemctl start eventflow.service; echo "start=\$?" >\$out
systemctl show -p ActiveState -p SubState -p StatusText -p WatchdogUSec -p User eventflow.service >>\$out
exec 3<>/dev/tcp/127.0.0.1/8000
printf 'GET /health/ready HTTP/1.0\r\n\r\n' >&3
echo "ready=\$(head -1 <&3)" >>\$out
systemctl reload eventflow.service; echo "reload=\$?" >>\$out
systemctl show -p ActiveState -p MainPID -p NRestarts eventflow.service >>\$out
systemctl stop eventflow.service; echo "stop=\$?" >>\$out
journalctl --no-pager -o cat -u eventflow.service >/root/journal.out
EOF
  ln -sf /etc/systemd/system/eventflow-check.service "$root/etc/systemd/system/multi-user.target.wants/"
  umount_root  # nspawn brings its own /proc and /dev
  timeout 180 systemd-nspawn -q --register=no --keep-unit --private-network -D "$root" -b >"$work/boot.log" 2>&1 ||
    { cat "$work/boot.log"; fail "systemd-nspawn boot"; }
  mount_root
  check=$(cat "$root/root/check.out") || { cat "$work/boot.log"; fail "the check unit did not run"; }
  for want in start=0 ActiveState=active SubState=running "StatusText=serving on 127.0.0.1:8000, role all" \
    WatchdogUSec=30s User=eventflow "ready=HTTP/1.1 200 OK" reload=0 NRestarts=0 stop=0; do
    grep -qxF "$want" <<<"$(tr -d '\r' <<<"$check")" || fail "under systemd: no '$want' in: $check"
  done
  grep -q '"message":"eventflow started"' "$root/root/journal.out" || fail "journal: $(cat "$root/root/journal.out")"
  # systemctl reload = SIGHUP = a reload; nothing changed on disk, so nothing is swapped.
  [ "$(grep -c '"message":"reload: nothing to swap","trigger":"sighup"' "$root/root/journal.out")" = 1 ] ||
    fail "reload: $(cat "$root/root/journal.out")"
  grep -q '"message":"eventflow stopped"' "$root/root/journal.out" || fail "journal: $(cat "$root/root/journal.out")"
  rm -f "$root/etc/systemd/system/multi-user.target.wants/eventflow-check.service"
  step "booted under systemd-nspawn: Type=notify ready, watchdog 30s, reload done once, stop clean, journal"
else
  echo "skip - systemd-nspawn is not installed (scripts/bootstrap installs systemd-container)"
fi

# --- 8. eventflow-dev: a new plugin builds with plain cmake and loads in the installed host.
apt_in_root install "/tmp/pkgs/v1/$(basename "$deb_dev")"
step "apt-get install ./eventflow-dev_${v1}_$arch.deb (with its recommends: cmake, g++, make)"
in_root bash -c 'cd /tmp && eventflow plugin new demo --kind enricher && cmake -S demo -B b && cmake --build b' \
  >"$work/demo.log" 2>&1 || { cat "$work/demo.log"; fail "plugin new demo + cmake"; }
grep -qx 'EventFlowPluginAPI_DIR:PATH=/usr/share/cmake/EventFlowPluginAPI' "$root/tmp/b/CMakeCache.txt" ||
  fail "the SDK did not come from /usr: $(grep EventFlowPluginAPI_DIR "$root/tmp/b/CMakeCache.txt")"
in_root ctest --test-dir /tmp/b --output-on-failure >"$work/demo-test.log" 2>&1 || { cat "$work/demo-test.log"; fail "demo's test"; }
printf 'plugins: { paths: [/usr/lib/eventflow/plugins, /tmp/b] }\n' >"$root/tmp/demo.yaml"
shown=$(in_root eventflow plugins show demo --config /tmp/demo.yaml) || fail "plugins show demo: $shown"
grep -q '^kind  *enricher$' <<<"$shown" || fail "plugins show demo: $shown"
step "plugin new demo --kind enricher: built, its test passed, loaded by the installed host"

# --- 9. Upgrade to the higher version: a changed config and the data stay.
in_root sed -i 's/^  level: info$/  level: debug/' /etc/eventflow/eventflow.yaml
grep -q '^  level: debug$' "$root/etc/eventflow/eventflow.yaml" || fail "could not change the config"
apt_in_root install "/tmp/pkgs/v2/eventflow_${v2}_$arch.deb" "/tmp/pkgs/v2/eventflow-dev_${v2}_$arch.deb"
[ "$(in_root dpkg-query -W -f='${Version}' eventflow)" = "$v2" ] || fail "eventflow was not upgraded to $v2"
grep -q '^  level: debug$' "$root/etc/eventflow/eventflow.yaml" || fail "the upgrade replaced the changed config"
[ ! -e "$root/etc/eventflow/eventflow.yaml.dpkg-new" ] || fail "the upgrade left eventflow.yaml.dpkg-new"
[ "$(processed)" = 1 ] || fail "the upgrade lost the data"
as_eventflow /usr/bin/eventflow validate >/dev/null || fail "validate after the upgrade"
step "upgrade $v1 -> $v2 kept the changed eventflow.yaml and the data"

# --- 10. remove keeps config and data; purge deletes both and keeps the user.
apt_in_root remove eventflow-dev eventflow
[ ! -e "$root/usr/bin/eventflow" ] || fail "remove left /usr/bin/eventflow"
[ "$(in_root dpkg-query -W -f='${db:Status-Abbrev}' eventflow)" = "rc " ] || fail "eventflow is not in state rc"
grep -q '^  level: debug$' "$root/etc/eventflow/eventflow.yaml" || fail "remove deleted the config"
[ "$(processed)" = 1 ] || fail "remove deleted the data"
apt_in_root purge eventflow
[ ! -e "$root/etc/eventflow" ] || fail "purge left /etc/eventflow"
[ ! -e "$root/var/lib/eventflow" ] || fail "purge left /var/lib/eventflow"
in_root id eventflow >/dev/null || fail "purge removed the eventflow user (kept by design: docs/operations.md)"
step "remove kept config and data; purge deleted them and kept the user"

ok=1
echo "all steps passed in $((SECONDS - started)) s"
