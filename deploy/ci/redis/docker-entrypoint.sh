#!/bin/sh
# As the official redis image: options alone mean redis-server OPTIONS; redis-server runs as
# user redis with its working directory (/data) as its dir; protected mode off (the official
# image builds Redis with it off by default).
set -eu
case "${1:-redis-server}" in
    -*) set -- redis-server "$@" ;;
esac
if [ "${1:-redis-server}" = redis-server ]; then
    if [ "$#" -gt 0 ]; then shift; fi
    set -- redis-server --protected-mode no "$@"
    if [ "$(id -u)" = 0 ]; then
        chown -R redis:redis .
        exec setpriv --reuid=redis --regid=redis --init-groups "$@"
    fi
fi
exec "$@"
