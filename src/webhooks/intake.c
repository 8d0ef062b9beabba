/*
 * intake.c — webhook intake: signature verification, parsing, dedup.
 *
 * webhook_ingest() is the hot path an app's HTTP handler calls with the raw
 * body and signature header.  It verifies the HMAC (signing.c: a keyed
 * OpenSSL EVP_MAC per backend over the secret store, CRYPTO_memcmp), checks the
 * timestamp tolerance, parses the body into jsonb (jsonparse.c, without a
 * subtransaction), and records the event once per (source, event id).  It
 * pins its own search path (PgextPinSearchPath, common/searchpath.c) instead
 * of a SET clause.  Every rejection is a status plus a row in
 * pgext.webhook_rejections (no payload, no secret), never an exception.  Applying events to state is webhook_apply (apply.c).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "accounts_scope.h"

#include "common/args.h"
#include "common/json.h"
#include "common/result.h"
#include "common/searchpath.h"
#include "common/spi.h"
#include "common/subxact.h"
#include "common/wake.h"
#include "webhooks/sigparse.h"
#include "webhooks/signing.h"
#include "webhooks/webhooks.h"

PG_FUNCTION_INFO_V1(webhook_ingest);

int			pgext_webhook_tolerance = 300;
int			pgext_webhook_payload_retention = 30 * 86400;
int			pgext_webhook_dedup_retention = 30 * 86400;
int			pgext_webhook_max_attempts = 8;
bool		pgext_stripe_livemode = false;

#define STRIPE_SECRET "webhook:stripe"
#define MAX_EVENT_ID_LEN 255
/* 9999-12-31 23:59:59 UTC: the latest "created" taken as a unix time. */
#define MAX_UNIX_TIME INT64CONST(253402300799)
/* How far a caller's received_at may be from now() unless it is a superuser. */
#define RECEIVED_AT_SLACK_S 5
/* Larger bodies are refused before any work (Stripe events are far smaller). */
#define MAX_PAYLOAD_BYTES (1024 * 1024)

/* How one source signs its deliveries. */
typedef struct SourceConfig
{
	bool		is_stripe;
	char	   *secret_name;
	bool		timestamped;	/* "t=<unix>,<scheme>=<sig>" and HMAC over "t.body" */
	char	   *scheme;			/* timestamped: signature key, e.g. "v1" */
	char	   *prefix;			/* plain: text before the signature, e.g. "sha256=" */
	SigEncoding encoding;
	const char *digest;			/* OpenSSL digest name for the HMAC */
	int			tolerance;		/* seconds */
	char	   *id_key;
	char	   *type_key;
} SourceConfig;

/* What webhook_ingest returns. */
typedef struct IngestResult
{
	const char *status;
	char	   *event_id;		/* in the caller's memory context, or NULL */
} IngestResult;

static PgextPlan plan_source = {
	"SELECT secret_name, layout, prefix, scheme, encoding, algorithm, "
	"       EXTRACT(epoch FROM tolerance)::integer, id_key, type_key "
	"  FROM pgext.webhook_sources WHERE name = $1",
	1, {TEXTOID}
};
static PgextPlan plan_reject = {
	"INSERT INTO pgext.webhook_rejections (source, reason, detail, received_at) "
	"VALUES ($1, $2, $3, $4)",
	4, {TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID}
};
static PgextPlan plan_insert_stripe = {
	"INSERT INTO pgext.webhook_events "
	"  (source, event_id, type, object_id, created, livemode, payload, received_at, status) "
	"VALUES ('stripe', $1, $2, $3, $4, $5, $6, $7, 'pending') "
	"ON CONFLICT (source, event_id) DO NOTHING",
	7, {TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, BOOLOID, JSONBOID, TIMESTAMPTZOID}
};
static PgextPlan plan_insert_generic = {
	"INSERT INTO pgext.webhook_events "
	"  (source, event_id, type, created, payload, received_at, status) "
	"VALUES ($1, $2, $3, $4, $5, $6, 'received') "
	"ON CONFLICT (source, event_id) DO NOTHING",
	6, {TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, JSONBOID, TIMESTAMPTZOID}
};

/* Define the webhook settings; called from _PG_init. */
void
WebhooksInit(void)
{
	DefineCustomBoolVariable("pgext.stripe_livemode",
							 "Accept only live-mode Stripe events (off = test mode).",
							 NULL, &pgext_stripe_livemode, false,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.webhook_tolerance",
							"Largest allowed difference between a signed webhook timestamp and its arrival.",
							"Applies to old and to future timestamps alike.",
							&pgext_webhook_tolerance, 300, 1, 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.webhook_payload_retention",
							"Age after which webhook_retention() drops processed webhook payloads.",
							NULL, &pgext_webhook_payload_retention, 30 * 86400, 3600, INT_MAX,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.webhook_dedup_retention",
							"Age after which webhook_retention() forgets webhook event ids.",
							"At least 4 days, so dedup outlives Stripe's 3-day retry window.",
							&pgext_webhook_dedup_retention, 30 * 86400, 4 * 86400, INT_MAX,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.webhook_max_attempts",
							"Failed applications of a webhook event before it becomes a dead letter.",
							NULL, &pgext_webhook_max_attempts, 8, 1, 100,
							PGC_SUSET, 0, NULL, NULL, NULL);
}

/* ---- configuration and secrets ------------------------------------------- */

/* Map a configured algorithm name to its OpenSSL digest name. */
static const char *
DigestByName(const char *name)
{
	if (strcmp(name, "sha256") == 0)
		return "SHA256";
	if (strcmp(name, "sha512") == 0)
		return "SHA512";
	if (strcmp(name, "sha1") == 0)
		return "SHA1";
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE), errhidestmt(true),
			 errmsg("unsupported webhook HMAC algorithm \"%s\"", name),
			 errhint("Reconfigure the source with pgext.webhook_source_set(): sha256, sha512 or sha1.")));
	return NULL;
}

/* Load how a source signs: built in for 'stripe', else pgext.webhook_sources. */
static void
LoadSource(const char *source, SourceConfig *cfg)
{
	Datum		arg = CStringGetTextDatum(source);

	memset(cfg, 0, sizeof(*cfg));
	if (strcmp(source, "stripe") == 0)
	{
		cfg->is_stripe = true;
		cfg->secret_name = STRIPE_SECRET;
		cfg->timestamped = true;
		cfg->scheme = "v1";
		cfg->encoding = SIG_ENCODING_HEX;
		cfg->digest = "SHA256";
		cfg->tolerance = pgext_webhook_tolerance;
		return;
	}
	if (PgextExec(&plan_source, &arg, NULL, 1) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT), errhidestmt(true),
				 errmsg("unknown webhook source \"%s\"", PgextShownValue(source)),
				 errhint("Use 'stripe', or configure the source with pgext.webhook_source_set().")));
	cfg->secret_name = PgextGetText(0, 1);
	cfg->timestamped = strcmp(PgextGetText(0, 2), "timestamped") == 0;
	cfg->prefix = PgextGetText(0, 3);
	cfg->scheme = PgextGetText(0, 4);
	cfg->encoding = strcmp(PgextGetText(0, 5), "base64") == 0 ? SIG_ENCODING_BASE64 : SIG_ENCODING_HEX;
	cfg->digest = DigestByName(PgextGetText(0, 6));
	cfg->tolerance = (int) PgextGetInt64(0, 7, pgext_webhook_tolerance);
	cfg->id_key = PgextGetText(0, 8);
	cfg->type_key = PgextGetText(0, 9);
}

/*
 * Verify the signature: HMAC over the exact bytes received, "<t>.<body>" for
 * a timestamped layout, with the current secret, then the previous one
 * (signing.c keeps the keyed HMAC per backend, checked against the row).
 */
static bool
VerifySignature(const SourceConfig *cfg, const SigHeader *h, text *payload)
{
	char		tbuf[32];
	int			tlen = 0;

	if (cfg->timestamped)
		tlen = snprintf(tbuf, sizeof(tbuf), INT64_FORMAT ".", (int64) h->timestamp);
	return SigningVerify(cfg->secret_name, cfg->digest, tbuf, tlen,
						 VARDATA_ANY(payload), VARSIZE_ANY_EXHDR(payload), h);
}

/* Parse the signature header according to the source's layout. */
static SigParseStatus
ParseHeader(const SourceConfig *cfg, text *signature, SigHeader *h)
{
	const char *s = VARDATA_ANY(signature);
	size_t		len = VARSIZE_ANY_EXHDR(signature);

	if (cfg->timestamped)
		return sigparse_kv(s, len, cfg->scheme, cfg->encoding, true, h);
	return sigparse_plain(s, len, cfg->prefix, cfg->encoding, h);
}

/* ---- parsing ------------------------------------------------------------- */

typedef struct ParseJsonbArgs
{
	const char *cstr;
	Jsonb	   *result;
} ParseJsonbArgs;

/* PgextTryInSubxact body: jsonb_in on the body text. */
static void
ParseJsonbBody(void *arg)
{
	ParseJsonbArgs *a = (ParseJsonbArgs *) arg;

	a->result = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(a->cstr)));
}

/*
 * Parse the body as jsonb_in does: without a subtransaction when
 * jsonparse.c can (it returns NULL for a body jsonb_in refuses), else with
 * jsonb_in itself in one.  A body jsonb_in refuses raises a data
 * exception (class 22: syntax, numeric range, \u0000) or a program limit
 * (class 54: nesting depth, size), PGEXT_ERROR_BAD_INPUT in subxact.c;
 * either is reported as NULL, because a bad body must be a 'malformed'
 * status, not an exception.  Every other error is re-thrown.
 */
static Jsonb *
ParseJsonb(text *payload)
{
	ParseJsonbArgs a = {text_to_cstring(payload), NULL};
	Jsonb	   *result;
	bool		fallback;

	/* the common case: no subtransaction (jsonparse.c) */
	result = WebhookParseJsonb((char *) a.cstr, (int) VARSIZE_ANY_EXHDR(payload), &fallback);
	if (fallback && PgextTryInSubxact(ParseJsonbBody, &a, PgextIsBadInputError, NULL))
		result = a.result;
	pfree((char *) a.cstr);
	return result;
}

/* "created": unix seconds, a JSON integer from 1970 to the year 9999. */
static bool
ParseCreated(JsonbContainer *root, TimestampTz *out)
{
	int64		v;

	if (!PgextJsonInteger(root, "created", &v) || v <= 0 || v > MAX_UNIX_TIME)
		return false;
	*out = time_t_to_timestamptz((pg_time_t) v);
	return true;
}

/* An event id or type: 1..255 bytes. */
static bool
ValidLabel(const char *s)
{
	return s != NULL && s[0] != '\0' && strlen(s) <= MAX_EVENT_ID_LEN;
}

/* ---- ingest -------------------------------------------------------------- */

/* Record a rejection (source, reason, a fixed detail; never payload or secret). */
static const char *
Reject(IngestResult *r, const char *source, const char *status, const char *detail,
	   TimestampTz received_at)
{
	Datum		v[4] = {CStringGetTextDatum(source), CStringGetTextDatum(status),
	detail ? CStringGetTextDatum(detail) : (Datum) 0, TimestampTzGetDatum(received_at)};

	PgextExec(&plan_reject, v, detail ? NULL : "  n ", 0);
	return status;
}

/* Verify, parse and record one delivery; returns the status, sets r->event_id. */
static const char *
Ingest(const char *source, text *payload, text *signature, TimestampTz received_at,
	   MemoryContext callcxt, IngestResult *r)
{
	SourceConfig cfg;
	SigHeader	h;
	SigParseStatus pst;
	Jsonb	   *jb;
	JsonbContainer *root;
	char	   *id;
	char	   *type;
	TimestampTz created = received_at;
	uint64		n;

	LoadSource(source, &cfg);
	if (signature == NULL)
		return Reject(r, source, "bad_signature", "missing signature", received_at);
	pst = ParseHeader(&cfg, signature, &h);
	if (pst != SIGPARSE_OK)
		return Reject(r, source, "bad_signature", sigparse_status_name(pst), received_at);
	if (payload == NULL)
		return Reject(r, source, "malformed", "missing payload", received_at);
	if (VARSIZE_ANY_EXHDR(payload) > MAX_PAYLOAD_BYTES)
		return Reject(r, source, "malformed", "payload larger than 1 MB", received_at);
	if (!VerifySignature(&cfg, &h, payload))
		return Reject(r, source, "bad_signature", "no signature matches", received_at);
	if (h.has_timestamp)
	{
		int64		now_s = (int64) timestamptz_to_time_t(received_at);
		int64		skew = now_s - h.timestamp;

		if (skew > cfg.tolerance)
			return Reject(r, source, "stale", "timestamp too old", received_at);
		if (-skew > cfg.tolerance)
			return Reject(r, source, "stale", "timestamp in the future", received_at);
		created = time_t_to_timestamptz((pg_time_t) h.timestamp);
	}

	jb = ParseJsonb(payload);
	if (jb == NULL || !JB_ROOT_IS_OBJECT(jb))
		return Reject(r, source, "malformed", jb ? "body is not a JSON object" : "body is not JSON",
					  received_at);
	root = &jb->root;
	/* Stripe's envelope is typed: id and type are JSON strings (a generic source may use numbers). */
	id = cfg.is_stripe ? PgextJsonString(root, "id") : PgextJsonText(root, cfg.id_key);
	type = cfg.is_stripe ? PgextJsonString(root, "type") : PgextJsonText(root, cfg.type_key);
	if (!ValidLabel(id))
		return Reject(r, source, "malformed", "missing or invalid event id", received_at);
	if (!ValidLabel(type))
		return Reject(r, source, "malformed", "missing or invalid event type", received_at);

	if (cfg.is_stripe)
	{
		JsonbContainer *data = PgextJsonObject(root, "data");
		JsonbContainer *obj = data ? PgextJsonObject(data, "object") : NULL;
		char	   *object_id = obj ? PgextJsonString(obj, "id") : NULL;
		bool		live;
		Datum		v[7];
		char		nulls[8] = "       ";

		if (!ParseCreated(root, &created))
			return Reject(r, source, "malformed", "missing or invalid created", received_at);
		if (!PgextJsonBool(root, "livemode", &live))
			return Reject(r, source, "malformed", "missing or invalid livemode", received_at);
		if (obj == NULL)
			return Reject(r, source, "malformed", "missing data.object", received_at);
		r->event_id = MemoryContextStrdup(callcxt, id);
		if (live != pgext_stripe_livemode)
			return Reject(r, source, "livemode_mismatch",
						  live ? "live event, test mode configured" : "test event, live mode configured",
						  received_at);
		v[0] = CStringGetTextDatum(id);
		v[1] = CStringGetTextDatum(type);
		if (object_id != NULL && ValidLabel(object_id))
			v[2] = CStringGetTextDatum(object_id);
		else
			nulls[2] = 'n';
		v[3] = TimestampTzGetDatum(created);
		v[4] = BoolGetDatum(live);
		v[5] = JsonbPGetDatum(StripeEventMinimal(jb));
		v[6] = TimestampTzGetDatum(received_at);
		n = PgextExec(&plan_insert_stripe, v, nulls, 0);
	}
	else
	{
		Datum		v[6] = {CStringGetTextDatum(source), CStringGetTextDatum(id),
			CStringGetTextDatum(type), TimestampTzGetDatum(created), JsonbPGetDatum(jb),
		TimestampTzGetDatum(received_at)};

		r->event_id = MemoryContextStrdup(callcxt, id);
		n = PgextExec(&plan_insert_generic, v, NULL, 0);
	}
	if (n == 1)
		PgextWakeAtCommit();	/* the worker applies it at once */
	return n == 1 ? "accepted" : "duplicate";
}

/*
 * The arrival time the replay window is measured from: now() (the server's
 * clock at the transaction start).  A caller may pass its own received_at
 * only within RECEIVED_AT_SLACK_S seconds of now(); any time at all only when
 * the role it runs as (SET ROLE level, not this function's owner) is a
 * superuser, for tests.  An infinite time is refused from anyone: such a row
 * would never be removed by retention.  Errors are raised before anything is
 * written.
 */
static TimestampTz
ReceivedAt(FunctionCallInfo fcinfo)
{
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	TimestampTz t;

	if (PG_ARGISNULL(3))
		return now;
	t = PG_GETARG_TIMESTAMPTZ(3);
	if (TIMESTAMP_NOT_FINITE(t))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE), errhidestmt(true),
				 errmsg("received_at must be a finite time"),
				 errhint("Omit received_at: the server's clock is used.")));
	if ((t > now ? t - now : now - t) > RECEIVED_AT_SLACK_S * USECS_PER_SEC &&
		!superuser_arg(GetOuterUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE), errhidestmt(true),
				 errmsg("received_at must be within %d seconds of now()", RECEIVED_AT_SLACK_S),
				 errhint("Omit received_at: the server's clock measures the replay window. "
						 "Only a superuser may pass another time (tests).")));
	return t;
}

/*
 * webhook_ingest(source, payload, signature, received_at)
 *   RETURNS pgext.webhook_result (status, event_id)
 */
Datum
webhook_ingest(PG_FUNCTION_ARGS)
{
	MemoryContext callcxt = CurrentMemoryContext;
	IngestResult r = {NULL, NULL};
	char	   *source;
	TimestampTz received_at;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	AccountScopePlatform("webhook_ingest");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errhidestmt(true),
				 errmsg("webhook source must not be NULL"),
				 errhint("Pass 'stripe' or the name of a source configured with pgext.webhook_source_set().")));
	source = text_to_cstring(PG_GETARG_TEXT_PP(0));
	received_at = ReceivedAt(fcinfo);

	PgextPinSearchPath(fcinfo);
	SPI_connect();
	r.status = Ingest(source,
		   PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1),
		   PG_ARGISNULL(2) ? NULL : PG_GETARG_TEXT_PP(2),
		   received_at, callcxt, &r);
	SPI_finish();
	PgextUnpinSearchPath();

	values[0] = CStringGetTextDatum(r.status);
	if (r.event_id != NULL)
		values[1] = CStringGetTextDatum(r.event_id);
	else
		nulls[1] = true;
	PG_RETURN_DATUM(PgextCompositeResult(fcinfo, values, nulls));
}
