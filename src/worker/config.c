/*
 * config.c — the worker's API configuration: base URLs and tokens.
 *
 * Tokens live in the secret store (hetzner:api_token, stripe:api_key), read
 * with pgext.secret_get at start and on reload, kept only in the worker's
 * memory and wiped when replaced.  URLs must be https and must not point at a
 * loopback address unless pgext.allow_insecure_urls is on (the tests' fakes).
 * A Stripe live key while pgext.stripe_livemode is off (or a test key while
 * it is on) is refused: test data must never reach live money, nor the other
 * way round.  No message here ever contains a token.
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/errcodes.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "settings.h"
#include "webhooks/webhooks.h"
#include "worker/config.h"
#include "worker/urlcheck.h"

/* Why url may not be used as an API base URL (url_check_api); reason "" when it may. */
void
WorkerConfigCheckUrl(const char *url, char *reason, size_t len)
{
	url_check_api(url, pgext_allow_insecure_urls, reason, len);
}

/* Why key does not fit livemode; reason "" when it does. */
void
WorkerConfigCheckStripeKey(const char *key, bool livemode, char *reason, size_t len)
{
	bool		live = strncmp(key, "sk_live_", 8) == 0 || strncmp(key, "rk_live_", 8) == 0;
	bool		test = strncmp(key, "sk_test_", 8) == 0 || strncmp(key, "rk_test_", 8) == 0;

	reason[0] = '\0';
	if (!live && !test)
		snprintf(reason, len, "stripe:api_key is not a Stripe secret or restricted key (sk_/rk_ live or test)");
	else if (live && !livemode)
		snprintf(reason, len, "stripe:api_key is a live key but pgext.stripe_livemode is off (test mode): store a test key (sk_test_...) or turn live mode on");
	else if (test && livemode)
		snprintf(reason, len, "stripe:api_key is a test key but pgext.stripe_livemode is on: store the live key (sk_live_...) or turn live mode off");
}

/* Forget a token: wipe and free it. */
static void
WipeToken(WorkerApiConfig *cfg)
{
	if (cfg->token)
	{
		explicit_bzero(cfg->token, strlen(cfg->token));
		pfree(cfg->token);
		cfg->token = NULL;
	}
}

/*
 * Read the secret in a subtransaction; on success return it (palloc'd in
 * TopMemoryContext), else NULL with the reason.  An unset secret and an
 * unreadable one get different advice.
 */
static char *
ReadToken(const char *secret_name, char *reason, size_t len)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	char	   *volatile token = NULL;

	BeginInternalSubTransaction(NULL);
	PG_TRY();
	{
		Oid			argtypes[1] = {TEXTOID};
		Datum		args[1] = {CStringGetTextDatum(secret_name)};

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute_with_args("SELECT pgext.secret_get($1)", 1, argtypes, args, NULL,
								  true, 1) != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "reading the secret returned no row");
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

			if (!isnull)
			{
				text	   *t = DatumGetTextPP(d);

				token = MemoryContextAlloc(TopMemoryContext, VARSIZE_ANY_EXHDR(t) + 1);
				memcpy(token, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
				token[VARSIZE_ANY_EXHDR(t)] = '\0';
			}
		}
		SPI_finish();
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		if (token == NULL)
			snprintf(reason, len, "secret %s is NULL", secret_name);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		if (edata->sqlerrcode == ERRCODE_NO_DATA_FOUND)
			snprintf(reason, len, "secret %s is not set (store it with SELECT pgext.secret_set('%s', '<token>'))",
					 secret_name, secret_name);
		else
			snprintf(reason, len, "secret %s cannot be read: %s", secret_name,
					 edata->message ? edata->message : "unknown error");
		FreeErrorData(edata);
		token = NULL;
	}
	PG_END_TRY();
	return token;
}

/* Read and check one API's URL and token (inside a transaction). */
void
WorkerConfigLoad(WorkerApiConfig *cfg, const char *url_setting)
{
	char		reason[WORKER_API_REASON_LEN] = "";
	const char *url = GetConfigOption(url_setting, true, false);
	char	   *token;
	size_t		n;

	WipeToken(cfg);
	if (cfg->base_url)
		pfree(cfg->base_url);
	cfg->base_url = MemoryContextStrdup(TopMemoryContext, url ? url : "");
	n = strlen(cfg->base_url);
	while (n > 0 && cfg->base_url[n - 1] == '/')
		cfg->base_url[--n] = '\0';

	WorkerConfigCheckUrl(cfg->base_url, reason, sizeof(reason));
	if (reason[0] != '\0')
	{
		snprintf(cfg->refusing, sizeof(cfg->refusing), "%s: %s", url_setting, reason);
		return;
	}
	token = ReadToken(cfg->secret_name, reason, sizeof(reason));
	if (token != NULL)
	{
		if (token[0] == '\0' || strpbrk(token, " \t\r\n") != NULL)
			snprintf(reason, sizeof(reason), "secret %s is empty or holds whitespace", cfg->secret_name);
		else if (strcmp(cfg->name, "stripe") == 0)
			WorkerConfigCheckStripeKey(token, pgext_stripe_livemode, reason, sizeof(reason));
	}
	if (reason[0] != '\0')
	{
		if (token)
		{
			explicit_bzero(token, strlen(token));
			pfree(token);
		}
		strlcpy(cfg->refusing, reason, sizeof(cfg->refusing));
		return;
	}
	cfg->token = token;
	cfg->refusing[0] = '\0';
}
