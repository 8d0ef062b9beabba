------------------------------------------------------------------------------
-- Accounts (src/accounts.c)
------------------------------------------------------------------------------

-- balance      every credit the account holds and has not spent, reserved,
--              expired (as recorded by credit_sweep) or forfeited; always the
--              sum of the ledger's deltas.
-- lot_credits  the part of balance held in credit_lots (expiring grants and
--              plan allocations); balance - lot_credits is the non-expiring pool.
--
-- The checks of the profile columns are domains, not table CHECKs: a domain's
-- check runs when its column is assigned (account_create, the forget), while
-- a table CHECK is re-read and re-prepared by every statement that updates
-- the row, credit_deduct's balance update included (issue 14).  The balance
-- keeps its table CHECK, the last line of defence of every write; that
-- lot_credits stays within [0, balance] (and equals the lots' remaining
-- credits) is checked by pgext.credit_verify().
CREATE DOMAIN pgext.account_external_id AS text
  CONSTRAINT account_external_id_valid CHECK (VALUE <> '' AND pg_catalog.length(VALUE) <= 255);
CREATE DOMAIN pgext.account_credit_mode AS text
  CONSTRAINT account_credit_mode_valid CHECK (VALUE IN ('metered', 'unlimited'));
CREATE TABLE pgext.accounts (
  id                 uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
  external_id        pgext.account_external_id NOT NULL UNIQUE,
  credit_mode        pgext.account_credit_mode NOT NULL DEFAULT 'metered',
  stripe_customer_id text UNIQUE,
  balance            bigint NOT NULL DEFAULT 0,
  lot_credits        bigint NOT NULL DEFAULT 0,
  created_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
  CONSTRAINT accounts_balance_nonnegative CHECK (balance >= 0)
);

CREATE FUNCTION pgext.account_create(external_id text, credit_mode text DEFAULT 'metered')
RETURNS uuid AS 'MODULE_PATHNAME', 'account_create'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

CREATE FUNCTION pgext.account_set_credit_mode(account uuid, credit_mode text)
RETURNS void AS 'MODULE_PATHNAME', 'account_set_credit_mode'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

CREATE FUNCTION pgext.account_set_stripe_customer(account uuid, customer_id text)
RETURNS void AS 'MODULE_PATHNAME', 'account_set_stripe_customer'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

REVOKE ALL ON pgext.accounts FROM PUBLIC;
REVOKE ALL ON FUNCTION
  pgext.account_create(text, text),
  pgext.account_set_credit_mode(uuid, text),
  pgext.account_set_stripe_customer(uuid, text)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  pgext.account_create(text, text),
  pgext.account_set_stripe_customer(uuid, text)
  TO pgext_app, pgext_admin;
GRANT EXECUTE ON FUNCTION pgext.account_set_credit_mode(uuid, text) TO pgext_admin;
GRANT SELECT ON pgext.accounts TO pgext_admin;

-- Tables holding state are configuration tables, so pg_dump keeps their
-- rows (extension members are otherwise dumped empty); identity sequences
-- too, so restored ids never collide with new ones (sql/backups.sql checks).
SELECT pg_catalog.pg_extension_config_dump('pgext.accounts', '');
