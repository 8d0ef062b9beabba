
------------------------------------------------------------------------------
-- Tenant isolation: row-level security, the read-only support role
------------------------------------------------------------------------------

-- Every table of the schema has row-level security enabled; a role without a
-- policy on a table sees none of its rows.  Not FORCE'd: the owner (pgext's
-- SECURITY DEFINER functions, the worker, pg_dump as a superuser) is not
-- subject to it.  Policies:
--   staff_read    pgext_admin and pgext_support read every row (an explicit
--                 bypass; neither may write to a table)
--   account_read  pgext_app reads the rows of the account its transaction
--                 acts for (pgext.set_account); unbound, none
-- Tables without an account (prices, webhooks, the worker's, the fleet's
-- bookkeeping) get no account_read: they are platform data.
ALTER TABLE pgext.accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.access_grants ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.api_calls ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.credit_ledger ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.credit_lots ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.credit_reservations ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.health_breaker ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.health_checks ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.health_config ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.health_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.health_servers ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.hetzner_cold ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.hetzner_reconcile_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.hetzner_seen ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.secret_audit ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.secrets ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.server_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.server_orphans ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.server_transitions ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.servers ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.stripe_events_cursor ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.stripe_object_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.stripe_prices ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.stripe_purchases ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.stripe_subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.stripe_sync_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.stripe_unmatched ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.webhook_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.webhook_rejections ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.webhook_sources ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.worker_lease ENABLE ROW LEVEL SECURITY;

CREATE POLICY staff_read ON pgext.accounts FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.access_grants FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.alerts FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.api_calls FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.credit_ledger FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.credit_lots FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.credit_reservations FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.health_breaker FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.health_checks FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.health_config FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.health_events FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.health_servers FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.hetzner_cold FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.hetzner_reconcile_runs FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.hetzner_seen FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.outbox FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.secret_audit FOR SELECT TO pgext_admin, pgext_support USING (true);
-- support gets no SELECT on secrets (ciphertext); it reads secret_catalog
CREATE POLICY staff_read ON pgext.secrets FOR SELECT TO pgext_admin USING (true);
CREATE POLICY staff_read ON pgext.server_history FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.server_orphans FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.server_transitions FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.servers FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.stripe_events_cursor FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.stripe_object_versions FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.stripe_prices FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.stripe_purchases FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.stripe_subscriptions FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.stripe_sync_runs FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.stripe_unmatched FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.webhook_events FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.webhook_rejections FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.webhook_sources FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.worker_lease FOR SELECT TO pgext_admin, pgext_support USING (true);

CREATE POLICY account_read ON pgext.accounts FOR SELECT TO pgext_app
  USING (id = pgext.current_account());
CREATE POLICY account_read ON pgext.access_grants FOR SELECT TO pgext_app
  USING (account_id = pgext.current_account());
CREATE POLICY account_read ON pgext.credit_ledger FOR SELECT TO pgext_app
  USING (account_id = pgext.current_account());
CREATE POLICY account_read ON pgext.credit_lots FOR SELECT TO pgext_app
  USING (account_id = pgext.current_account());
CREATE POLICY account_read ON pgext.credit_reservations FOR SELECT TO pgext_app
  USING (account_id = pgext.current_account());
CREATE POLICY account_read ON pgext.health_checks FOR SELECT TO pgext_app
  USING (account_id = pgext.current_account());
CREATE POLICY account_read ON pgext.health_events FOR SELECT TO pgext_app
  USING (account_id = pgext.current_account());
CREATE POLICY account_read ON pgext.health_servers FOR SELECT TO pgext_app
  USING (account_id = pgext.current_account());
CREATE POLICY account_read ON pgext.outbox FOR SELECT TO pgext_app
  USING (account_id = pgext.current_account());
CREATE POLICY account_read ON pgext.server_history FOR SELECT TO pgext_app
  USING (EXISTS (SELECT FROM pgext.servers s WHERE s.id = server_id AND s.account_id = pgext.current_account()));
CREATE POLICY account_read ON pgext.servers FOR SELECT TO pgext_app
  USING (account_id = pgext.current_account());
CREATE POLICY account_read ON pgext.stripe_purchases FOR SELECT TO pgext_app
  USING (account_id = pgext.current_account());
CREATE POLICY account_read ON pgext.stripe_subscriptions FOR SELECT TO pgext_app
  USING (account_id = pgext.current_account());

-- pgext_app reads its account's rows (the policies above filter them)
GRANT SELECT ON pgext.accounts, pgext.access_grants, pgext.credit_ledger, pgext.credit_lots,
  pgext.credit_reservations, pgext.health_checks, pgext.health_events, pgext.health_servers,
  pgext.health_status, pgext.outbox, pgext.server_history, pgext.server_status, pgext.servers,
  pgext.stripe_purchases, pgext.stripe_subscriptions
  TO pgext_app;

-- pgext_support: read-only support.  Every table and view except secrets
-- (ciphertext: support reads secret_catalog, without it), and the functions
-- that only read: balances, audits, status, what the views call.
GRANT USAGE ON SCHEMA pgext TO pgext_support;
GRANT SELECT ON pgext.accounts, pgext.access_grants, pgext.alerts, pgext.api_calls,
  pgext.credit_ledger, pgext.credit_lots, pgext.credit_reservations, pgext.health_breaker,
  pgext.health_checks, pgext.health_config, pgext.health_events, pgext.health_fleet,
  pgext.health_servers, pgext.health_status, pgext.hetzner_cold, pgext.hetzner_reconcile_runs,
  pgext.hetzner_seen, pgext.outbox, pgext.secret_audit, pgext.secret_catalog, pgext.server_history,
  pgext.server_orphans, pgext.server_status, pgext.server_transitions, pgext.servers,
  pgext.stripe_events_cursor, pgext.stripe_object_versions, pgext.stripe_prices,
  pgext.stripe_purchases, pgext.stripe_subscriptions, pgext.stripe_sync_requests,
  pgext.stripe_sync_runs, pgext.stripe_sync_status, pgext.stripe_unmatched, pgext.webhook_events,
  pgext.webhook_rejections, pgext.webhook_sources, pgext.worker_api_status, pgext.worker_lease,
  pgext.worker_status
  TO pgext_support;
GRANT EXECUTE ON FUNCTION
  pgext.billing_access(uuid, timestamptz),
  pgext.credit_audit(uuid),
  pgext.credit_balance(uuid),
  pgext.credit_verify(),
  pgext.health_config_version(),
  pgext.health_poller(),
  pgext.outbox_since(bigint, integer),
  pgext.secret_list(),
  pgext.server_status_of(uuid),
  pgext.worker_apis(),
  pgext.worker_queue_depth(text),
  pgext.worker_tasks()
  TO pgext_support;

-- Data rights (sql/install/data_rights.sql) and per-account key material
-- (sql/install/secrets.sql): the forget records are read by staff; the
-- salts only by pgext_admin (no policy for anyone else: no rows).
ALTER TABLE pgext.account_forgets ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgext.secret_account_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY staff_read ON pgext.account_forgets FOR SELECT TO pgext_admin, pgext_support USING (true);
CREATE POLICY staff_read ON pgext.secret_account_keys FOR SELECT TO pgext_admin USING (true);
GRANT SELECT ON pgext.account_forgets TO pgext_support;
GRANT EXECUTE ON FUNCTION pgext.account_export(uuid) TO pgext_support;
