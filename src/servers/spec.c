/*
 * spec.c — the server spec check: server_spec_check(jsonb) and
 * server_user_data_check(bytea).
 *
 * A spec is checked whole before anything is queued, so a request either
 * names a server Hetzner can create or is refused with the field named.
 * Nothing is read or written: the functions are IMMUTABLE.  The spec is
 * returned unchanged (jsonb has already normalized key order and spacing),
 * so what is stored is what the caller sent.
 *
 * Fields: server_type, image, locations (required); user_data, labels,
 * health, ssh_keys (optional; JSON null counts as absent).  datacenter and
 * any other key are refused.
 */
#include "postgres.h"

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "servers/cloudinit.h"
#include "servers/labels.h"
#include "servers/spec.h"

PG_FUNCTION_INFO_V1(server_spec_check);
PG_FUNCTION_INFO_V1(server_user_data_check);

/* Longest piece of a caller's value quoted back in a message. */
#define QUOTE_MAX_LEN 64

#define SPEC_FIELDS "server_type, image, locations, user_data, labels, health, ssh_keys"

/* Raise the spec error every check uses: 22023 with message and hint. */
#define SPEC_ERROR(hint, ...) \
	ereport(ERROR, \
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE), \
			 errmsg(__VA_ARGS__), \
			 errhint("%s", (hint))))

/* A caller's string cut to QUOTE_MAX_LEN bytes (at a character boundary) for a message. */
static char *
Quoted(const char *s, int len)
{
	int			n = len;

	if (n > QUOTE_MAX_LEN)
	{
		n = pg_mbcliplen(s, len, QUOTE_MAX_LEN);
		return psprintf("%.*s...", n, s);
	}
	return pnstrdup(s, n);
}

/* Name of a jsonb value's type for messages. */
static const char *
TypeName(const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return "null";
		case jbvString:
			return "a string";
		case jbvNumeric:
			return "a number";
		case jbvBool:
			return "a boolean";
		case jbvBinary:
			return JsonContainerIsArray(v->val.binary.data) ? "an array" : "an object";
		case jbvArray:
			return "an array";
		case jbvObject:
			return "an object";
		default:
			return "a JSON value";
	}
}

/* Whether v is a container of the given kind (object or array). */
static bool
IsContainer(const JsonbValue *v, bool array)
{
	if (v->type != jbvBinary)
		return false;
	return array ? JsonContainerIsArray(v->val.binary.data) :
		JsonContainerIsObject(v->val.binary.data);
}

/*
 * A Hetzner name (server type, image, location): 1..63 characters of
 * [a-z0-9._-], starting with a letter or digit.
 */
static void
CheckName(const char *field, const JsonbValue *v, const char *example)
{
	const char *s;
	int			len;
	int			bad;

	if (v->type != jbvString)
		SPEC_ERROR(psprintf("Pass the Hetzner name as a JSON string, e.g. \"%s\".", example),
				   "%s must be a string, not %s", field, TypeName(v));
	s = v->val.string.val;
	len = v->val.string.len;
	switch (hetzner_name_check(s, len, &bad))
	{
		case HETZNER_NAME_OK:
			break;
		case HETZNER_NAME_EMPTY:
			SPEC_ERROR(psprintf("Pass the Hetzner name, e.g. \"%s\".", example),
					   "%s must not be empty", field);
			break;
		case HETZNER_NAME_TOO_LONG:
			SPEC_ERROR(psprintf("Pass the Hetzner name, e.g. \"%s\".", example),
					   "%s is longer than %d characters", field, HETZNER_NAME_MAX_LEN);
			break;
		case HETZNER_NAME_BAD_CHAR:
			SPEC_ERROR(psprintf("Hetzner names are lowercase letters, digits, '.', '_' and '-', starting with a letter or digit, e.g. \"%s\".",
								example),
					   "%s \"%s\" contains an invalid character at position %d",
					   field, Quoted(s, len), bad + 1);
			break;
	}
}

/* locations: a non-empty array of distinct location names, at most 10. */
static void
CheckLocations(const JsonbValue *v)
{
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken tok;
	int			n = 0;
	int			count;
	char	  **seen;

	if (!IsContainer(v, true))
		SPEC_ERROR("Pass an array of Hetzner locations in the order to try them, e.g. [\"fsn1\", \"nbg1\"].",
				   "locations must be an array, not %s", TypeName(v));
	count = JsonContainerSize(v->val.binary.data);
	if (count == 0)
		SPEC_ERROR("Name at least one location, e.g. [\"fsn1\"].", "locations must not be empty");
	if (count > PGEXT_SPEC_MAX_LOCATIONS)
		SPEC_ERROR("Keep the fallback list short: the first locations with capacity are the ones that matter.",
				   "locations lists %d locations; at most %d are allowed", count, PGEXT_SPEC_MAX_LOCATIONS);
	seen = palloc0(sizeof(char *) * count);
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
	{
		char	   *field;
		int			j;

		if (tok != WJB_ELEM)
			continue;
		field = psprintf("locations[%d]", n);
		CheckName(field, &e, "fsn1");
		seen[n] = pnstrdup(e.val.string.val, e.val.string.len);
		for (j = 0; j < n; j++)
			if (strcmp(seen[j], seen[n]) == 0)
				SPEC_ERROR("List each location once, in the order to try them.",
						   "locations lists \"%s\" twice (locations[%d] and locations[%d])",
						   seen[n], j, n);
		n++;
	}
}

/* user_data as the worker will send it: UTF-8 bytes, then the cloud-init rules. */
void
PgextUserDataCheck(const char *data, size_t len)
{
	CloudInitError err;

	if (!pgext_cloudinit_check(data, len, &err))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid user_data at line %d, column %d: %s",
						err.line, err.column, err.message),
				 errhint("%s", err.hint)));
}

/* user_data: a string, checked in UTF-8 (what Hetzner receives). */
static void
CheckUserData(const JsonbValue *v)
{
	char	   *s;
	char	   *utf8;

	if (v->type != jbvString)
		SPEC_ERROR("Pass the cloud-init user data as one JSON string starting with \"#cloud-config\" or \"#!\".",
				   "user_data must be a string, not %s", TypeName(v));
	s = pnstrdup(v->val.string.val, v->val.string.len);
	utf8 = (char *) pg_server_to_any(s, v->val.string.len, PG_UTF8);
	PgextUserDataCheck(utf8, strlen(utf8));
}

/* labels: an object of string values, under Hetzner's label rules. */
static void
CheckLabels(const JsonbValue *v)
{
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken tok;
	char	   *key = NULL;
	int			klen = 0;

	if (!IsContainer(v, false))
		SPEC_ERROR("Pass labels as a JSON object of strings, e.g. {\"app\": \"agent\"}.",
				   "labels must be an object, not %s", TypeName(v));
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			key = e.val.string.val;
			klen = e.val.string.len;
			switch (label_key_check(key, klen))
			{
				case LABEL_KEY_OK:
					break;
				case LABEL_KEY_BAD_PREFIX:
					SPEC_ERROR("A label key prefix is a DNS subdomain (lowercase letters, digits, '-' and '.', at most 253 characters) followed by '/', e.g. \"example.com/role\".",
							   "label key \"%s\" has an invalid prefix", Quoted(key, klen));
					break;
				case LABEL_KEY_BAD_NAME:
					SPEC_ERROR("A label name is 1 to 63 characters of letters, digits, '.', '_' and '-', starting and ending with a letter or digit, optionally after a DNS prefix and '/'.",
							   "label key \"%s\" is not a valid Hetzner label key", Quoted(key, klen));
					break;
				case LABEL_KEY_RESERVED:
					SPEC_ERROR("pgext sets \"" PGEXT_LABEL_MANAGED_BY "\", \"" PGEXT_LABEL_ACCOUNT "\" and \"" PGEXT_LABEL_SERVER "\" on every server it creates; keys \"" PGEXT_LABEL_MANAGED_BY "\" and \"" PGEXT_LABEL_RESERVED_PREFIX "*\" are reserved. Use another key.",
							   "label key \"%s\" is reserved by pgext", Quoted(key, klen));
					break;
			}
		}
		else if (tok == WJB_VALUE)
		{
			if (e.type != jbvString)
				SPEC_ERROR("Hetzner label values are strings: quote the value.",
						   "label \"%s\" must have a string value, not %s",
						   Quoted(key, klen), TypeName(&e));
			if (!label_part_valid(e.val.string.val, e.val.string.len, true))
				SPEC_ERROR("A label value is empty or 1 to 63 characters of letters, digits, '.', '_' and '-', starting and ending with a letter or digit.",
						   "label \"%s\" has an invalid value \"%s\"",
						   Quoted(key, klen), Quoted(e.val.string.val, e.val.string.len));
		}
	}
}

/* One health check: an object with a url string (the rest is the health module's). */
static void
CheckHealthEntry(const JsonbValue *v, const char *field)
{
	JsonbValue *url;

	if (!IsContainer(v, false))
		SPEC_ERROR("A health check is an object such as {\"url\": \"http://{ipv4}:8080/health\"}.",
				   "%s must be an object, not %s", field, TypeName(v));
	url = getKeyJsonValueFromContainer(v->val.binary.data, "url", 3, NULL);
	if (url == NULL || url->type != jbvString || url->val.string.len == 0)
		SPEC_ERROR("Give every health check the URL to poll as a string in \"url\".",
				   "%s needs a \"url\" string", field);
}

/* health: one check (an object) or an array of them; passed through. */
static void
CheckHealth(const JsonbValue *v)
{
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken tok;
	int			n = 0;

	if (IsContainer(v, false))
	{
		CheckHealthEntry(v, "health");
		return;
	}
	if (!IsContainer(v, true))
		SPEC_ERROR("Pass health as an object with a \"url\", or an array of such objects.",
				   "health must be an object or an array, not %s", TypeName(v));
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
		if (tok == WJB_ELEM)
			CheckHealthEntry(&e, psprintf("health[%d]", n++));
}

/* ssh_keys: an array of Hetzner SSH key names (strings) or ids (positive integers). */
static void
CheckSshKeys(const JsonbValue *v)
{
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken tok;
	int			n = 0;
	const char *hint = "Name SSH keys stored in the Hetzner project, by name (a string) or id, e.g. [\"deploy\"].";

	if (!IsContainer(v, true))
		SPEC_ERROR(hint, "ssh_keys must be an array, not %s", TypeName(v));
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		if (e.type == jbvString)
		{
			if (e.val.string.len == 0 || e.val.string.len > 255)
				SPEC_ERROR(hint, "ssh_keys[%d] must be 1 to 255 characters", n);
		}
		else if (e.type == jbvNumeric)
		{
			Numeric		num = e.val.numeric;
			char	   *text = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(num)));
			int			i;

			for (i = 0; text[i]; i++)
				if (text[i] < '0' || text[i] > '9')
					break;
			if (text[i] != '\0' || i == 0 || i > 18 || strspn(text, "0") == (size_t) i)
				SPEC_ERROR(hint, "ssh_keys[%d] must be a key name or a positive integer id, not %s",
						   n, text);
		}
		else
			SPEC_ERROR(hint, "ssh_keys[%d] must be a string or an integer, not %s", n, TypeName(&e));
		n++;
	}
}

/*
 * Walk the spec's top-level keys once, checking each known field and
 * refusing unknown ones, then require server_type, image and locations.
 */
void
PgextServerSpecCheck(Jsonb *spec)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;
	bool		has_type = false;
	bool		has_image = false;
	bool		has_locations = false;

	if (!JB_ROOT_IS_OBJECT(spec))
		SPEC_ERROR("Pass an object such as {\"server_type\": \"cx22\", \"image\": \"ubuntu-24.04\", \"locations\": [\"fsn1\"]}.",
				   "spec must be a JSON object, not %s",
				   JB_ROOT_IS_SCALAR(spec) ? "a scalar" : "an array");
	it = JsonbIteratorInit(&spec->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			key = pnstrdup(v.val.string.val, v.val.string.len);
			continue;
		}
		if (tok != WJB_VALUE)
			continue;
		if (strcmp(key, "server_type") == 0)
		{
			CheckName("server_type", &v, "cx22");
			has_type = true;
		}
		else if (strcmp(key, "image") == 0)
		{
			CheckName("image", &v, "ubuntu-24.04");
			has_image = true;
		}
		else if (strcmp(key, "locations") == 0)
		{
			CheckLocations(&v);
			has_locations = true;
		}
		else if (v.type == jbvNull &&
				 (strcmp(key, "user_data") == 0 || strcmp(key, "labels") == 0 ||
				  strcmp(key, "health") == 0 || strcmp(key, "ssh_keys") == 0))
			continue;			/* an optional field left out */
		else if (strcmp(key, "user_data") == 0)
			CheckUserData(&v);
		else if (strcmp(key, "labels") == 0)
			CheckLabels(&v);
		else if (strcmp(key, "health") == 0)
			CheckHealth(&v);
		else if (strcmp(key, "ssh_keys") == 0)
			CheckSshKeys(&v);
		else if (strcmp(key, "datacenter") == 0)
			SPEC_ERROR("Name the location instead, e.g. \"locations\": [\"fsn1\"] for fsn1-dc14; pgext never sends datacenter.",
					   "spec field \"datacenter\" is not accepted: Hetzner removed it from the API");
		else if (strcmp(key, "location") == 0)
			SPEC_ERROR("Use \"locations\": an array in the order to try them, e.g. [\"fsn1\", \"nbg1\"].",
					   "spec field \"location\" is not accepted");
		else
			SPEC_ERROR("A spec has the fields " SPEC_FIELDS ".",
					   "unknown spec field \"%s\"", Quoted(key, strlen(key)));
	}
	if (!has_type)
		SPEC_ERROR("Name the Hetzner server type, e.g. \"server_type\": \"cx22\".",
				   "spec field \"server_type\" is required");
	if (!has_image)
		SPEC_ERROR("Name the Hetzner image, e.g. \"image\": \"ubuntu-24.04\".",
				   "spec field \"image\" is required");
	if (!has_locations)
		SPEC_ERROR("List the Hetzner locations to try, in order, e.g. \"locations\": [\"fsn1\", \"nbg1\"].",
				   "spec field \"locations\" is required");
}

/*
 * server_spec_check(spec jsonb) RETURNS jsonb: the spec, unchanged, when it
 * is valid; 22023 naming the field otherwise, 22004 for NULL.
 */
Datum
server_spec_check(PG_FUNCTION_ARGS)
{
	Jsonb	   *spec;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("spec must not be NULL"),
				 errhint("Pass an object such as {\"server_type\": \"cx22\", \"image\": \"ubuntu-24.04\", \"locations\": [\"fsn1\"]}.")));
	spec = PG_GETARG_JSONB_P(0);
	PgextServerSpecCheck(spec);
	PG_RETURN_JSONB_P(spec);
}

/*
 * server_user_data_check(user_data bytea) RETURNS void: the user_data rules
 * on raw bytes (which a jsonb string, always valid text, cannot carry).
 */
Datum
server_user_data_check(PG_FUNCTION_ARGS)
{
	bytea	   *data;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("user_data must not be NULL"),
				 errhint("Pass the user data bytes, e.g. convert_to(text, 'UTF8').")));
	data = PG_GETARG_BYTEA_PP(0);
	PgextUserDataCheck(VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data));
	PG_RETURN_VOID();
}
