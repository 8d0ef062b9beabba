-- test/bench/health.sh: :nservers active servers (server_request, then a
-- manual transition through creating and configuring to active: no VPS, no network, no Hetzner id, so nothing
-- is ever recovered), 100 per paying account, and :nchecks shallow checks
-- every 100 ms spread over them, each at :'url' with its own query string.
CREATE EXTENSION pgext CASCADE;
SET pgext.server_limit_per_account = 100;
CREATE TEMP TABLE bench_accounts AS
SELECT a, pgext.account_create('bench-health-' || a) AS id
  FROM generate_series(0, (:nservers - 1) / 100) a;
INSERT INTO pgext.stripe_subscriptions (id, account_id, status, current_period_start, current_period_end)
SELECT 'sub_bench_health_' || a, id, 'active', now() - interval '1 day', now() + interval '1 year'
  FROM bench_accounts;
BEGIN;
SELECT count(pgext.server_request(b.id, 'bench-health-' || i,
         '{"server_type":"cx22","image":"ubuntu-24.04","locations":["fsn1"]}'))
  FROM generate_series(0, :nservers - 1) i JOIN bench_accounts b ON b.a = i / 100;
SELECT count(pgext.server_transition(s.id, t.state, 'benchmark: no VPS behind it'))
  FROM (VALUES (1, 'creating'), (2, 'configuring'), (3, 'active')) t (n, state),
       LATERAL (SELECT id FROM pgext.servers WHERE provision_key LIKE 'bench-health-%' ORDER BY id) s;
COMMIT;
SELECT count(pgext.health_check_add(s.id, :'url' || '?c=' || c, 'shallow', interval '100 ms', :'timeout'))
  FROM generate_series(1, :nchecks) c
  JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM pgext.servers) s
    ON s.n = (c - 1) % :nservers;
