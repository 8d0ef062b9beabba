------------------------------------------------------------------------------
-- Servers stand-ins (TEMPORARY): minimal versions of what other slices of
-- issue 9 build (server_spec_check, account_server_desired).
-- This file goes as soon as main has the real ones.
------------------------------------------------------------------------------

CREATE FUNCTION pgext.server_spec_check(spec jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pgext, pg_temp AS $$
BEGIN
  IF pg_catalog.jsonb_typeof($1) IS DISTINCT FROM 'object'
     OR pg_catalog.jsonb_typeof($1 -> 'server_type') IS DISTINCT FROM 'string'
     OR pg_catalog.jsonb_typeof($1 -> 'image') IS DISTINCT FROM 'string'
     OR pg_catalog.jsonb_typeof($1 -> 'locations') IS DISTINCT FROM 'array'
     OR pg_catalog.jsonb_array_length($1 -> 'locations') = 0
     OR $1 ? 'datacenter' THEN
    RAISE EXCEPTION 'invalid server spec' USING ERRCODE = '22023';
  END IF;
  RETURN $1;
END
$$;

CREATE FUNCTION pgext.account_server_desired(account uuid, paused_since timestamptz DEFAULT NULL,
                                             at timestamptz DEFAULT pg_catalog.now())
RETURNS TABLE (desired_state text, reason text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgext, pg_temp AS $$
  SELECT CASE WHEN b.access <> 'none' THEN 'active'
              WHEN EXISTS (SELECT FROM pgext.stripe_subscriptions s
                            WHERE s.account_id = $1 AND s.status IN ('unpaid', 'past_due'))
                   AND ($2 IS NULL OR $2 > $3 - interval '14 days') THEN 'paused'
              ELSE 'deleting' END,
         CASE WHEN b.access <> 'none' THEN b.access
              WHEN EXISTS (SELECT FROM pgext.stripe_subscriptions s
                            WHERE s.account_id = $1 AND s.status IN ('unpaid', 'past_due'))
                   AND ($2 IS NULL OR $2 > $3 - interval '14 days') THEN 'payment failed'
              ELSE 'no billing access' END
    FROM pgext.billing_access($1, $3) b
$$;

REVOKE ALL ON FUNCTION pgext.server_spec_check(jsonb),
  pgext.account_server_desired(uuid, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgext.server_spec_check(jsonb),
  pgext.account_server_desired(uuid, timestamptz, timestamptz) TO pgext_app, pgext_admin;
