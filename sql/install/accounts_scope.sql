
------------------------------------------------------------------------------
-- Tenant isolation: a transaction bound to one account (src/accounts_scope.c)
------------------------------------------------------------------------------

-- Bind this transaction to an account: the row-level security policies then
-- show the caller that account's rows only, and account-scoped functions
-- refuse any other account (42501).  The binding ends with the transaction
-- (safe behind transaction-mode poolers); outside BEGIN it covers the
-- statement's own transaction only.  NULL 22004, unknown account PX001,
-- another account in the same transaction 42501.
CREATE FUNCTION pgext.set_account(account uuid) RETURNS uuid
AS 'MODULE_PATHNAME', 'set_account'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp;

-- The account this transaction acts for (NULL: not bound).  The policies read
-- it for every row, so it pins no search_path: plain C, not SECURITY
-- DEFINER, it runs no SQL and resolves no name (a SET clause would cost a GUC
-- save/restore per row).
CREATE FUNCTION pgext.current_account() RETURNS uuid
AS 'MODULE_PATHNAME', 'current_account'
LANGUAGE C STABLE PARALLEL RESTRICTED;

-- Internal, for pgext's SQL and PL/pgSQL functions (they call them as the
-- owner): refuse an account-scoped call for another account than the bound
-- one (NULL: a call for all accounts or the platform, refused while bound);
-- refuse a platform-level call while bound; whether a listing may show a row
-- of an account to the caller.
CREATE FUNCTION pgext.account_scope_check(account uuid) RETURNS void
AS 'MODULE_PATHNAME', 'account_scope_check'
LANGUAGE C STABLE SET search_path = pg_catalog, pgext, pg_temp;
CREATE FUNCTION pgext.account_scope_platform(what text) RETURNS void
AS 'MODULE_PATHNAME', 'account_scope_platform'
LANGUAGE C STABLE SET search_path = pg_catalog, pgext, pg_temp;
CREATE FUNCTION pgext.account_scope_visible(account uuid) RETURNS boolean
AS 'MODULE_PATHNAME', 'account_scope_visible'
LANGUAGE C STABLE SET search_path = pg_catalog, pgext, pg_temp;

REVOKE ALL ON FUNCTION
  pgext.set_account(uuid),
  pgext.current_account(),
  pgext.account_scope_check(uuid),
  pgext.account_scope_platform(text),
  pgext.account_scope_visible(uuid)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgext.set_account(uuid), pgext.current_account()
  TO pgext_app, pgext_admin, pgext_support, pgext_secret_reader, pgext_secret_writer;
