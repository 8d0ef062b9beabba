-- health_record throughput (issue 12): 2000 checks on 2000 active servers,
-- then 50 batches of 2000 passing results (the common case: no state
-- changes) and 50 batches with 1% failing, each batch one statement as the
-- worker sends it.  Run in a fresh database with pgext created and the
-- worker off (pgext.worker_enabled = off), e.g.
--   psql -X -f test/bench/health_record.sql > out
--   awk '/^STEADY/{m="s"} /^MIXED/{m="m"} /^Time:/{if(m=="s"){s+=$2;ns++} else if(m=="m"){x+=$2;nm++}}
--        END {printf "steady %.1f us/result, mixed %.1f us/result\n", s*1000/(ns*2000), x*1000/(nm*2000)}' out
-- (each \gexec block also times its generating query: a fraction of a ms).
SET client_min_messages = warning;
SET pgext.server_limit_per_account = 10000;
SELECT pgext.account_create('bench') AS acct \gset
INSERT INTO pgext.stripe_subscriptions (id, account_id, status, current_period_start, current_period_end)
VALUES ('sub_bench', :'acct', 'active', '2026-01-01', '2099-01-01');
DO $$
DECLARE sid bigint; a uuid := (SELECT x.id FROM pgext.accounts x WHERE external_id = 'bench');
BEGIN
  FOR i IN 1..2000 LOOP
    sid := pgext.server_request(a, 'bench-' || i, '{"server_type":"cx22","image":"ubuntu-24.04","locations":["fsn1"]}');
    UPDATE pgext.servers x SET hetzner_id = 100000 + x.id, ipv4 = '10.0.0.1', location = 'fsn1' WHERE x.id = sid;
    PERFORM pgext.server_transition(sid, 'creating', 'bench');
    PERFORM pgext.server_transition(sid, 'active', 'bench');
    PERFORM pgext.health_check_add(sid, 'http://10.0.' || (i / 250) || '.' || (i % 250) || ':8080/health');
  END LOOP;
END $$;
UPDATE pgext.health_checks SET grace_until = NULL;
CREATE TABLE bench_ids AS SELECT array_agg(id ORDER BY random()) AS ids FROM pgext.health_checks;
SELECT count(*) AS checks FROM pgext.health_checks;
VACUUM ANALYZE;
\timing on
-- first batch: every check unknown -> healthy (2000 state changes: the rare path)
SELECT pgext.health_record(ids, array_fill(true, ARRAY[2000]), array_fill(200, ARRAY[2000]), array_fill(3, ARRAY[2000]), array_fill(NULL::text, ARRAY[2000]), now() + interval '1 hour') AS first_batch_changed FROM bench_ids;
\timing off
\echo STEADY
\timing on
SELECT format('SELECT pgext.health_record(ids, array_fill(true, ARRAY[2000]), array_fill(200, ARRAY[2000]), array_fill(3, ARRAY[2000]), array_fill(NULL::text, ARRAY[2000]), now() + interval ''1 hour'' + interval ''%s s'') AS changed FROM bench_ids', n) FROM generate_series(1, 50) n \gexec
\timing off
\echo MIXED
\timing on
-- 1% failing (20 a batch, rotating; none reaches 3 in a row)
SELECT format('SELECT pgext.health_record(ids, (SELECT array_agg(NOT (o %% 100 = %s)) FROM generate_series(1, 2000) o), array_fill(200, ARRAY[2000]), array_fill(3, ARRAY[2000]), array_fill(NULL::text, ARRAY[2000]), now() + interval ''1 hour'' + interval ''%s s'') AS changed FROM bench_ids', n % 100, 100 + n) FROM generate_series(1, 50) n \gexec
\timing off
SELECT sum(checks_total) AS results_recorded FROM pgext.health_checks;
