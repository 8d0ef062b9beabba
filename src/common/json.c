/*
 * json.c — reading values out of parsed jsonb objects, for the modules that
 * take JSON apart in C (webhook intake, Stripe billing effects).  Every
 * function accepts a NULL container (and then finds nothing), so paths into
 * optional objects need no checks in between.  Results are palloc'd in the
 * current memory context.
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "common/digits.h"
#include "common/json.h"

/* Look key up in an object container; NULL if obj is NULL or key is absent. */
static JsonbValue *
JsonKey(JsonbContainer *obj, const char *key, JsonbValue *buf)
{
	if (obj == NULL || !JsonContainerIsObject(obj))
		return NULL;
	return getKeyJsonValueFromContainer(obj, key, strlen(key), buf);
}

/* Text value of a scalar (string, number, bool) under key, or NULL. */
char *
PgextJsonText(JsonbContainer *obj, const char *key)
{
	JsonbValue	buf;
	JsonbValue *v = JsonKey(obj, key, &buf);

	if (v == NULL)
		return NULL;
	switch (v->type)
	{
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		default:
			return NULL;
	}
}

/* The string under key, or NULL when it is absent or not a JSON string. */
char *
PgextJsonString(JsonbContainer *obj, const char *key)
{
	JsonbValue	buf;
	JsonbValue *v = JsonKey(obj, key, &buf);

	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * Read the text of a JSON number (numeric_out form: no exponent) as an
 * integer.  A fraction of zeros only is the same integer (1700000000.0 is
 * 1700000000); a fractional value, more than 18 digits or anything else is
 * refused.
 */
bool
PgextJsonIntegerText(const char *s, int64 *out)
{
	const char *p = s;
	bool		negative = false;
	int64_t		v;
	size_t		digits;

	if (s == NULL)
		return false;
	if (*p == '-')
	{
		negative = true;
		p++;
	}
	digits = strspn(p, "0123456789");
	if (!pgext_parse_digits(p, digits, 18, &v))
		return false;
	p += digits;
	if (*p == '.')
		for (p++; *p == '0'; p++)
			;
	if (*p != '\0')
		return false;
	*out = negative ? -v : v;
	return true;
}

/* Whether key holds a JSON number with an integer value; *out gets it. */
bool
PgextJsonInteger(JsonbContainer *obj, const char *key, int64 *out)
{
	JsonbValue	buf;
	JsonbValue *v = JsonKey(obj, key, &buf);

	if (v == NULL || v->type != jbvNumeric)
		return false;
	return PgextJsonIntegerText(DatumGetCString(DirectFunctionCall1(numeric_out,
																  NumericGetDatum(v->val.numeric))),
							  out);
}

/* Whether key holds a JSON boolean; *out gets it. */
bool
PgextJsonBool(JsonbContainer *obj, const char *key, bool *out)
{
	JsonbValue	buf;
	JsonbValue *v = JsonKey(obj, key, &buf);

	if (v == NULL || v->type != jbvBool)
		return false;
	*out = v->val.boolean;
	return true;
}

/* The object container under key, or NULL. */
JsonbContainer *
PgextJsonObject(JsonbContainer *obj, const char *key)
{
	JsonbValue	buf;
	JsonbValue *v = JsonKey(obj, key, &buf);

	if (v == NULL || v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		return NULL;
	return v->val.binary.data;
}

/* Follow nested object keys; the last one must hold a scalar. */
char *
PgextJsonPathText(JsonbContainer *obj, const char *const *path, int npath)
{
	int			i;

	for (i = 0; i < npath - 1 && obj != NULL; i++)
		obj = PgextJsonObject(obj, path[i]);
	return obj ? PgextJsonText(obj, path[npath - 1]) : NULL;
}
