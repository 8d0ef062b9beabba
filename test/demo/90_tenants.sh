#!/usr/bin/env bash
# Tenants, the rate limiter and data rights.  An app's login role (a member of
# pgext_app) sees nothing until it binds its transaction to an account, then
# that account only, and may not touch another one; a per-chat token bucket
# lets a burst through and then says how long to wait; bob's data is exported
# (secrets masked) and erased (refused while his server is live, then forced).
# Account ids are printed as <alice> and <bob>.
set -euo pipefail
q() { psql -X -q -v ON_ERROR_STOP=1 -P pager=off -P footer=off "$@"; }
val() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }

alice=$(val -c "SELECT id FROM pgext.accounts WHERE external_id = 'alice'")
bob=$(val -c "SELECT id FROM pgext.accounts WHERE external_id = 'bob'")
if [ -z "$alice" ] || [ -z "$bob" ]; then echo "alice and bob must exist by now (steps 10 and 30)" >&2; exit 1; fi
ids() { sed -e "s/$alice/<alice>/g" -e "s/$bob/<bob>/g"; }

echo '--- 1. tenant isolation: the app logs in as tenant_app (LOGIN, member of pgext_app; password never printed)'
TENANT_PW=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
export TENANT_PW
q <<'SQL'
\getenv pw TENANT_PW
CREATE ROLE tenant_app LOGIN PASSWORD :'pw' IN ROLE pgext_app;
SQL
app() { PGUSER=tenant_app PGPASSWORD=$TENANT_PW "$@"; }
echo '    what the whole database holds (as the DBA): rows per account'
q -c "SELECT a.external_id,
             (SELECT count(*) FROM pgext.credit_ledger g WHERE g.account_id = a.id) AS ledger_rows,
             (SELECT count(*) FROM pgext.servers s WHERE s.account_id = a.id) AS servers
        FROM pgext.accounts a WHERE a.id IN ('$alice', '$bob') ORDER BY a.external_id"
echo '    tenant_app, unbound: the account tables show it nothing'
app q -c "SELECT (SELECT count(*) FROM pgext.accounts) AS accounts,
                 (SELECT count(*) FROM pgext.credit_ledger) AS ledger_rows,
                 (SELECT count(*) FROM pgext.servers) AS servers"
echo "    BEGIN; SELECT pgext.set_account(<alice>); then a deduction for bob's account in the same transaction:"
out=$(app psql -X -q -P pager=off -P footer=off -v alice="$alice" -v bob="$bob" 2>&1 <<'SQL'
\set VERBOSITY terse
BEGIN;
SELECT pgext.set_account(:'alice') = :'alice' AS bound;
SELECT (SELECT string_agg(external_id, ',') FROM pgext.accounts) AS accounts,
       (SELECT count(*) FROM pgext.credit_ledger) AS ledger_rows,
       (SELECT count(DISTINCT account_id) FROM pgext.credit_ledger) AS ledger_accounts,
       (SELECT count(*) FROM pgext.servers) AS servers;
SAVEPOINT s;
SELECT * FROM pgext.credit_deduct(:'bob', 1, 'tenant-demo', 'not alice''s to spend');
\echo '    SQLSTATE' :LAST_ERROR_SQLSTATE
ROLLBACK TO SAVEPOINT s;
SELECT pgext.current_account() = :'alice' AS still_bound_to_alice;
COMMIT;
\echo '    after COMMIT:'
SELECT pgext.current_account() IS NULL AS unbound,
       (SELECT count(*) FROM pgext.accounts) AS accounts,
       (SELECT count(*) FROM pgext.credit_ledger) AS ledger_rows;
SQL
) || true
printf '%s\n' "$out" | ids | sed 's/^ERROR/    ERROR/'
grep -q 'SQLSTATE 42501' <<<"$out" || { echo "FAILED: the deduction for bob was not refused with 42501" >&2; exit 1; }
[ "$(grep -c '^ERROR' <<<"$out")" = 1 ] || { echo "FAILED: an unexpected error above" >&2; exit 1; }

echo
echo '--- 2. the rate limiter: chat 4242 may get 1 message a second, bursts of 3 (shared memory, no table)'
echo "    five messages in a row: SELECT * FROM pgext.rate_limit('chat:4242', 3, 1)"
key="chat:4242"
val -c "SELECT pgext.rate_limit_reset('$key')" >/dev/null
# one statement, one call per row (a volatile call in the select list; OFFSET 0
# keeps the subquery as it is), so the five calls come within microseconds
q -c "SELECT message, (r).allowed, (r).remaining, (r).retry_after_ms
        FROM (SELECT n AS message, pgext.rate_limit('$key', 3, 1) AS r
                FROM generate_series(1, 5) n OFFSET 0) calls ORDER BY message"
echo "    the app waits: it polls with cost 0 (a peek takes nothing) until a token is back, then sends"
deadline=$(( $(date +%s) + 10 ))
until [ "$(val -c "SELECT remaining >= 1 FROM pgext.rate_limit('$key', 3, 1, 0)")" = t ]; do
  [ "$(date +%s)" -lt "$deadline" ] || { echo "FAILED: no token after 10 s" >&2; exit 1; }
  sleep 0.05
done
q -c "SELECT 6 AS message, r.* FROM pgext.rate_limit('$key', 3, 1) r"

echo
echo "--- 3. data rights: bob asks for his data (account_export), then to be erased (account_forget)"
echo "    bob stores an API key first (secret_set), to show it comes out masked"
q -c "SELECT pgext.secret_set('openai:api_key', 'sk-proj-bob-demo-4c1e-9d27-f00d', '$bob') IS NOT NULL AS stored" >/dev/null
echo "    the export's top-level keys (arrays: their length), its secrets, and no plaintext anywhere in it:"
q -c "SELECT e.key, CASE jsonb_typeof(e.value)
                      WHEN 'array' THEN 'array of ' || jsonb_array_length(e.value)
                      WHEN 'object' THEN (SELECT string_agg(k, ', ' ORDER BY k) FROM jsonb_object_keys(e.value) k)
                      ELSE jsonb_typeof(e.value) END AS holds
        FROM jsonb_each(pgext.account_export('$bob')) e ORDER BY e.key"
q -c "SELECT s->>'name' AS name, s->>'masked' AS masked, s->>'key_version' AS key_version,
             position('sk-proj-bob-demo' IN pgext.account_export('$bob')::text) = 0 AS plaintext_absent
        FROM jsonb_array_elements(pgext.account_export('$bob')->'secrets') s"
echo "    account_forget(<bob>) while his server is live: refused"
q -c "\\set VERBOSITY terse" -c "SELECT pgext.account_forget('$bob')" 2>&1 | ids | sed 's/^/    /' || true
echo "    account_forget(<bob>, force => true): his live server is deleted through the state machine;"
echo "    what it did (non-zero entries of the summary it returns):"
q -c "SELECT e.key, e.value FROM jsonb_each(pgext.account_forget('$bob', force => true)) e
       WHERE e.value NOT IN ('0', 'false') OR e.key IN ('already', 'forced') ORDER BY e.key"
echo "    the export afterwards: the external id is a hash, no secrets, no ledger reasons, servers going away"
q -c "WITH x AS (SELECT pgext.account_export('$bob') AS d)
      SELECT left(d->'account'->>'external_id', 18) || '…' AS external_id,
             jsonb_array_length(d->'secrets') AS secrets,
             (SELECT count(*) FROM jsonb_array_elements(d->'credits'->'ledger') g WHERE g->>'reason' IS NOT NULL) AS ledger_reasons,
             (SELECT string_agg(DISTINCT s->>'desired_state', ',') FROM jsonb_array_elements(d->'servers') s) AS servers_desired,
             d->'forgotten' IS NOT NULL AS forget_recorded,
             d->'credits'->>'balance' AS balance_kept
        FROM x"
echo "    a second account_forget changes nothing:"
q -c "SELECT pgext.account_forget('$bob')->'already' AS already"
echo "    the books still balance (credit_audit: accounts that disagree with their ledger):"
q -c "SELECT count(*) AS disagreeing FROM pgext.credit_audit()"
q -c "DROP ROLE tenant_app"
