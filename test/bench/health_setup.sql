-- test/bench/health.sh: :nservers active servers (server_request, then a
-- manual transition to active: no VPS, no network, no Hetzner id, so nothing
-- is ever recovered) of one paying account, and :nchecks shallow checks every
-- 100 ms spread over them, each at :'url' with its own query string.
CREATE EXTENSION pgext CASCADE;
SELECT pgext.account_create('bench-health') AS acct \gset
INSERT INTO pgext.stripe_subscriptions (id, account_id, status, current_period_start, current_period_end)
VALUES ('sub_bench_health', :'acct', 'active', now() - interval '1 day', now() + interval '1 year');
BEGIN;
SELECT count(pgext.server_request(:'acct', 'bench-health-' || i,
         '{"server_type":"cx22","image":"ubuntu-24.04","locations":["fsn1"]}'))
  FROM generate_series(1, :nservers) i;
SELECT count(pgext.server_transition(s.id, 'active', 'benchmark: no VPS behind it'))
  FROM pgext.servers s WHERE s.provision_key LIKE 'bench-health-%';
COMMIT;
SELECT count(pgext.health_check_add(s.id, :'url' || '?c=' || c, 'shallow', interval '100 ms', :'timeout'))
  FROM generate_series(1, :nchecks) c
  JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM pgext.servers) s
    ON s.n = (c - 1) % :nservers;
