#!/bin/sh
# kit stand-in for redis:7-bookworm: the official image's entrypoint on Debian's redis-server.
# The official redis is built with protected mode off; Debian's is not, so unless the command
# line or the config file says otherwise, `--protected-mode no` is added (a compose `command:`
# override such as `redis-server --appendonly yes` keeps working from other containers).
set -e

if [ "$#" -eq 0 ]; then
	set -- redis-server
fi

# first arg is `-f` or `--some-option`, or first arg is `something.conf`
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi

# allow the container to be started with `--user`
if [ "$1" = 'redis-server' ] && [ "$(id -u)" = '0' ]; then
	find . \! -user redis -exec chown redis '{}' +
	HOME=/var/lib/redis exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi

if [ "$1" = 'redis-server' ]; then
	conf=''
	if [ "$#" -ge 2 ] && [ "${2#-}" = "$2" ] && [ -r "$2" ]; then
		conf="$2"
	fi
	want_protected=yes
	want_bind=yes
	for arg; do
		case "$arg" in
			--protected-mode) want_protected=no ;;
			--bind) want_bind=no ;;
		esac
	done
	if [ -n "$conf" ]; then
		if grep -Eqi '^[[:space:]]*protected-mode[[:space:]]' "$conf"; then want_protected=no; fi
		if grep -Eqi '^[[:space:]]*bind[[:space:]]' "$conf"; then want_bind=no; fi
	fi
	if [ "$want_protected" = yes ]; then
		set -- "$@" --protected-mode no
	fi
	# every interface, IPv6 optional: the upstream default, stated so no build default differs
	if [ "$want_bind" = yes ]; then
		set -- "$@" --bind '*' '-::*'
	fi
fi

# set an appropriate umask (if one isn't set already)
um="$(umask)"
if [ "$um" = '0022' ]; then
	umask 0077
fi

exec "$@"
