#!/bin/sh
# The entrypoint of backflow.dev/postgres, with the contract of the official
# postgres image that `make demo` relies on: the superuser's password from
# POSTGRES_PASSWORD, the data in PGDATA, port 5432 on every address, and
# trust for local connections (kubectl exec ... psql -U postgres).
set -eu
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
if [ ! -s "$PGDATA/PG_VERSION" ]; then
	mkdir -p "$PGDATA"
	chown postgres "$PGDATA"
	pw=$(mktemp)
	printf '%s\n' "$POSTGRES_PASSWORD" >"$pw"
	chown postgres "$pw"
	runuser -u postgres -- "$bin/initdb" -D "$PGDATA" -U postgres --pwfile="$pw" --auth-local=trust --auth-host=scram-sha-256 >/dev/null
	rm -f "$pw"
	echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
fi
mkdir -p /var/run/postgresql
chown postgres /var/run/postgresql
exec runuser -u postgres -- "$bin/postgres" -D "$PGDATA" -c listen_addresses='*'
