-- Stand-in for the secret store (issue #3) while it is not merged: same
-- contract (secret_set / secret_get / secret_delete); skipped entirely once
-- the real pgext.secret_get exists.
DO $stub$
BEGIN
  IF pg_catalog.to_regprocedure('pgext.secret_get(text,uuid)') IS NOT NULL THEN
    RETURN;
  END IF;
  CREATE TABLE pgext.test_secret_stub (name text PRIMARY KEY, value text NOT NULL);
  CREATE FUNCTION pgext.secret_set(name text, value text, account uuid DEFAULT NULL,
                                   expires_at timestamptz DEFAULT NULL) RETURNS uuid
  LANGUAGE sql AS $f$
    INSERT INTO pgext.test_secret_stub VALUES ($1, $2)
    ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value;
    SELECT pg_catalog.gen_random_uuid();
  $f$;
  CREATE FUNCTION pgext.secret_get(name text, account uuid DEFAULT NULL) RETURNS text
  LANGUAGE plpgsql AS $f$
  DECLARE v text;
  BEGIN
    SELECT s.value INTO v FROM pgext.test_secret_stub s WHERE s.name = $1;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'secret "%" does not exist', $1 USING ERRCODE = 'P0002';
    END IF;
    RETURN v;
  END
  $f$;
  CREATE FUNCTION pgext.secret_delete(name text, account uuid DEFAULT NULL) RETURNS boolean
  LANGUAGE sql AS $f$
    WITH d AS (DELETE FROM pgext.test_secret_stub s WHERE s.name = $1 RETURNING 1)
    SELECT pg_catalog.count(*) > 0 FROM d;
  $f$;
END
$stub$;
