/*
 * jsonparse.c — a delivery body to jsonb without a subtransaction.
 *
 * jsonb_in raises an error for a body it refuses, so webhook intake used to
 * call it inside a subtransaction to turn that error into a 'malformed'
 * status.  PostgreSQL 15's JSON parser (common/jsonapi.c, pg_parse_json)
 * returns its syntax and escape errors instead of raising them, so this file
 * builds the jsonb with it directly, with the same semantic actions as
 * jsonb_in (utils/adt/jsonb.c: jsonb_in_*), giving the same value.  What can
 * still raise inside jsonb_in is decided before or during the walk and then
 * left to the caller's subtransaction path (*fallback): nesting deep enough
 * for check_stack_depth (bounded by counting '{' and '['), and numbers
 * numeric_in could refuse (an exponent beyond +-1000 or a very long token).
 * A Stripe event has neither.
 */
#include "postgres.h"

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "webhooks/webhooks.h"

/* More '{' and '[' than this (anywhere, even in strings): leave it to jsonb_in. */
#define MAX_FAST_CONTAINERS 1000
/* numeric_in refuses exponents beyond NUMERIC_MAX_PRECISION (1000). */
#define MAX_FAST_EXPONENT 1000
/* Longer number tokens could overflow numeric's scale: leave them to jsonb_in. */
#define MAX_FAST_NUMBER_LEN 500

typedef struct ParseState
{
	JsonbParseState *parse_state;
	JsonbValue *res;
	bool		fallback;		/* a number numeric_in might refuse was seen */
} ParseState;

/* Object start (jsonb_in_object_start). */
static void
ObjectStart(void *pstate)
{
	ParseState *s = (ParseState *) pstate;

	s->res = pushJsonbValue(&s->parse_state, WJB_BEGIN_OBJECT, NULL);
}

/* Object end (jsonb_in_object_end). */
static void
ObjectEnd(void *pstate)
{
	ParseState *s = (ParseState *) pstate;

	s->res = pushJsonbValue(&s->parse_state, WJB_END_OBJECT, NULL);
}

/* Array start (jsonb_in_array_start). */
static void
ArrayStart(void *pstate)
{
	ParseState *s = (ParseState *) pstate;

	s->res = pushJsonbValue(&s->parse_state, WJB_BEGIN_ARRAY, NULL);
}

/* Array end (jsonb_in_array_end). */
static void
ArrayEnd(void *pstate)
{
	ParseState *s = (ParseState *) pstate;

	s->res = pushJsonbValue(&s->parse_state, WJB_END_ARRAY, NULL);
}

/* A key (jsonb_in_object_field_start; its length is far below jsonb's limit). */
static void
FieldStart(void *pstate, char *fname, bool isnull)
{
	ParseState *s = (ParseState *) pstate;
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.len = strlen(fname);
	v.val.string.val = fname;
	s->res = pushJsonbValue(&s->parse_state, WJB_KEY, &v);
}

/*
 * Whether numeric_in surely accepts a JSON number token: not too long, and
 * an exponent, if any, within numeric's range.
 */
static bool
NumberIsSafe(const char *token)
{
	const char *e;
	int			exponent = 0;

	if (strlen(token) > MAX_FAST_NUMBER_LEN)
		return false;
	e = strpbrk(token, "eE");
	if (e == NULL)
		return true;
	e++;
	if (*e == '+' || *e == '-')
		e++;
	for (; *e >= '0' && *e <= '9'; e++)
	{
		exponent = exponent * 10 + (*e - '0');
		if (exponent > MAX_FAST_EXPONENT)
			return false;
	}
	return true;
}

/* A scalar (jsonb_in_scalar). */
static void
Scalar(void *pstate, char *token, JsonTokenType tokentype)
{
	ParseState *s = (ParseState *) pstate;
	JsonbValue	v;

	switch (tokentype)
	{
		case JSON_TOKEN_STRING:
			v.type = jbvString;
			v.val.string.len = strlen(token);
			v.val.string.val = token;
			break;
		case JSON_TOKEN_NUMBER:
			if (!NumberIsSafe(token))
			{
				/* keep the structure consistent; the result is thrown away */
				s->fallback = true;
				v.type = jbvNull;
				break;
			}
			v.type = jbvNumeric;
			v.val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(token),
																ObjectIdGetDatum(InvalidOid),
																Int32GetDatum(-1)));
			break;
		case JSON_TOKEN_TRUE:
			v.type = jbvBool;
			v.val.boolean = true;
			break;
		case JSON_TOKEN_FALSE:
			v.type = jbvBool;
			v.val.boolean = false;
			break;
		case JSON_TOKEN_NULL:
			v.type = jbvNull;
			break;
		default:
			elog(ERROR, "invalid json token type");
			break;
	}
	if (s->parse_state == NULL)
	{
		/* a lone scalar: a raw scalar array, as jsonb_in makes it */
		JsonbValue	va;

		va.type = jbvArray;
		va.val.array.rawScalar = true;
		va.val.array.nElems = 1;
		s->res = pushJsonbValue(&s->parse_state, WJB_BEGIN_ARRAY, &va);
		s->res = pushJsonbValue(&s->parse_state, WJB_ELEM, &v);
		s->res = pushJsonbValue(&s->parse_state, WJB_END_ARRAY, NULL);
	}
	else if (s->parse_state->contVal.type == jbvArray)
		s->res = pushJsonbValue(&s->parse_state, WJB_ELEM, &v);
	else
		s->res = pushJsonbValue(&s->parse_state, WJB_VALUE, &v);
}

/* Whether the body has few enough '{' and '[' that no nesting can reach the stack limit. */
static bool
FewContainers(const char *s, int len)
{
	int			n = 0;
	int			i;

	for (i = 0; i < len; i++)
		n += (s[i] == '{') | (s[i] == '[');
	return n <= MAX_FAST_CONTAINERS;
}

/* See webhooks.h. */
Jsonb *
WebhookParseJsonb(char *cstr, int len, bool *fallback)
{
	JsonLexContext *lex;
	JsonSemAction sem;
	ParseState	state;

	*fallback = false;
	if (!FewContainers(cstr, len))
	{
		*fallback = true;
		return NULL;
	}
	memset(&state, 0, sizeof(state));
	memset(&sem, 0, sizeof(sem));
	sem.semstate = &state;
	sem.object_start = ObjectStart;
	sem.object_end = ObjectEnd;
	sem.array_start = ArrayStart;
	sem.array_end = ArrayEnd;
	sem.object_field_start = FieldStart;
	sem.scalar = Scalar;
	lex = makeJsonLexContextCstringLen(cstr, len, GetDatabaseEncoding(), true);
	if (pg_parse_json(lex, &sem) != JSON_SUCCESS)
		return NULL;			/* what jsonb_in refuses with a data exception */
	if (state.fallback)
	{
		*fallback = true;
		return NULL;
	}
	return JsonbValueToJsonb(state.res);
}
