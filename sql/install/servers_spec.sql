------------------------------------------------------------------------------
-- Server specs (src/servers/spec.c, src/servers/cloudinit.c)
------------------------------------------------------------------------------

-- The check every server request runs before anything is queued: the whole
-- spec, including cloud-init user_data parsed with libyaml.  It reads and
-- writes nothing, so it is a plain IMMUTABLE function (not SECURITY DEFINER);
-- the path is pinned anyway, like every pgext function.
CREATE FUNCTION pgext.server_spec_check(spec jsonb)
RETURNS jsonb AS 'MODULE_PATHNAME', 'server_spec_check'
LANGUAGE C IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pgext, pg_temp;
COMMENT ON FUNCTION pgext.server_spec_check(jsonb) IS
  'Checks a server spec and returns it unchanged: server_type, image, locations (required); '
  'user_data (#cloud-config YAML or #! script, <= 32768 bytes of UTF-8), labels (Hetzner rules; '
  'managed-by and pgext-* reserved), health, ssh_keys (optional; null = absent); datacenter and '
  'unknown fields refused.  Errors: 22023 naming the field (user_data: line and column), 22004 for NULL.';

-- The user_data rules on raw bytes: a jsonb string is always valid text, so
-- this is how an app (or a test) checks bytes before putting them in a spec.
CREATE FUNCTION pgext.server_user_data_check(user_data bytea)
RETURNS void AS 'MODULE_PATHNAME', 'server_user_data_check'
LANGUAGE C IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pgext, pg_temp;
COMMENT ON FUNCTION pgext.server_user_data_check(bytea) IS
  'Checks cloud-init user_data bytes (the rules of server_spec_check''s user_data); 22023 with '
  'line and column when they are refused, 22004 for NULL.';

REVOKE ALL ON FUNCTION
  pgext.server_spec_check(jsonb),
  pgext.server_user_data_check(bytea)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  pgext.server_spec_check(jsonb),
  pgext.server_user_data_check(bytea)
  TO pgext_app, pgext_admin;

