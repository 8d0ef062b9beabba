------------------------------------------------------------------------------
-- Data rights (GDPR): export everything held about an account, forget it
------------------------------------------------------------------------------

-- One row per forgotten account: when, by whom, the hash that replaced its
-- external id, and what pgext.account_forget deleted or stripped (summary).
-- A forgotten account takes no new business (55000): server_request and
-- secret_set check this table after locking the account row; the credit
-- calls read the mark the forget leaves in that row itself (external_id
-- 'forgotten:...', a prefix account_create refuses), which READ COMMITTED
-- re-reads when they waited for the forget's lock.
CREATE TABLE pgext.account_forgets (
  account_id       uuid PRIMARY KEY REFERENCES pgext.accounts (id),
  forgotten_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
  forgotten_by     name NOT NULL,
  external_id_hash text NOT NULL,
  summary          jsonb NOT NULL
);

-- Internal: what replaces a caller-chosen string of a forgotten account
-- ('forgotten:' || hex SHA-256): stays unique where the original was, and
-- whoever still knows the original can find its row by hashing it; NULL
-- stays NULL, and a value already replaced is kept.
CREATE FUNCTION pgext.forget_hash(value text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT CASE WHEN $1 IS NULL OR pg_catalog.starts_with($1, 'forgotten:') THEN $1
              ELSE 'forgotten:' || pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to($1, 'UTF8')), 'hex')
         END
$$;

-- Internal: the Stripe webhook events that belong to an account.  Events
-- link to an account through its Stripe customer (data.object.customer, or
-- the customer object itself), its subscriptions and checkout sessions
-- (object_id, and stripe_object_versions, which names the last event applied
-- to each object), the events that recorded its purchases, and the
-- client_reference_id of a checkout (its external id).  Reads every stored
-- event's payload: an operator's call, not a hot path.
CREATE FUNCTION pgext.account_webhook_events(account uuid)
RETURNS TABLE (source text, event_id text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pgext, pg_temp AS $$
  WITH a AS (SELECT x.id, x.external_id, x.stripe_customer_id FROM pgext.accounts x WHERE x.id = $1),
  objects AS (
    SELECT s.id AS object_id FROM pgext.stripe_subscriptions s WHERE s.account_id = $1
    UNION SELECT p.checkout_session_id FROM pgext.stripe_purchases p WHERE p.account_id = $1
    UNION SELECT a.stripe_customer_id FROM a WHERE a.stripe_customer_id IS NOT NULL
  )
  SELECT e.source, e.event_id FROM pgext.webhook_events e, a
   WHERE e.source = 'stripe'
     AND (e.object_id IN (SELECT o.object_id FROM objects o)
          OR e.event_id IN (SELECT p.event_id FROM pgext.stripe_purchases p WHERE p.account_id = $1)
          OR e.event_id IN (SELECT v.event_id FROM pgext.stripe_object_versions v
                             WHERE v.object_id IN (SELECT o.object_id FROM objects o))
          OR e.payload #>> '{data,object,customer}' = a.stripe_customer_id
          OR e.payload #>> '{data,object,client_reference_id}' = a.external_id)
$$;

-- Everything pgext holds about an account, as one jsonb document (the
-- right of access).  Secrets appear as catalog entries with their mask only:
-- never plaintext, never ciphertext.  NULL: 22004; an unknown account: P0002.
CREATE FUNCTION pgext.account_export(account uuid) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
BEGIN
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'account must not be NULL' USING ERRCODE = '22004',
      HINT = 'Pass the uuid returned by pgext.account_create().';
  END IF;
  -- a transaction bound to another account (pgext.set_account) may not read this one
  PERFORM pgext.account_scope_check($1);
  IF NOT EXISTS (SELECT FROM pgext.accounts a WHERE a.id = $1) THEN
    RAISE EXCEPTION 'account % does not exist', $1 USING ERRCODE = 'P0002',
      HINT = 'Pass the uuid returned by pgext.account_create().';
  END IF;
  RETURN pg_catalog.jsonb_build_object(
    'format', 'pgext.account_export/1',
    'exported_at', pg_catalog.now(),
    'account', (SELECT pg_catalog.to_jsonb(a) FROM pgext.accounts a WHERE a.id = $1),
    'forgotten', (SELECT pg_catalog.to_jsonb(f) FROM pgext.account_forgets f WHERE f.account_id = $1),
    'credits', pg_catalog.jsonb_build_object(
      'balance', pgext.credit_balance($1),
      'lots', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(l) ORDER BY l.id)
                          FROM pgext.credit_lots l WHERE l.account_id = $1), '[]'),
      'reservations', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r) ORDER BY r.id)
                                  FROM pgext.credit_reservations r WHERE r.account_id = $1), '[]'),
      'ledger', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(g) ORDER BY g.id)
                            FROM pgext.credit_ledger g WHERE g.account_id = $1), '[]')),
    'stripe', pg_catalog.jsonb_build_object(
      'customer_id', (SELECT a.stripe_customer_id FROM pgext.accounts a WHERE a.id = $1),
      'subscriptions', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(s) ORDER BY s.id)
                                   FROM pgext.stripe_subscriptions s WHERE s.account_id = $1), '[]'),
      'access_grants', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(g) ORDER BY g.id)
                                   FROM pgext.access_grants g WHERE g.account_id = $1), '[]'),
      'purchases', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(p) ORDER BY p.checkout_session_id)
                               FROM pgext.stripe_purchases p WHERE p.account_id = $1), '[]')),
    'servers', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(s) ORDER BY s.id)
                           FROM pgext.servers s WHERE s.account_id = $1), '[]'),
    'server_history', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(h) ORDER BY h.id)
                                  FROM pgext.server_history h
                                  JOIN pgext.servers s ON s.id = h.server_id
                                 WHERE s.account_id = $1), '[]'),
    'health', pg_catalog.jsonb_build_object(
      'checks', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(c) ORDER BY c.id)
                            FROM pgext.health_checks c WHERE c.account_id = $1), '[]'),
      'servers', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(h) ORDER BY h.server_id)
                             FROM pgext.health_servers h WHERE h.account_id = $1), '[]'),
      'events', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(e) ORDER BY e.id)
                            FROM pgext.health_events e
                           WHERE e.account_id = $1
                              OR e.server_id IN (SELECT s.id FROM pgext.servers s WHERE s.account_id = $1)), '[]')),
    'secrets', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                                  'id', s.id, 'name', s.name,
                                  'masked', CASE WHEN pg_catalog.getdatabaseencoding() = 'UTF8'
                                                 THEN U&'\2026' ELSE '...' END || s.last4,
                                  'key_version', s.key_version, 'created_at', s.created_at,
                                  'updated_at', s.updated_at, 'expires_at', s.expires_at)
                                ORDER BY s.name)
                           FROM pgext.secrets s WHERE s.account_id = $1), '[]'),
    'secret_audit', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(x) ORDER BY x.id)
                                FROM pgext.secret_audit x WHERE x.account_id = $1), '[]'),
    'outbox', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(o) ORDER BY o.id)
                          FROM pgext.outbox o WHERE o.account_id = $1), '[]'),
    'webhook_events', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(e) ORDER BY e.source, e.event_id)
                                  FROM pgext.webhook_events e
                                 WHERE (e.source, e.event_id) IN
                                       (SELECT w.source, w.event_id FROM pgext.account_webhook_events($1) w)), '[]'),
    'api_calls', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(c) ORDER BY c.id)
                             FROM pgext.api_calls c
                            WHERE c.server_id IN (SELECT s.id FROM pgext.servers s WHERE s.account_id = $1)), '[]'));
END
$$;

-- The right to erasure.  Keeps what the books need (ledger, lots,
-- reservations, purchases, subscriptions, the account row and its balance)
-- and removes or strips everything personal:
--   secrets: deleted, and the account's key salt with them (crypto-shred:
--     copies of the ciphertexts in WAL, replicas or later dumps can no
--     longer be decrypted, even with the master key);
--   secret_audit: rows and counts kept, secret names stripped (names are
--     caller-chosen and may name a person, e.g. 'gmail:alice@...');
--   webhook events: ids, types and statuses kept (a redelivered event stays
--     a duplicate); payloads of settled events dropped, pending ones keep
--     only what applying them needs (client_reference_id, metadata dropped);
--   health events, health checks of deleted servers, api_calls rows of its
--     servers: deleted; outbox rows: detail stripped;
--   caller-chosen strings in money rows (ledger reason and idempotency key,
--     reservation keys, lot period keys, access grant reasons): the reason
--     dropped, keys replaced by pgext.forget_hash (still unique; an auditor
--     holding a key can hash it to find its row);
--   servers: live ones deleted (see below); user_data dropped from their
--     specs, provision keys hashed; server_history kept (state changes);
--   external_id: replaced by pgext.forget_hash(external_id); the Stripe
--     customer id is kept (a pseudonymous key the books and late Stripe
--     events need; erase the customer at Stripe too).
-- Servers that are still live refuse the call (55000) unless force, which
-- deletes them through pgext.server_delete (the state machine).  Idempotent:
-- a second call changes nothing and returns the first summary with
-- "already": true.  Backups taken before the call still hold everything:
-- see README, Data rights.
CREATE FUNCTION pgext.account_forget(account uuid, force boolean DEFAULT false) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
DECLARE
  acc pgext.accounts;
  done pgext.account_forgets;
  live integer;
  srv bigint;
  n_servers integer := 0;
  n_specs integer;
  n_secrets integer;
  n_salt integer;
  n_audit integer;
  n_hooks integer;
  n_hooks_pending integer;
  n_hevents integer;
  n_hchecks integer;
  n_api integer;
  n_outbox integer;
  n_ledger integer;
  n_res integer;
  n_lots integer;
  n_grants integer;
  result_summary pg_catalog.jsonb;
BEGIN
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'account must not be NULL' USING ERRCODE = '22004',
      HINT = 'Pass the uuid returned by pgext.account_create().';
  END IF;
  IF $2 IS NULL THEN
    RAISE EXCEPTION 'force must not be NULL' USING ERRCODE = '22004',
      HINT = 'Pass false, or true to delete the account''s live servers too.';
  END IF;
  -- a transaction bound to another account (pgext.set_account) may not erase this one
  PERFORM pgext.account_scope_check($1);
  -- the account row lock: credit calls and secret_set wait for it
  SELECT * INTO acc FROM pgext.accounts a WHERE a.id = $1 FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'account % does not exist', $1 USING ERRCODE = 'P0002',
      HINT = 'Pass the uuid returned by pgext.account_create().';
  END IF;
  SELECT * INTO done FROM pgext.account_forgets f WHERE f.account_id = $1;
  IF FOUND THEN
    RETURN done.summary || '{"already": true}';
  END IF;

  -- servers: live ones (as server_request counts them) refuse unless forced
  SELECT pg_catalog.count(*) INTO live FROM pgext.servers x
   WHERE x.account_id = $1 AND x.state <> 'deleted' AND x.desired_state <> 'deleted'
     AND NOT (x.state = 'failed' AND NOT x.needs_cleanup AND x.retry_at IS NULL);
  IF live > 0 AND NOT $2 THEN
    RAISE EXCEPTION 'account % still has % live server(s)', $1, live USING ERRCODE = '55000',
      HINT = 'Delete them first with pgext.server_delete(server, reason), or call pgext.account_forget(account, force => true).';
  END IF;
  FOR srv IN SELECT x.id FROM pgext.servers x
              WHERE x.account_id = $1 AND x.state <> 'deleted' AND x.desired_state <> 'deleted'
              ORDER BY x.id LOOP
    PERFORM pgext.server_delete(srv, 'account forgotten (pgext.account_forget)');
    n_servers := n_servers + 1;
  END LOOP;
  -- caller-chosen content of its servers: the cloud-init user_data (no
  -- longer needed: they are deleted, never created again) and the
  -- provision key (hashed; the Hetzner name was derived from it already)
  UPDATE pgext.servers x
     SET spec = x.spec - 'user_data', provision_key = pgext.forget_hash(x.provision_key)
   WHERE x.account_id = $1
     AND (x.spec ? 'user_data' OR x.provision_key IS DISTINCT FROM pgext.forget_hash(x.provision_key));
  GET DIAGNOSTICS n_specs = ROW_COUNT;

  -- the record first: the ledger's append-only trigger admits the strip
  -- below only for a forgotten account
  INSERT INTO pgext.account_forgets (account_id, forgotten_by, external_id_hash, summary)
  VALUES ($1, pg_catalog.session_user(), pgext.forget_hash(acc.external_id), '{}');

  -- secrets: the rows, then the salt (crypto-shred); counters still in
  -- shared memory are flushed first so their names are stripped too
  PERFORM pgext.secret_audit_flush();
  DELETE FROM pgext.secrets s WHERE s.account_id = $1;
  GET DIAGNOSTICS n_secrets = ROW_COUNT;
  DELETE FROM pgext.secret_account_keys k WHERE k.account_id = $1;
  GET DIAGNOSTICS n_salt = ROW_COUNT;
  UPDATE pgext.secret_audit x SET name = NULL WHERE x.account_id = $1 AND x.name IS NOT NULL;
  GET DIAGNOSTICS n_audit = ROW_COUNT;

  -- webhook events: keep the rows (dedup), drop or trim the payloads
  UPDATE pgext.webhook_events e
     SET payload = CASE WHEN e.status = 'pending'
                        THEN e.payload #- '{data,object,client_reference_id}' #- '{data,object,metadata}'
                        ELSE NULL END
   WHERE (e.source, e.event_id) IN (SELECT w.source, w.event_id FROM pgext.account_webhook_events($1) w)
     AND e.payload IS NOT NULL;
  GET DIAGNOSTICS n_hooks = ROW_COUNT;

  -- fleet history
  DELETE FROM pgext.health_events e
   WHERE e.account_id = $1 OR e.server_id IN (SELECT s.id FROM pgext.servers s WHERE s.account_id = $1);
  GET DIAGNOSTICS n_hevents = ROW_COUNT;
  DELETE FROM pgext.health_checks c
   WHERE c.server_id IN (SELECT s.id FROM pgext.servers s WHERE s.account_id = $1 AND s.state = 'deleted');
  GET DIAGNOSTICS n_hchecks = ROW_COUNT;
  DELETE FROM pgext.api_calls c
   WHERE c.server_id IN (SELECT s.id FROM pgext.servers s WHERE s.account_id = $1);
  GET DIAGNOSTICS n_api = ROW_COUNT;
  UPDATE pgext.outbox o SET detail = NULL WHERE o.account_id = $1 AND o.detail IS NOT NULL;
  GET DIAGNOSTICS n_outbox = ROW_COUNT;

  -- money rows: kept, caller-chosen strings stripped
  UPDATE pgext.credit_ledger g
     SET reason = NULL, idempotency_key = pgext.forget_hash(g.idempotency_key)
   WHERE g.account_id = $1
     AND (g.reason IS NOT NULL OR g.idempotency_key IS DISTINCT FROM pgext.forget_hash(g.idempotency_key));
  GET DIAGNOSTICS n_ledger = ROW_COUNT;
  UPDATE pgext.credit_reservations r SET idempotency_key = pgext.forget_hash(r.idempotency_key)
   WHERE r.account_id = $1 AND r.idempotency_key IS DISTINCT FROM pgext.forget_hash(r.idempotency_key);
  GET DIAGNOSTICS n_res = ROW_COUNT;
  UPDATE pgext.credit_lots l SET period_key = pgext.forget_hash(l.period_key)
   WHERE l.account_id = $1 AND l.period_key IS DISTINCT FROM pgext.forget_hash(l.period_key);
  GET DIAGNOSTICS n_lots = ROW_COUNT;
  UPDATE pgext.access_grants g
     SET reason = 'forgotten', revoke_reason = CASE WHEN g.revoke_reason IS NULL THEN NULL ELSE 'forgotten' END
   WHERE g.account_id = $1;
  GET DIAGNOSTICS n_grants = ROW_COUNT;

  UPDATE pgext.accounts a SET external_id = pgext.forget_hash(a.external_id) WHERE a.id = $1;

  result_summary := pg_catalog.jsonb_build_object(
    'already', false,
    'forced', $2,
    'servers_marked_for_deletion', n_servers,
    'servers_stripped', n_specs,
    'secrets_deleted', n_secrets,
    'key_salt_deleted', n_salt > 0,
    'secret_audit_names_stripped', n_audit,
    'webhook_payloads_stripped', n_hooks,
    'health_events_deleted', n_hevents,
    'health_checks_deleted', n_hchecks,
    'api_calls_deleted', n_api,
    'outbox_details_stripped', n_outbox,
    'ledger_rows_stripped', n_ledger,
    'reservations_stripped', n_res,
    'lots_stripped', n_lots,
    'access_grants_stripped', n_grants);
  UPDATE pgext.account_forgets f SET summary = result_summary WHERE f.account_id = $1;
  RETURN result_summary;
END
$$;

-- A Stripe event stored after its account was forgotten (a late delivery, a
-- fetched missed event) keeps what applying it needs (the customer,
-- subscription, prices: money state) but not the personal fields the
-- intake whitelist keeps for live accounts (client_reference_id, metadata).
-- That strip is done in C where the payload is built (src/webhooks/payload.c,
-- for webhook_ingest and stripe_event_minimal) against a per-backend set of
-- forgotten Stripe customers (src/data_rights.c), kept off the ingest hot
-- path.  Every change to this table drops that set in every backend: this
-- statement trigger sends the invalidation (the writers of a forgotten
-- account's stripe_customer_id send it from C).
CREATE FUNCTION pgext.account_forgets_changed() RETURNS trigger
AS 'MODULE_PATHNAME', 'account_forgets_changed'
LANGUAGE C SET search_path = pg_catalog, pgext, pg_temp;
CREATE TRIGGER account_forgets_changed
  AFTER INSERT OR UPDATE OF account_id OR DELETE OR TRUNCATE ON pgext.account_forgets
  FOR EACH STATEMENT EXECUTE FUNCTION pgext.account_forgets_changed();

REVOKE ALL ON pgext.account_forgets FROM PUBLIC;
REVOKE ALL ON FUNCTION
  pgext.forget_hash(text),
  pgext.account_webhook_events(uuid),
  pgext.account_export(uuid),
  pgext.account_forget(uuid, boolean),
  pgext.account_forgets_changed()
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgext.account_export(uuid) TO pgext_app, pgext_admin;
GRANT EXECUTE ON FUNCTION pgext.account_forget(uuid, boolean) TO pgext_admin;
GRANT SELECT ON pgext.account_forgets TO pgext_admin;

SELECT pg_catalog.pg_extension_config_dump('pgext.account_forgets', '');
