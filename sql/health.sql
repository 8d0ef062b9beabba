-- Fleet health (issue 12): checks and their bad inputs, results in batches
-- (thresholds, grace, configuring -> active), agent states and the outbox,
-- recoveries (reboot, then reset, backoff, the fleet cap), the breaker, the
-- operator's pause, retention, the views, and the reboot/reset requests the
-- worker sends.  The worker is off here: results are handed to
-- pgext.health_record by hand, and time is driven through the `at`
-- arguments (offsets from :t, an hour from now), never by sleeping.
\set VERBOSITY terse
SET client_min_messages = warning;
-- Start from a fresh extension: other tests share this database.
BEGIN; SET LOCAL pgext.confirm_drop = on; DROP EXTENSION pgext CASCADE; COMMIT;
CREATE EXTENSION pgext;
SET TIME ZONE 'UTC';
SET pgext.server_limit_per_account = 100;
SET pgext.health_unhealthy_after = 3;
SET pgext.health_healthy_after = 2;
SET pgext.health_grace = '5min';
SET pgext.health_recovery_backoff_base = '1min';
SET pgext.health_recovery_backoff_max = '8min';
SET pgext.health_recovery_per_minute = 100;  -- the default
SET pgext.health_breaker_share = 0.5;
SET pgext.health_breaker_min_servers = 3;
SET pgext.health_breaker_location_share = 0.5;
SET pgext.health_breaker_window = '5min';
SET pgext.health_breaker_quiet = '10min';
SET pgext.health_history_retention = '30d';

SELECT pgext.account_create('hl_pay') AS pay \gset
INSERT INTO pgext.stripe_subscriptions (id, account_id, status, current_period_start, current_period_end)
VALUES ('sub_hl_pay', :'pay', 'active', '2026-01-01', '2099-01-01');
SELECT date_trunc('minute', pg_catalog.now()) + interval '1 hour' AS t \gset
-- run a statement, show its SQLSTATE and message
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
-- a server without spec.health, moved by hand to `state` (creating, active,
-- ...), with a Hetzner id, an address and a location
CREATE FUNCTION pg_temp.srv(key text, loc text, state text DEFAULT 'active') RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  sid bigint := pgext.server_request((SELECT a.id FROM pgext.accounts a WHERE a.external_id = 'hl_pay'), key,
    '{"server_type":"cx22","image":"ubuntu-24.04","locations":["fsn1"]}');
BEGIN
  UPDATE pgext.servers x SET hetzner_id = 7000 + x.id, ipv4 = '203.0.113.' || x.id, location = loc WHERE x.id = sid;
  PERFORM pgext.server_transition(sid, 'creating', 'test');
  IF state <> 'creating' THEN
    PERFORM pgext.server_transition(sid, 'active', 'test');
  END IF;
  IF state NOT IN ('creating', 'active') THEN
    PERFORM pgext.server_transition(sid, state, 'test');
  END IF;
  RETURN sid;
END $$;
-- one result per check: ok ('+') or failed ('-' with error e) at `at`
CREATE FUNCTION pg_temp.rec(ids bigint[], pass boolean, at timestamptz, e text DEFAULT 'timeout') RETURNS integer
LANGUAGE sql AS $$
  SELECT pgext.health_record(ids, array_fill(pass, ARRAY[cardinality(ids)]),
                             array_fill(CASE WHEN pass THEN 200 WHEN e LIKE 'HTTP %' THEN substr(e, 6)::integer ELSE 0 END,
                                        ARRAY[cardinality(ids)]),
                             array_fill(12, ARRAY[cardinality(ids)]),
                             array_fill(CASE WHEN pass THEN NULL ELSE e END, ARRAY[cardinality(ids)]::integer[]), at)
$$;
-- a check's state in one line
CREATE FUNCTION pg_temp.chk(c bigint) RETURNS text LANGUAGE sql AS $$
  SELECT format('%s f=%s s=%s total=%s failed=%s ignored=%s err=%s', state, consecutive_failures, consecutive_successes,
                checks_total, failures_total, ignored_total, COALESCE(last_error, '-'))
    FROM pgext.health_checks WHERE id = c
$$;

-- 1. Adding checks: defaults, idempotence, bad inputs (nothing written)
SELECT pg_temp.srv('hl-a', 'fsn1') AS a, pg_temp.srv('hl-b', 'fsn1') AS b, pg_temp.srv('hl-c', 'nbg1', 'creating') AS c \gset
SELECT pgext.health_config_version() AS v0 \gset
SELECT pgext.health_check_add(:a, 'http://203.0.113.1:8080/health') AS a1 \gset
SELECT pgext.health_config_version() > :v0 AS version_bumped;
SELECT kind, every, timeout, enabled, from_spec, state, account_id = :'pay' AS account,
       grace_until - now() BETWEEN interval '4 minutes' AND interval '5 minutes' AS grace_5min
  FROM pgext.health_checks WHERE id = :a1;
SELECT pgext.health_check_add(:a, 'http://203.0.113.1:8080/health') = :a1 AS same_id;
SELECT pgext.health_check_add(:a, 'http://203.0.113.1:8080/health', 'shallow', '10 s', '2 s') = :a1 AS same_id;
SELECT every, timeout FROM pgext.health_checks WHERE id = :a1;
SELECT pgext.health_check_add(:a, 'https://203.0.113.1/ready', 'deep') AS a2 \gset
SELECT kind, every, timeout FROM pgext.health_checks WHERE id = :a2;
SELECT pgext.health_check_add(:b, 'http://203.0.113.2:8080/health', every => '100 ms', timeout => '50 ms') AS b1 \gset
SELECT pgext.health_check_add(:c, 'http://203.0.113.3:8080/health') AS c1 \gset
SELECT grace_until IS NULL AS no_grace_before_active FROM pgext.health_checks WHERE id = :c1;
SELECT pg_temp.try($$SELECT pgext.health_check_add(NULL, 'http://x/')$$) AS null_server,
       pg_temp.try(format('SELECT pgext.health_check_add(%s, NULL)', :a)) AS null_url,
       pg_temp.try(format('SELECT pgext.health_check_add(%s, %L, NULL)', :a, 'http://x/')) AS null_kind,
       pg_temp.try(format('SELECT pgext.health_check_add(%s, %L, timeout => NULL)', :a, 'http://x/')) AS null_timeout;
SELECT left(u, 40) AS url, pg_temp.try(format('SELECT pgext.health_check_add(%s, %L)', :a, u)) AS result
  FROM unnest(ARRAY['ftp://host/health', 'http://', 'http:///health', 'http://user:secret@host/health',
                    'http://@host/', 'http://host /health', E'http://host/\thealth', 'http://host/' || repeat('x', 2040),
                    'host:8080/health', 'http://ho$t/']) u;
SELECT e AS every, t AS timeout, pg_temp.try(format('SELECT pgext.health_check_add(%s, %L, %L, %L, %L)', :a, 'http://x/', 'shallow', e, t)) AS result
  FROM (VALUES ('99 ms', '10 ms'), ('1 day 1 s', '5 s'), ('10 s', '0 s'), ('10 s', '10 s'), ('10 s', '-1 s'),
               ('1 day', '5 s'), ('100 ms', '99 ms')) v(e, t);
-- (the two valid ones made one check, updated by the second: it goes again)
SELECT url, every, timeout, pgext.health_check_remove(id) AS removed FROM pgext.health_checks WHERE url = 'http://x/';
SELECT pg_temp.try(format('SELECT pgext.health_check_add(%s, %L, %L)', :a, 'http://x/', 'medium')) AS bad_kind,
       pg_temp.try($$SELECT pgext.health_check_add(-1, 'http://x/')$$) AS unknown_server;
SELECT pg_temp.srv('hl-gone', 'fsn1') AS gone \gset
SELECT pgext.health_check_add(:gone, 'http://203.0.113.9/health') AS gone1 \gset
SELECT pgext.server_delete(:gone, 'test');
SELECT pg_temp.try(format('SELECT pgext.health_check_add(%s, %L)', :gone, 'http://x/')) AS deleting_server;
SELECT count(*) AS checks, count(*) FILTER (WHERE url LIKE 'http://x/%' OR url LIKE '%secret%') AS refused_written
  FROM pgext.health_checks;

-- 2. Updating and removing
SELECT (pgext.health_check_update(:b1, every => '1 s', timeout => '500 ms')).every AS new_every;
SELECT pg_temp.try(format('SELECT pgext.health_check_update(%s, every => %L)', :b1, '400 ms')) AS timeout_not_below_every,
       pg_temp.try(format('SELECT pgext.health_check_update(%s, url => %L)', :b1, 'http://a:b@h/')) AS userinfo,
       pg_temp.try($$SELECT pgext.health_check_update(NULL)$$) AS null_check,
       pg_temp.try($$SELECT pgext.health_check_update(-1, enabled => false)$$) AS unknown_check,
       pg_temp.try(format('SELECT pgext.health_check_update(%s)', :gone1)) AS deleting_server;
SELECT pgext.health_check_add(:b, 'http://203.0.113.2:9090/health') AS b2 \gset
SELECT pg_temp.try(format('SELECT pgext.health_check_update(%s, url => %L)', :b2, 'http://203.0.113.2:8080/health')) AS same_url_twice;
SELECT pgext.health_config_version() AS v1 \gset
SELECT (pgext.health_check_update(:b1)).every AS unchanged;
SELECT pgext.health_config_version() = :v1 AS no_bump;
SELECT (pgext.health_check_update(:b2, enabled => false)).enabled AS disabled;
SELECT pgext.health_config_version() > :v1 AS bumped;
SELECT pgext.health_check_remove(:b2) AS removed, pgext.health_check_remove(:b2) AS again,
       pg_temp.try($$SELECT pgext.health_check_remove(NULL)$$) AS null_check;

-- 3. What the worker polls: enabled checks of configuring/active servers meant to be active
SELECT id = :a1 AS a1, id = :a2 AS a2, id = :b1 AS b1, every_ms, timeout_ms, consecutive_failures, state
  FROM pgext.health_worker_load();

-- 4. Results: unhealthy after 3 counted failures, healthy after 2 passes, unknown -> healthy at once
SELECT pg_temp.try($$SELECT pgext.health_record(NULL, '{}', '{}', '{}', '{}')$$) AS null_array,
       pg_temp.try($$SELECT pgext.health_record('{1,2}', '{t}', '{200}', '{1}', '{NULL}')$$) AS lengths,
       pg_temp.try($$SELECT pgext.health_record('{NULL}', '{t}', '{200}', '{1}', '{NULL}')$$) AS null_id,
       pg_temp.try($$SELECT pgext.health_record('{1}', '{t}', '{200}', '{1}', '{NULL}', NULL)$$) AS null_at,
       pgext.health_record('{}', '{}', '{}', '{}', '{}') AS empty,
       pgext.health_record('{-5}', '{f}', '{0}', '{1}', '{timeout}') AS unknown_id_ignored;
-- bad inputs (issue 13): no status outside 0 and 100..599, no negative latency
SELECT pg_temp.try($$SELECT pgext.health_record('{-5}', '{f}', '{-1}', '{1}', '{NULL}')$$) AS bad_status,
       pg_temp.try($$SELECT pgext.health_record('{-5}', '{f}', '{600}', '{1}', '{NULL}')$$) AS status_600,
       pg_temp.try($$SELECT pgext.health_record('{-5}', '{f}', '{0}', '{-1}', '{NULL}')$$) AS bad_latency;
-- ... and an error text is kept to 1000 characters (tried, then rolled back)
BEGIN;
SELECT pgext.health_record(ARRAY[:a1]::bigint[], '{f}', '{0}', '{5}', ARRAY[repeat('e', 100000)], :'t') >= 0 AS recorded;
SELECT length(last_error) AS error_kept FROM pgext.health_checks WHERE id = :a1;
ROLLBACK;
SELECT pg_temp.rec(ARRAY[:a1, :a2, :b1], true, :'t') AS changed;
SELECT pg_temp.chk(:a1) AS a1, pg_temp.chk(:a2) AS a2, last_ok_at = :'t' AS ok_at, last_status, last_latency_ms
  FROM pgext.health_checks WHERE id = :a1;
SELECT pg_temp.rec(ARRAY[:a1], false, :'t'::timestamptz + interval '10 s') AS changed, pg_temp.chk(:a1);
SELECT pg_temp.rec(ARRAY[:a1], false, :'t'::timestamptz + interval '20 s', 'HTTP 503') AS changed, pg_temp.chk(:a1);
SELECT last_status FROM pgext.health_checks WHERE id = :a1;
SELECT pg_temp.rec(ARRAY[:a1], false, :'t'::timestamptz + interval '30 s', 'refused') AS changed, pg_temp.chk(:a1);
SELECT state_since - :'t'::timestamptz AS since, last_status FROM pgext.health_checks WHERE id = :a1;
SELECT pg_temp.rec(ARRAY[:a1], true, :'t'::timestamptz + interval '40 s') AS changed, pg_temp.chk(:a1);
SELECT pg_temp.rec(ARRAY[:a1], false, :'t'::timestamptz + interval '50 s') AS changed, pg_temp.chk(:a1);
SELECT pg_temp.rec(ARRAY[:a1], true, :'t'::timestamptz + interval '60 s') AS changed, pg_temp.chk(:a1);
SELECT pg_temp.rec(ARRAY[:a1], true, :'t'::timestamptz + interval '70 s') AS changed, pg_temp.chk(:a1);
-- the same id twice in one batch: the later result is applied (once)
SELECT pgext.health_record(ARRAY[:a1, :a1], '{f,t}', '{0,200}', '{5,6}', '{timeout,NULL}',
                           :'t'::timestamptz + interval '80 s') AS changed, pg_temp.chk(:a1);
SELECT last_latency_ms FROM pgext.health_checks WHERE id = :a1;
SELECT from_state, to_state, at - :'t'::timestamptz AS after, detail
  FROM pgext.health_events WHERE check_id = :a1 ORDER BY id;
SELECT from_state, to_state, at - :'t'::timestamptz AS after, detail
  FROM pgext.health_events WHERE kind = 'agent' AND server_id = :a ORDER BY id;
SELECT kind, detail FROM pgext.outbox WHERE server_id = :a ORDER BY id;

-- 5. Deep failures: degraded, never a recovery
SELECT pg_temp.rec(ARRAY[:a2], false, :'t'::timestamptz + interval '90 s'),
       pg_temp.rec(ARRAY[:a2], false, :'t'::timestamptz + interval '100 s'),
       pg_temp.rec(ARRAY[:a2], false, :'t'::timestamptz + interval '110 s') AS changed;
SELECT agent, agent_reason FROM pgext.health_servers WHERE server_id = :a;
SELECT pgext.health_recover(:'t'::timestamptz + interval '120 s') AS queued,
       (SELECT recovery_action FROM pgext.servers WHERE id = :a) AS action;
SELECT pg_temp.rec(ARRAY[:a2], true, :'t'::timestamptz + interval '130 s'),
       pg_temp.rec(ARRAY[:a2], true, :'t'::timestamptz + interval '140 s') AS changed;
SELECT agent FROM pgext.health_servers WHERE server_id = :a;
SELECT kind, detail FROM pgext.outbox WHERE server_id = :a ORDER BY id;

-- 6. Grace: failures before grace_until do not count, after it they do
SELECT grace_until AS g FROM pgext.health_checks WHERE id = :b1 \gset
SELECT pg_temp.rec(ARRAY[:b1], false, :'g'::timestamptz - interval '2 s'),
       pg_temp.rec(ARRAY[:b1], false, :'g'::timestamptz - interval '1 s'), pg_temp.chk(:b1);
SELECT pg_temp.rec(ARRAY[:b1], false, :'g'), pg_temp.chk(:b1);
-- a server not active (creating) counts nothing either
SELECT pg_temp.rec(ARRAY[:c1], false, :'t'), pg_temp.rec(ARRAY[:c1], false, :'t'),
       pg_temp.rec(ARRAY[:c1], false, :'t'), pg_temp.chk(:c1);

-- 7. configuring -> active on the first passing shallow check (spec.health)
SELECT pgext.server_request(:'pay', 'hl-spec',
  '{"server_type":"cx22","image":"ubuntu-24.04","locations":["fsn1"],"health":[{"url":"http://{ipv4}:8080/health","every":"10 s"},{"url":"http://{ipv4}:8080/deep","kind":"deep","every":120,"timeout":"3 s"}]}') AS sp \gset
SELECT count(*) AS checks_before_configuring FROM pgext.health_checks WHERE server_id = :sp;
UPDATE pgext.servers SET hetzner_id = 7000 + id, ipv4 = '198.51.100.7', location = 'fsn1' WHERE id = :sp;
SELECT pgext.server_transition(:sp, 'creating', 'test'), pgext.server_transition(:sp, 'configuring', 'test');
SELECT id AS sp1 FROM pgext.health_checks WHERE server_id = :sp AND kind = 'shallow' \gset
SELECT id AS sp2 FROM pgext.health_checks WHERE server_id = :sp AND kind = 'deep' \gset
SELECT url, kind, every, timeout, enabled, from_spec, grace_until IS NULL AS no_grace
  FROM pgext.health_checks WHERE server_id = :sp ORDER BY id;
-- failures while configuring are ignored; a passing deep check does not configure it
SELECT pg_temp.rec(ARRAY[:sp1], false, :'t'), pg_temp.rec(ARRAY[:sp1], false, :'t'),
       pg_temp.rec(ARRAY[:sp1], false, :'t'), pg_temp.chk(:sp1);
SELECT pg_temp.rec(ARRAY[:sp2], true, :'t') AS changed;
SELECT state FROM pgext.servers WHERE id = :sp;
SELECT pg_temp.rec(ARRAY[:sp1], true, :'t'::timestamptz + interval '5 s') AS changed;
SELECT state, state_reason, state_since - :'t'::timestamptz AS since FROM pgext.servers WHERE id = :sp;
SELECT grace_until - :'t'::timestamptz AS grace FROM pgext.health_checks WHERE server_id = :sp ORDER BY id;
SELECT kind, detail FROM pgext.outbox WHERE server_id = :sp ORDER BY id;
-- no address known: the spec's check is added disabled and says why
SELECT pgext.server_request(:'pay', 'hl-spec-noip',
  '{"server_type":"cx22","image":"ubuntu-24.04","locations":["fsn1"],"health":{"url":"http://{ipv4}:8080/health"}}') AS sn \gset
SELECT pgext.server_transition(:sn, 'creating', 'test'), pgext.server_transition(:sn, 'configuring', 'test');
SELECT url, enabled, last_error FROM pgext.health_checks WHERE server_id = :sn;
-- server_request checks spec.health up front (22023 naming the field, nothing written)
\set VERBOSITY sqlstate
SELECT pgext.server_request(:'pay', 'hl-bad1', '{"server_type":"cx22","image":"x","locations":["fsn1"],"health":{"url":"http://u:p@{ipv4}/"}}');
\set VERBOSITY terse
SELECT h AS health, pg_temp.try(format('SELECT pgext.server_request(%L, %L, %L)', :'pay', 'hl-bad',
         jsonb_build_object('server_type', 'cx22', 'image', 'x', 'locations', '["fsn1"]'::jsonb, 'health', h::jsonb))) AS result
  FROM unnest(ARRAY['{"url":"http://{ipv4}/","kind":"medium"}', '[{"url":"http://{ipv4}/"},{"url":"http://{ipv4}/","every":"soon"}]',
                    '{"url":"http://{ipv4}/","every":0.05}', '{"url":"http://{ipv4}/","timeout":"1 min"}',
                    '{"url":"ftp://{ipv4}/"}', '{"url":"http://{ipv4}/","extra":1}', '{"url":"http://{ipv4}/","kind":3}']) h;
SELECT count(*) AS refused_written FROM pgext.servers WHERE provision_key LIKE 'hl-bad%';

-- 8. Recovery: reboot first, then reset, backoff 1, 2, 4, 8, 8 min; the queue and hetzner_claim
SELECT pg_temp.rec(ARRAY[:sp1], false, :'t'::timestamptz + interval '10 min'),
       pg_temp.rec(ARRAY[:sp1], false, :'t'::timestamptz + interval '10 min'),
       pg_temp.rec(ARRAY[:sp1], false, :'t'::timestamptz + interval '10 min') AS changed;
SELECT agent, agent_reason FROM pgext.health_servers WHERE server_id = :sp;
SELECT :'t'::timestamptz + interval '11 min' AS r \gset
SELECT pgext.health_recover(:'r') AS queued;
SELECT recovery_action, next_action, next_attempt_at = :'r' AS due FROM pgext.servers WHERE id = :sp;
SELECT recovery_attempts, next_recovery_at - :'r'::timestamptz AS next_in, last_recovery_action
  FROM pgext.health_servers WHERE server_id = :sp;
SELECT pgext.health_recover(:'r') AS queued_again;
-- the worker sends it (class normal) and reports it sent
SELECT set_config('test.epoch', pgext.worker_begin('test worker', :'r')::text, false) IS NOT NULL AS began;
SELECT class, method, path, body, ref ->> 'action' AS action
  FROM pgext.hetzner_claim(current_setting('test.epoch')::bigint, 10, '{normal}', :'r') h
 WHERE ref ->> 'server' = :'sp';
SELECT claim AS cl FROM pgext.servers WHERE id = :sp \gset
SELECT pgext.server_report(:sp, 'reboot', '{"http_status":201,"action":{"id":1,"status":"running"}}', :cl, :'r') AS outcome;
SELECT recovery_action, next_action, last_error FROM pgext.servers WHERE id = :sp;
SELECT kind, detail FROM pgext.outbox WHERE server_id = :sp AND kind = 'agent_restarting' ORDER BY id;
-- not due before next_recovery_at; then a reset, and so on, capped at 8 min
SELECT pgext.health_recover(:'r'::timestamptz + interval '59 s') AS too_early;
CREATE FUNCTION pg_temp.recover_cycle(sid bigint, at timestamptz) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  q integer := pgext.health_recover(at);
  act text;
  cl bigint;
  o text;
BEGIN
  SELECT recovery_action INTO act FROM pgext.servers WHERE id = sid;
  PERFORM FROM pgext.hetzner_claim(current_setting('test.epoch')::bigint, 10, '{normal}', at);
  SELECT claim INTO cl FROM pgext.servers WHERE id = sid;
  o := pgext.server_report(sid, act, '{"http_status":201}', cl, at);
  RETURN format('queued %s %s -> %s; attempts %s, next in %s', q, act, o,
                (SELECT recovery_attempts FROM pgext.health_servers WHERE server_id = sid),
                (SELECT next_recovery_at - at FROM pgext.health_servers WHERE server_id = sid));
END $$;
SELECT pg_temp.recover_cycle(:sp, :'r'::timestamptz + interval '1 min') AS attempt_2;
SELECT pg_temp.recover_cycle(:sp, :'r'::timestamptz + interval '3 min') AS attempt_3;
SELECT pg_temp.recover_cycle(:sp, :'r'::timestamptz + interval '7 min') AS attempt_4;
SELECT pg_temp.recover_cycle(:sp, :'r'::timestamptz + interval '15 min') AS attempt_5;
SELECT pg_temp.recover_cycle(:sp, :'r'::timestamptz + interval '23 min') AS attempt_6;
SELECT to_state, at - :'r'::timestamptz AS after, detail FROM pgext.health_events
 WHERE kind = 'recovery' AND server_id = :sp ORDER BY id;
SELECT code, detail ->> 'attempts' AS attempts FROM pgext.alerts WHERE source = 'health' ORDER BY id;
SELECT detail FROM pgext.outbox WHERE server_id = :sp AND kind = 'agent_restarting' ORDER BY id;
-- a reset Hetzner no longer knows: the server is gone (fails)
SELECT pgext.health_recover(:'r'::timestamptz + interval '31 min') AS queued;
SELECT path FROM pgext.hetzner_claim(current_setting('test.epoch')::bigint, 10, '{normal}', :'r'::timestamptz + interval '31 min')
 WHERE ref ->> 'server' = :'sp';
SELECT claim AS cl FROM pgext.servers WHERE id = :sp \gset
SELECT pgext.server_report(:sp, 'reset', '{"http_status":404,"error":{"code":"not_found","message":"no server"}}', :cl,
                           :'r'::timestamptz + interval '31 min') AS outcome;
SELECT s.state, s.recovery_action, h.agent, (SELECT count(*) FROM pgext.health_checks c WHERE c.server_id = :sp AND c.state <> 'unknown') AS known
  FROM pgext.servers s JOIN pgext.health_servers h ON h.server_id = s.id WHERE s.id = :sp;
SELECT count(*) AS polled_after_fail FROM pgext.health_worker_load() l
  JOIN pgext.health_checks c ON c.id = l.id WHERE c.server_id = :sp;

-- 9. Healthy again: the backoff is cleared and a queued, unsent action cancelled
SELECT pg_temp.srv('hl-heal', 'hel1') AS hh \gset
SELECT pgext.health_check_add(:hh, 'http://203.0.113.50/health') AS hh1 \gset
SELECT pg_temp.rec(ARRAY[:hh1], false, :'t'::timestamptz + interval '2 h'), pg_temp.rec(ARRAY[:hh1], false, :'t'::timestamptz + interval '2 h'),
       pg_temp.rec(ARRAY[:hh1], false, :'t'::timestamptz + interval '2 h');
SELECT pgext.health_recover(:'t'::timestamptz + interval '2 h') AS queued;
SELECT next_action AS queued_action FROM pgext.servers WHERE id = :hh;
SELECT pg_temp.rec(ARRAY[:hh1], true, :'t'::timestamptz + interval '2 h 10 s'),
       pg_temp.rec(ARRAY[:hh1], true, :'t'::timestamptz + interval '2 h 20 s') AS changed;
SELECT s.recovery_action, s.next_action, h.agent, h.recovery_attempts, h.next_recovery_at
  FROM pgext.servers s JOIN pgext.health_servers h ON h.server_id = s.id WHERE s.id = :hh;
SELECT kind, detail FROM pgext.outbox WHERE server_id = :hh ORDER BY id;

-- 10. The fleet cap: at most health_recovery_per_minute recoveries a minute
SET pgext.health_recovery_per_minute = 2;
SET pgext.health_breaker_min_servers = 1000;   -- (four at once would trip it: section 12)
SELECT array_agg(pg_temp.srv('hl-cap' || i, 'cap1') ORDER BY i) AS caps FROM generate_series(1, 4) i \gset
SELECT array_agg(pgext.health_check_add(s, 'http://203.0.113.60/health') ORDER BY s) AS capchecks
  FROM unnest(:'caps'::bigint[]) s \gset
SELECT :'t'::timestamptz + interval '3 h' AS q \gset
SELECT pg_temp.rec(:'capchecks', false, :'q'), pg_temp.rec(:'capchecks', false, :'q'), pg_temp.rec(:'capchecks', false, :'q') AS changed;
SELECT pgext.health_recover(:'q') AS first_minute, pgext.health_recover(:'q'::timestamptz + interval '59 s') AS same_minute,
       pgext.health_recover(:'q'::timestamptz + interval '61 s') AS next_minute;
SELECT count(*) FILTER (WHERE recovery_action IS NOT NULL) AS queued FROM pgext.servers WHERE id = ANY (:'caps');
SET pgext.health_recovery_per_minute = 100;
SET pgext.health_breaker_min_servers = 3;
SELECT state FROM pgext.health_breaker;
-- clean up: these servers go away (their checks go, the events stay)
SELECT count(pgext.server_transition(s, 'deleting', 'test')) AS deleting FROM unnest(:'caps'::bigint[]) s;
SELECT count(pgext.server_transition(s, 'deleted', 'test')) AS deleted FROM unnest(:'caps'::bigint[]) s;
SELECT count(*) AS checks_left, (SELECT count(*) FROM pgext.health_events WHERE server_id = ANY (:'caps')) > 0 AS events_kept
  FROM pgext.health_checks WHERE server_id = ANY (:'caps');

-- 11. Operator pause and resume
SELECT pg_temp.try($$SELECT pgext.health_recovery_pause(NULL)$$) AS null_reason,
       pg_temp.try($$SELECT pgext.health_recovery_pause(' ')$$) AS blank_reason,
       -- bad inputs (issue 13): at most 1000 characters; a message shows at
       -- most 64 characters of a rejected value
       pg_temp.try($$SELECT pgext.health_recovery_pause(repeat('r', 1001))$$) AS long_reason,
       pg_temp.try($$SELECT pgext.health_check_add(1, 'http://203.0.113.1/health', repeat('k', 100000))$$) AS huge_kind;
SELECT pg_temp.srv('hl-p', 'hel1') AS ps \gset
SELECT pgext.health_check_add(:ps, 'http://203.0.113.70/health') AS ps1 \gset
SELECT :'t'::timestamptz + interval '4 h' AS p \gset
SELECT pg_temp.rec(ARRAY[:ps1], false, :'p'), pg_temp.rec(ARRAY[:ps1], false, :'p'), pg_temp.rec(ARRAY[:ps1], false, :'p');
SELECT pgext.health_recovery_pause('Hetzner incident') AS paused, pgext.health_recovery_pause('again') AS again;
SELECT paused, paused_by = session_user AS by_me, paused_reason FROM pgext.health_breaker;
SELECT pgext.health_recover(:'p') AS queued_while_paused;
SELECT pgext.health_recovery_resume() AS resumed, pgext.health_recovery_resume() AS again;
SELECT pgext.health_recover(:'p') AS queued_after_resume;
SELECT from_state, to_state, detail LIKE 'by %: Hetzner incident' OR detail LIKE 'resumed by %' AS detail
  FROM pgext.health_events WHERE kind = 'pause' ORDER BY id;
SELECT code, detail ->> 'reason' AS reason FROM pgext.alerts WHERE code LIKE 'recovery_%' AND code <> 'recovery_not_working' ORDER BY id;
-- a paused VPS: checks and agent unknown, the queued action dropped, not polled
SELECT pgext.server_transition(:ps, 'paused', 'test');
SELECT s.recovery_action, h.agent, pg_temp.chk(:ps1),
       (SELECT count(*) FROM pgext.health_worker_load() WHERE id = :ps1) AS polled
  FROM pgext.servers s JOIN pgext.health_servers h ON h.server_id = s.id WHERE s.id = :ps;
SELECT pgext.server_transition(:ps, 'active', 'test');
SELECT pg_temp.chk(:ps1), grace_until > now() AS grace FROM pgext.health_checks WHERE id = :ps1;

-- 12. The breaker: many servers unhealthy at once; per location; closes after quiet
SELECT array_agg(pg_temp.srv('hl-br' || i, CASE WHEN i <= 4 THEN 'ash' ELSE 'hil' END) ORDER BY i) AS br
  FROM generate_series(1, 8) i \gset
SELECT array_agg(pgext.health_check_add(s, 'http://203.0.113.80/health') ORDER BY s) AS brc
  FROM unnest(:'br'::bigint[]) s \gset
SELECT :'t'::timestamptz + interval '5 h' AS k \gset
SELECT (SELECT count(*) FROM pgext.health_servers y JOIN pgext.servers s ON s.id = y.server_id WHERE s.state = 'active') AS active_servers;
-- two servers unhealthy: below breaker_min_servers, recovery goes on
SELECT pg_temp.rec((:'brc'::bigint[])[1:2], false, :'k'), pg_temp.rec((:'brc'::bigint[])[1:2], false, :'k'),
       pg_temp.rec((:'brc'::bigint[])[1:2], false, :'k') AS changed;
SELECT pgext.health_recover(:'k') AS queued;
SELECT state FROM pgext.health_breaker;
-- three of ash's four: the location rule trips (3 >= 3 and 3 > 0.5 * 4); nothing is queued, queued ones are dropped
SELECT pg_temp.rec((:'brc'::bigint[])[3:3], false, :'k'::timestamptz + interval '1 min'),
       pg_temp.rec((:'brc'::bigint[])[3:3], false, :'k'::timestamptz + interval '1 min'),
       pg_temp.rec((:'brc'::bigint[])[3:3], false, :'k'::timestamptz + interval '1 min') AS changed;
SELECT pgext.health_recover(:'k'::timestamptz + interval '1 min') AS queued;
SELECT state, since - :'k'::timestamptz AS since, reason FROM pgext.health_breaker;
SELECT count(*) FILTER (WHERE recovery_action IS NOT NULL) AS queued_left FROM pgext.servers WHERE id = ANY (:'br');
SELECT code, detail ->> 'location' AS location, detail ->> 'unhealthy' AS unhealthy FROM pgext.alerts WHERE code LIKE 'breaker%' ORDER BY id;
-- still open while servers keep turning unhealthy; quiet for 10 min: closed, recovery resumes
SELECT pg_temp.rec((:'brc'::bigint[])[5:5], false, :'k'::timestamptz + interval '5 min'),
       pg_temp.rec((:'brc'::bigint[])[5:5], false, :'k'::timestamptz + interval '5 min'),
       pg_temp.rec((:'brc'::bigint[])[5:5], false, :'k'::timestamptz + interval '5 min') AS changed;
SELECT pgext.health_recover(:'k'::timestamptz + interval '14 min') AS queued;
SELECT state FROM pgext.health_breaker;
SELECT pgext.health_recover(:'k'::timestamptz + interval '15 min') AS queued;
SELECT state, reason FROM pgext.health_breaker;
SELECT from_state, to_state, at - :'k'::timestamptz AS after, detail FROM pgext.health_events WHERE kind = 'breaker' ORDER BY id;
-- a window longer than the quiet period: the turns before the close no longer count (it stays closed)
SET pgext.health_breaker_window = '1h';
SELECT pgext.health_recover(:'k'::timestamptz + interval '15 min 30 s') AS queued;
SELECT state FROM pgext.health_breaker;
SET pgext.health_breaker_window = '5min';
-- the fleet-wide share: 3 of 12 active servers unhealthy within the window trips at share 0.2 (location rule off)
SET pgext.health_breaker_share = 0.2;
SET pgext.health_breaker_location_share = 1;
SELECT pg_temp.rec((:'brc'::bigint[])[6:8], false, :'k'::timestamptz + interval '30 min'),
       pg_temp.rec((:'brc'::bigint[])[6:8], false, :'k'::timestamptz + interval '30 min'),
       pg_temp.rec((:'brc'::bigint[])[6:8], false, :'k'::timestamptz + interval '30 min') AS changed;
SELECT pgext.health_recover(:'k'::timestamptz + interval '30 min') AS queued;
SELECT state, reason FROM pgext.health_breaker;
SELECT pgext.health_recover(:'k'::timestamptz + interval '40 min') AS queued;
SELECT state FROM pgext.health_breaker;
RESET pgext.health_breaker_share;
RESET pgext.health_breaker_location_share;

-- 13. The views
SELECT server = :a AS a, name = pgext.server_name('hl-a') AS named, location, vps_state, desired_state, agent,
       agent_reason, shallow, deep, checks, last_checked_at IS NOT NULL AS checked, last_error,
       recovery_attempts, recovery_action
  FROM pgext.health_status WHERE server IN (:a, :b, :c, :sp, :sn) ORDER BY server;
SELECT vps_state, checks FROM pgext.health_status WHERE server = :gone;
SELECT count(*) AS deleted_listed FROM pgext.health_status WHERE server = ANY (:'caps');
SELECT servers, healthy, unhealthy, degraded, unknown, checks, checks_per_second, breaker, recovery_paused,
       recoveries_last_hour > 0 AS recovered FROM pgext.health_fleet;
SELECT * FROM pgext.health_poller();

-- 14. Retention: events older than pgext.health_history_retention go
SELECT count(*) FILTER (WHERE at < :'t') AS before_t, count(*) AS events FROM pgext.health_events;
SELECT pgext.health_retention(:'t'::timestamptz + interval '30 days') AS deleted_before_t;
SELECT pgext.health_retention(:'t'::timestamptz + interval '31 days') AS deleted_rest;
SELECT count(*) AS left_after FROM pgext.health_events;
SELECT pg_temp.try($$SELECT pgext.health_retention(NULL)$$) AS null_at, pg_temp.try($$SELECT pgext.health_recover(NULL)$$) AS null_at;

-- 15. A deleted server's checks go
SELECT pgext.server_transition(:b, 'deleting', 'test'), pgext.server_transition(:b, 'deleted', 'test');
SELECT count(*) AS checks_of_deleted, (SELECT count(*) FROM pgext.health_servers WHERE server_id = :b) AS agent_row
  FROM pgext.health_checks WHERE server_id = :b;
-- ... and it gets none (55000), nothing written
SELECT pg_temp.try(format('SELECT pgext.health_check_add(%s, %L)', :b, 'http://203.0.113.2/health')) AS deleted_server,
       pgext.health_check_remove(:b1) AS remove_gone_check;
SELECT count(*) AS checks_of_deleted FROM pgext.health_checks WHERE server_id = :b;
