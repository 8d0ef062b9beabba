#!/usr/bin/env bash
# Backups: pg_dump keeps every pgext row (balances, ledger, secrets, webhook
# dedup records); the master keys stay outside the dump.  DROP EXTENSION is
# refused while pgext holds money or keys.
set -euo pipefail
q() { psql -X -q -v ON_ERROR_STOP=1 -P pager=off -P footer=off "$@"; }
src=${PGDATABASE:-$(psql -XAtc 'SELECT current_database()')}

echo '--- pg_dump -Fc of this database, pg_restore into a new one (same cluster, same master key command)'
dump=$(mktemp /tmp/pgext-demo-dump.XXXXXX)
pg_dump -Fc -f "$dump" "$src"
createdb pgext_demo_restored
pg_restore -d pgext_demo_restored "$dump"
rm -f "$dump"
q -d pgext_demo_restored -c "SELECT external_id, balance FROM pgext.accounts ORDER BY external_id"
echo '--- the ledger still adds up, the dedup records are back (a redelivery stays a duplicate), the secret decrypts'
q -d pgext_demo_restored -c "SELECT (SELECT count(*) FROM pgext.credit_audit()) AS audit_rows,
                                    (SELECT count(*) FROM pgext.credit_verify()) AS verify_rows,
                                    (SELECT count(*) FROM pgext.webhook_events) AS dedup_records,
                                    left(pgext.secret_get('webhook:stripe'), 6) || '…' AS signing_secret_decrypts_to"
echo '--- DROP EXTENSION while it holds balances, ledger rows and secrets: refused, with what would be lost'
q -d pgext_demo_restored -c "DROP EXTENSION pgext" 2>&1 | sed 's/^/    /' || true
echo '--- confirmed in the same transaction, it goes (this is the restored copy)'
q -d pgext_demo_restored -c "BEGIN" -c "SET LOCAL pgext.confirm_drop = on" -c "DROP EXTENSION pgext CASCADE" -c "COMMIT"
dropdb pgext_demo_restored
echo '    dropped; the original database is untouched'
