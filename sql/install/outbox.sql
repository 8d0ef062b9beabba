------------------------------------------------------------------------------
-- Outbox: one table for every change apps react to (billing, servers,
-- operator access grants); written by the capabilities that follow
------------------------------------------------------------------------------

-- Each insert is announced with NOTIFY pgext_outbox, '<kind>:<id>' (delivered
-- at commit); apps then read the rows after the last id they processed
-- (outbox_since).  Columns a kind does not use stay NULL.
CREATE TABLE pgext.outbox (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account_id      uuid NOT NULL,
  kind            text NOT NULL,
  subscription_id text,
  server_id       bigint,
  until           timestamptz,
  event_id        text,
  detail          text,
  created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
  CONSTRAINT outbox_kind_valid CHECK (kind IN (
    -- billing
    'payment_failed', 'access_ending', 'access_ended', 'grace_expired',
    -- servers
    'server_active', 'server_failed', 'server_paused', 'server_resumed',
    'server_deleting', 'server_deleted',
    -- access granted by an operator
    'access_granted', 'access_grant_ended',
    -- Stripe sync: a fetched subscription changed pgext's record of it
    'subscription_synced',
    -- fleet health: the agent's state changed, or it is being restarted
    'agent_healthy', 'agent_unhealthy', 'agent_degraded', 'agent_restarting'))
);
CREATE INDEX outbox_account ON pgext.outbox (account_id, id);

CREATE FUNCTION pgext.outbox_notify() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pgext, pg_temp AS $$
BEGIN
  PERFORM pg_catalog.pg_notify('pgext_outbox', NEW.kind || ':' || NEW.id);
  RETURN NULL;
END
$$;
CREATE TRIGGER outbox_notify AFTER INSERT ON pgext.outbox
  FOR EACH ROW EXECUTE FUNCTION pgext.outbox_notify();

-- Outbox rows after a given id, oldest first, for apps that poll (or wake on
-- NOTIFY): remember the last id processed and pass it next time.
CREATE FUNCTION pgext.outbox_since(after_id bigint DEFAULT 0, "limit" integer DEFAULT 100)
RETURNS SETOF pgext.outbox
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
BEGIN
  IF $2 IS NULL OR $2 < 1 OR $2 > 10000 THEN
    RAISE EXCEPTION 'limit must be between 1 and 10000, got %', COALESCE($2::pg_catalog.text, 'NULL')
      USING ERRCODE = '22023',
            HINT = 'Call outbox_since repeatedly with the last id you processed to page through more rows.';
  END IF;
  -- bound by pgext.set_account: that account's rows only
  RETURN QUERY SELECT * FROM pgext.outbox o
    WHERE o.id > COALESCE($1, 0)
      AND (pgext.current_account() IS NULL OR o.account_id = pgext.current_account())
    ORDER BY o.id LIMIT $2;
END
$$;

REVOKE ALL ON pgext.outbox FROM PUBLIC;
REVOKE ALL ON FUNCTION
  pgext.outbox_notify(),
  pgext.outbox_since(bigint, integer)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgext.outbox_since(bigint, integer) TO pgext_app, pgext_admin;
GRANT SELECT ON pgext.outbox TO pgext_admin;

-- A configuration table, so pg_dump keeps its rows, and its identity
-- sequence, so restored ids never collide with new ones (sql/backups.sql checks).
SELECT pg_catalog.pg_extension_config_dump('pgext.outbox', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('pgext.outbox', 'id'), '');
