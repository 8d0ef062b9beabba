/*
 * keyring.c — master keys from pgext.master_key_command.
 *
 * At postmaster start (_PG_init under shared_preload_libraries) the command
 * runs once through the shell.  It prints lines "<version>:<64 hex digits>";
 * blank lines and lines starting with '#' are ignored.  Every other line must
 * be valid, or no key is loaded at all (fail closed: a half-read keyring would
 * encrypt new secrets with an older key without anyone noticing).
 *
 * Master keys are never used directly.  Each is turned into a root key with
 * HKDF-SHA256 (salt "pgext-keyring", info "pgext/secrets/root" || version as
 * 4 big-endian bytes), and the master key bytes are wiped right away.  Every
 * account (and the platform, account NULL) then gets its own AES-256 key per
 * version, HKDF-Expand(root, "pgext/secrets/aes-256-gcm" || version ||
 * account flag || account uuid): GCM's random-nonce limit (2^32 messages per
 * key) applies per account, and a key for one tenant says nothing about
 * another's (format 0x01: platform secrets and account secrets written by
 * 1.0).  Since 1.1 an account's secrets are sealed in format 0x02 with
 * HKDF-SHA256(root, salt = the account's random salt from
 * pgext.secret_account_keys, info = "pgext secret account key" || account
 * uuid): deleting the salt (account_forget) destroys the key for good.
 * Account keys are cached per backend, keyed by (version, account, salt);
 * those derived with a salt are wiped on any change to the salts (salts.c).
 *
 * Key material lives in anonymous private mappings that are excluded from
 * core dumps (MADV_DONTDUMP), locked in RAM (mlock) when the memlock limit
 * allows, and wiped at process exit.  Backends are fork()ed from the
 * postmaster and so inherit the root keys.  fork() keeps MADV_DONTDUMP (a
 * flag of the mapping) but not memory locks, so every process locks the root
 * key page again on its first use of the keyring (KeyringRequire); the page
 * is made read-only after loading, so that lock does not copy it (no
 * copy-on-write break) and it stays the postmaster's one physical copy.  The
 * per-backend account key cache is mapped and locked by the backend itself.
 * At start the postmaster checks that the memlock limit allows all of this
 * and, if not, logs one WARNING (keys may then reach swap); a backend whose
 * lock fails anyway says so once in the server log.  Nothing is ever written
 * to shared memory, a GUC, a table or the log.  (Under EXEC_BACKEND, which Linux builds do not use,
 * each backend would re-run _PG_init and with it the command.)  The setting
 * is PGC_POSTMASTER, so keys change only on a restart, never on SIGHUP.
 */
#include "postgres.h"

#include <sys/mman.h>
#include <sys/wait.h>
#include <signal.h>
#include <openssl/crypto.h>

#include "miscadmin.h"
#include "storage/ipc.h"
#include "common/hashfn.h"
#include "utils/guc.h"

#include "common/preload.h"
#include "secrets/hkdf.h"
#include "secrets/keyline.h"
#include "secrets/keyring.h"
#include "secrets/salts.h"

StaticAssertDecl(KEYLINE_KEY_BYTES == KEYRING_KEY_BYTES, "a key line holds one master key");

#define KEYRING_LINE_MAX 512
#define KEYRING_HKDF_SALT "pgext-keyring"
#define KEYRING_ROOT_INFO "pgext/secrets/root"
#define KEYRING_ACCOUNT_INFO "pgext/secrets/aes-256-gcm"
#define KEYRING_SALTED_INFO "pgext secret account key"
#define KEYRING_CACHE_SETS 512
#define KEYRING_CACHE_WAYS 8		/* 4 ways left ~2% of 1000 uniformly read
									 * accounts thrashing in overfull sets */
#define KEYRING_CACHE_SIZE (KEYRING_CACHE_SETS * KEYRING_CACHE_WAYS)

typedef enum KeyringStatus
{
	KEYRING_NOT_LOADED = 0,		/* not preloaded (or load not attempted) */
	KEYRING_UNSET,				/* pgext.master_key_command is empty */
	KEYRING_FAILED,				/* the command failed or printed bad lines */
	KEYRING_READY
} KeyringStatus;

typedef struct KeyringSlot
{
	int32		version;
	uint8		key[KEYRING_KEY_BYTES];
} KeyringSlot;

typedef struct KeyringKeys
{
	int			nkeys;
	KeyringSlot slots[KEYRING_MAX_KEYS];	/* ascending by version */
} KeyringKeys;

static KeyringStatus keyring_status = KEYRING_NOT_LOADED;
static char keyring_reason[256];	/* why it failed; never key material */
static KeyringKeys *keyring = NULL; /* in its own mapping, see above */
static pid_t keyring_locked_pid = 0;	/* process that has locked it (mlock) */
static bool key_lock_warned = false;	/* a lock failure was reported */

/* Per-backend cache of derived account keys (8-way set associative). */
typedef struct AccountKeySlot
{
	bool		valid;
	uint32		hash;			/* of (version, account, salt): compared first */
	int32		version;
	bool		has_account;
	pg_uuid_t	account;
	bool		salted;			/* format 0x02: derived with the account's salt */
	uint8		salt[KEYRING_SALT_BYTES];
	uint8		key[KEYRING_KEY_BYTES];
} AccountKeySlot;

static AccountKeySlot *account_cache = NULL;	/* KEYRING_CACHE_SIZE slots */
static uint8 account_cache_victim[KEYRING_CACHE_SETS];	/* round-robin per set */
static int	keyring_encrypt_version = 0;	/* pgext.secret_encrypt_version */
static char *keyring_master_key_command = NULL;	/* pgext.master_key_command */

/* Remember why loading failed (a fixed, key-free description). */
static void
KeyringFail(const char *fmt,...)
pg_attribute_printf(1, 2);

static void
KeyringFail(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(keyring_reason, sizeof(keyring_reason), fmt, ap);
	va_end(ap);
	keyring_status = KEYRING_FAILED;
}

/* Wipe the root keys at postmaster exit (no key outlives its process). */
static void
KeyringWipeAtExit(int code, Datum arg)
{
	if (keyring != NULL &&
		mprotect(keyring, sizeof(KeyringKeys), PROT_READ | PROT_WRITE) == 0)
		OPENSSL_cleanse(keyring, sizeof(KeyringKeys));
}

/* Wipe a backend's cached account keys at its exit. */
static void
AccountCacheWipeAtExit(int code, Datum arg)
{
	if (account_cache != NULL)
		OPENSSL_cleanse(account_cache, sizeof(AccountKeySlot) * KEYRING_CACHE_SIZE);
}

/*
 * Lock key pages in RAM, best effort: a low RLIMIT_MEMLOCK only means they
 * may be swapped.  The first failure in a backend is logged (LOG, server log
 * only) unless the postmaster already warned at start that the limit is too
 * low for every process.
 */
static bool
LockKeyMemory(void *p, Size size)
{
	if (mlock(p, size) == 0)
		return true;
	if (!IsUnderPostmaster || key_lock_warned)
		return false;			/* the postmaster reports in KeyringSeal */
	key_lock_warned = true;
	ereport(LOG,
			(errmsg("pgext: could not lock master key memory in RAM: %m"),
			 errdetail("The keys of this server process may be written to swap."),
			 errhint("Raise the memlock limit of the server (ulimit -l, or LimitMEMLOCK= in its systemd unit) and restart it.")));
	return false;
}

/* Map zeroed memory for key material (see file header); NULL on failure. */
static void *
MapKeyMemory(Size size)
{
	void	   *p;

	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
#ifdef MADV_DONTDUMP
	(void) madvise(p, size, MADV_DONTDUMP);
#endif
	(void) LockKeyMemory(p, size);
	memset(p, 0, size);
	return p;
}

/* Map key memory for another module (salts.c); see keyring.h. */
void *
KeyringMapKeyMemory(Size size)
{
	return MapKeyMemory(size);
}

/*
 * At postmaster start, after the keys are loaded: make their page read-only
 * (see file header) and check that each process could lock what it needs
 * (the root keys, which are locked already, plus one account key cache and
 * one salt cache):
 * if not, one WARNING now instead of a failure in every backend.
 */
static void
KeyringSeal(void)
{
	Size		cache_size = sizeof(AccountKeySlot) * KEYRING_CACHE_SIZE +
		TYPEALIGN(4096, SecretSaltCacheBytes());
	void	   *probe;
	bool		locked;

	if (mprotect(keyring, sizeof(KeyringKeys), PROT_READ) != 0)
		ereport(WARNING,
				(errmsg("pgext: could not make the master key page read-only: %m")));
	/* the root key page was locked when mapped; is it still? try again */
	if (!LockKeyMemory(keyring, sizeof(KeyringKeys)))
		locked = false;
	else
	{
		probe = mmap(NULL, cache_size, PROT_READ | PROT_WRITE,
					 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		locked = probe != MAP_FAILED && mlock(probe, cache_size) == 0;
		if (probe != MAP_FAILED)
			(void) munmap(probe, cache_size);
	}
	if (!locked)
	{
		key_lock_warned = true; /* inherited: backends stay quiet */
		ereport(WARNING,
				(errmsg("pgext: the memlock limit is too low to lock master keys in RAM; they may be written to swap"),
				 errdetail("Each server process locks %zu kB of key memory.",
						   (TYPEALIGN(4096, sizeof(KeyringKeys)) + TYPEALIGN(4096, cache_size)) / 1024),
				 errhint("Raise the memlock limit of the server (ulimit -l, or LimitMEMLOCK= in its systemd unit) and restart it.")));
	}
}

/* Map the page(s) that hold the root keys; false if that is impossible. */
static bool
KeyringMap(void)
{
	keyring = MapKeyMemory(sizeof(KeyringKeys));
	keyring_locked_pid = MyProcPid;
	if (keyring == NULL)
		return false;
	on_proc_exit(KeyringWipeAtExit, (Datum) 0);
	return true;
}

/*
 * Parse one line "<version>:<64 hex>" (keyline_parse) into version and
 * master key.  On failure it says why in keyring_reason, naming only the
 * line number.
 */
static bool
ParseKeyLine(const char *line, int lineno, int32 *version, uint8 *master)
{
	int32_t		v;

	switch (keyline_parse(line, &v, master))
	{
		case KEYLINE_OK:
			*version = (int32) v;
			return true;
		case KEYLINE_NO_COLON:
			KeyringFail("line %d has no \"<version>:\" prefix", lineno);
			break;
		case KEYLINE_NO_VERSION:
			KeyringFail("line %d does not start with a key version number", lineno);
			break;
		case KEYLINE_VERSION_NOT_NUMBER:
			KeyringFail("line %d: the key version before ':' is not a number", lineno);
			break;
		case KEYLINE_VERSION_RANGE:
			KeyringFail("line %d: key version is out of range", lineno);
			break;
		case KEYLINE_VERSION_ZERO:
			KeyringFail("line %d: key versions start at 1", lineno);
			break;
		case KEYLINE_BAD_KEY:
			KeyringFail("line %d: key version %d is not followed by exactly 64 hex digits",
						lineno, (int) v);
			break;
	}
	return false;
}

/* Append a 32-bit big-endian number to an info buffer. */
static unsigned char *
PutUint32(unsigned char *p, uint32 v)
{
	p[0] = (unsigned char) (v >> 24);
	p[1] = (unsigned char) (v >> 16);
	p[2] = (unsigned char) (v >> 8);
	p[3] = (unsigned char) v;
	return p + 4;
}

/* HKDF-SHA256 into a 32-byte key (hkdf.c); salt NULL: expand only. */
static bool
Hkdf(const uint8 *ikm, const uint8 *salt, int salt_len, const unsigned char *info, int info_len,
	 uint8 *out)
{
	return HkdfSha256(ikm, KEYRING_KEY_BYTES, salt, salt_len, info, info_len, out);
}

/* The root key of a version, from its master key. */
static bool
DeriveRootKey(const uint8 *master, int32 version, uint8 *out)
{
	unsigned char info[sizeof(KEYRING_ROOT_INFO) - 1 + 4];

	memcpy(info, KEYRING_ROOT_INFO, sizeof(KEYRING_ROOT_INFO) - 1);
	PutUint32(info + sizeof(KEYRING_ROOT_INFO) - 1, (uint32) version);
	return Hkdf(master, (const uint8 *) KEYRING_HKDF_SALT, sizeof(KEYRING_HKDF_SALT) - 1,
				info, sizeof(info), out);
}

/* Insert a derived key keeping slots sorted; false on a duplicate version. */
static bool
KeyringAdd(int32 version, const uint8 *root_key, int lineno)
{
	int			i;
	int			pos = keyring->nkeys;

	for (i = 0; i < keyring->nkeys; i++)
	{
		if (keyring->slots[i].version == version)
		{
			KeyringFail("line %d: key version %d appears twice", lineno, (int) version);
			return false;
		}
		if (keyring->slots[i].version > version && pos == keyring->nkeys)
			pos = i;
	}
	if (keyring->nkeys >= KEYRING_MAX_KEYS)
	{
		KeyringFail("more than %d key lines", KEYRING_MAX_KEYS);
		return false;
	}
	memmove(&keyring->slots[pos + 1], &keyring->slots[pos],
			sizeof(KeyringSlot) * (keyring->nkeys - pos));
	keyring->slots[pos].version = version;
	memcpy(keyring->slots[pos].key, root_key, KEYRING_KEY_BYTES);
	keyring->nkeys++;
	return true;
}

/*
 * Read every line the command prints; on any bad line remember why and keep
 * draining (so the command does not die of SIGPIPE), loading nothing.
 */
static void
ReadKeyLines(FILE *fh)
{
	char		line[KEYRING_LINE_MAX];
	uint8		master[KEYRING_KEY_BYTES];
	uint8		root_key[KEYRING_KEY_BYTES];
	int			lineno = 0;
	bool		ok = true;
	bool		continuation = false;

	while (fgets(line, sizeof(line), fh) != NULL)
	{
		bool		complete = strchr(line, '\n') != NULL;
		int32		version;

		if (continuation)
		{
			/* the rest of an overlong line, already reported */
			continuation = !complete;
			continue;
		}
		lineno++;
		if (!complete && !feof(fh))
		{
			if (ok)
				KeyringFail("line %d is longer than %d bytes", lineno, KEYRING_LINE_MAX - 2);
			ok = false;
			continuation = true;
			continue;
		}
		if (!ok)
			continue;
		keyline_trim(line);
		if (line[0] == '\0' || line[0] == '#')
			continue;
		if (!ParseKeyLine(line, lineno, &version, master) ||
			!DeriveRootKey(master, version, root_key))
		{
			if (keyring_status != KEYRING_FAILED)
				KeyringFail("line %d: could not derive the root key", lineno);
			ok = false;
		}
		else if (!KeyringAdd(version, root_key, lineno))
			ok = false;
		OPENSSL_cleanse(master, sizeof(master));
		OPENSSL_cleanse(root_key, sizeof(root_key));
	}
	OPENSSL_cleanse(line, sizeof(line));
	if (ferror(fh) && ok)
	{
		KeyringFail("reading its output failed: %m");
		ok = false;
	}
}

/* Run the command and load its keys, or leave a reason; see file header. */
void
KeyringLoad(void)
{
	FILE	   *fh;
	int			rc;
	pqsigfunc	save_sigpipe;

	keyring_status = KEYRING_NOT_LOADED;
	if (keyring_master_key_command == NULL || keyring_master_key_command[0] == '\0')
	{
		keyring_status = KEYRING_UNSET;
		ereport(WARNING,
				(errmsg("pgext.master_key_command is not set: pgext secret functions will refuse to run"),
				 errhint("Set pgext.master_key_command to a command that prints lines \"<version>:<64 hex digits>\" and restart the server.")));
		return;
	}
	if (!KeyringMap())
	{
		KeyringFail("could not map memory for the keys: %m");
		goto report;
	}

	fflush(NULL);
	/* The command gets default SIGPIPE handling, like OpenPipeStream does. */
	save_sigpipe = pqsignal(SIGPIPE, SIG_DFL);
	fh = popen(keyring_master_key_command, "r");
	pqsignal(SIGPIPE, save_sigpipe);
	if (fh == NULL)
	{
		KeyringFail("could not start it: %m");
		goto report;
	}
	ReadKeyLines(fh);
	rc = pclose(fh);
	if (keyring_status != KEYRING_FAILED)
	{
		if (rc == -1)
			KeyringFail("could not wait for it: %m");
		else if (WIFEXITED(rc) && WEXITSTATUS(rc) != 0)
			KeyringFail("it exited with status %d", WEXITSTATUS(rc));
		else if (WIFSIGNALED(rc))
			KeyringFail("it was terminated by signal %d", WTERMSIG(rc));
		else if (keyring->nkeys == 0)
			KeyringFail("it printed no key lines");
	}
	if (keyring_status != KEYRING_FAILED)
	{
		keyring_status = KEYRING_READY;
		KeyringSeal();
		ereport(LOG,
				(errmsg("pgext: loaded %d master key version(s) from pgext.master_key_command; newest is %d",
						keyring->nkeys, (int) keyring->slots[keyring->nkeys - 1].version)));
		return;
	}

report:
	if (keyring != NULL)
	{
		OPENSSL_cleanse(keyring, sizeof(KeyringKeys));
		keyring->nkeys = 0;
	}
	ereport(WARNING,
			(errmsg("pgext.master_key_command failed: %s; pgext secret functions will refuse to run",
					keyring_reason),
			 errhint("Fix the command so it exits 0 and prints only lines \"<version>:<64 hex digits>\", then restart the server.")));
}

/*
 * Lock the root key page in this process on its first use of the keyring:
 * memory locks are not inherited through fork() (see file header).
 */
static void
KeyringLockHere(void)
{
	if (keyring_locked_pid == MyProcPid || keyring == NULL)
		return;
	keyring_locked_pid = MyProcPid;
	(void) LockKeyMemory(keyring, sizeof(KeyringKeys));
}

/* Raise a clear ERROR unless the keys are loaded. */
void
KeyringRequire(void)
{
	PgextRequirePreload("secrets");
	switch (keyring_status)
	{
		case KEYRING_READY:
			KeyringLockHere();
			return;
		case KEYRING_UNSET:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("pgext secrets are unavailable: pgext.master_key_command is not set"),
					 errhint("Set pgext.master_key_command in postgresql.conf to a command that prints lines \"<version>:<64 hex digits>\" and restart the server.")));
			break;
		case KEYRING_FAILED:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("pgext secrets are unavailable: pgext.master_key_command failed at server start: %s",
							keyring_reason),
					 errhint("Fix the command so it exits 0 and prints only lines \"<version>:<64 hex digits>\", then restart the server.")));
			break;
		case KEYRING_NOT_LOADED:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("pgext secrets are unavailable: the master keys were not loaded at server start"),
					 errhint("Set pgext.master_key_command and restart the server.")));
			break;
	}
}

/* The root key of a version, or NULL when that version was not loaded. */
static const uint8 *
RootKey(int32 version)
{
	int			i;

	if (keyring_status != KEYRING_READY)
		return NULL;
	KeyringLockHere();
	for (i = 0; i < keyring->nkeys; i++)
		if (keyring->slots[i].version == version)
			return keyring->slots[i].key;
	return NULL;
}

/* Whether a key version was loaded. */
bool
KeyringHasVersion(int32 version)
{
	return RootKey(version) != NULL;
}

/*
 * Derive the key of (version, account, salt) into out.  Without a salt
 * (format 0x01): HKDF-Expand(root, "pgext/secrets/aes-256-gcm" || version ||
 * account flag || account uuid).  With the account's salt (format 0x02):
 * HKDF-SHA256(ikm = root key of the version, salt = the account's 32-byte
 * salt, info = "pgext secret account key" || account uuid), so the key is
 * gone for good once the salt row is (account_forget).
 */
static bool
DeriveAccountKey(const uint8 *root, int32 version, const pg_uuid_t *account,
				 const uint8 *salt, uint8 *out)
{
	unsigned char info[sizeof(KEYRING_ACCOUNT_INFO) - 1 + 4 + 1 + UUID_LEN];
	unsigned char *p;

	if (salt != NULL)
	{
		unsigned char sinfo[sizeof(KEYRING_SALTED_INFO) - 1 + UUID_LEN];

		memcpy(sinfo, KEYRING_SALTED_INFO, sizeof(KEYRING_SALTED_INFO) - 1);
		memcpy(sinfo + sizeof(KEYRING_SALTED_INFO) - 1, account->data, UUID_LEN);
		return Hkdf(root, salt, KEYRING_SALT_BYTES, sinfo, sizeof(sinfo), out);
	}
	memset(info, 0, sizeof(info));
	memcpy(info, KEYRING_ACCOUNT_INFO, sizeof(KEYRING_ACCOUNT_INFO) - 1);
	p = PutUint32(info + sizeof(KEYRING_ACCOUNT_INFO) - 1, (uint32) version);
	*p++ = account != NULL ? 1 : 0;
	if (account != NULL)
		memcpy(p, account->data, UUID_LEN);
	return Hkdf(root, NULL, 0, info, sizeof(info), out);
}

/* Whether a cache slot holds the key of (version, account, salt), hashed h. */
static bool
SlotMatches(const AccountKeySlot *slot, uint32 h, int32 version, const pg_uuid_t *account,
			const uint8 *salt)
{
	return slot->valid && slot->hash == h && slot->version == version &&
		slot->has_account == (account != NULL) &&
		(account == NULL || memcmp(slot->account.data, account->data, UUID_LEN) == 0) &&
		slot->salted == (salt != NULL) &&
		(salt == NULL || memcmp(slot->salt, salt, KEYRING_SALT_BYTES) == 0);
}

/*
 * Copy the AES key of (version, account, salt) into out; see keyring.h.
 * Derived keys are cached per backend in the locked, non-dumpable mapping
 * (8-way set associative, keyed by version, account and salt); an evicted
 * slot's key is wiped before it is reused.  Keys derived with a salt are
 * wiped whenever pgext.secret_account_keys changes (KeyringForgetSaltedKeys,
 * from salts.c), so a forgotten account's key does not outlive the forget's
 * invalidation in any backend.
 */
bool
KeyringAccountKey(int32 version, const pg_uuid_t *account, const uint8 *salt, uint8 *out)
{
	const uint8 *root = RootKey(version);
	uint32		h;
	AccountKeySlot *slot = NULL;

	Assert(salt == NULL || account != NULL);
	if (root == NULL)
		return false;
	if (account_cache == NULL)
	{
		account_cache = MapKeyMemory(sizeof(AccountKeySlot) * KEYRING_CACHE_SIZE);
		if (account_cache != NULL)
			on_proc_exit(AccountCacheWipeAtExit, (Datum) 0);
	}
	if (account_cache != NULL)
	{
		AccountKeySlot *set;
		int			way;

		h = (uint32) version * 2654435761U;
		if (account != NULL)
			h ^= hash_bytes(account->data, UUID_LEN);
		if (salt != NULL)
			h ^= hash_bytes(salt, KEYRING_SALT_BYTES);
		set = &account_cache[(h % KEYRING_CACHE_SETS) * KEYRING_CACHE_WAYS];
		slot = NULL;
		for (way = 0; way < KEYRING_CACHE_WAYS; way++)
		{
			if (SlotMatches(&set[way], h, version, account, salt))
			{
				memcpy(out, set[way].key, KEYRING_KEY_BYTES);
				return true;
			}
			if (slot == NULL && !set[way].valid)
				slot = &set[way];	/* a free slot to fill */
		}
		if (slot == NULL)
			slot = &set[account_cache_victim[h % KEYRING_CACHE_SETS]++ % KEYRING_CACHE_WAYS];
	}

	if (!DeriveAccountKey(root, version, account, salt, out))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("OpenSSL could not derive an account key with HKDF-SHA256")));
	if (slot != NULL)
	{
		OPENSSL_cleanse(slot, sizeof(*slot));	/* evict: wipe the old key */
		slot->valid = true;
		slot->hash = h;
		slot->version = version;
		slot->has_account = account != NULL;
		if (account != NULL)
			slot->account = *account;
		slot->salted = salt != NULL;
		if (salt != NULL)
			memcpy(slot->salt, salt, KEYRING_SALT_BYTES);
		memcpy(slot->key, out, KEYRING_KEY_BYTES);
	}
	return true;
}

/*
 * Wipe every cached key derived with an account's salt (format 0x02); see
 * keyring.h.  Never errors (called from a relcache callback).
 */
void
KeyringForgetSaltedKeys(void)
{
	int			i;

	if (account_cache == NULL)
		return;
	for (i = 0; i < KEYRING_CACHE_SIZE; i++)
		if (account_cache[i].valid && account_cache[i].salted)
			OPENSSL_cleanse(&account_cache[i], sizeof(AccountKeySlot));
}

/*
 * At postmaster start: define pgext.master_key_command (postmaster-only;
 * the key material never enters a setting, only the command line does) and
 * pgext.secret_encrypt_version, then load the keys.
 */
void
KeyringInit(void)
{
	DefineCustomStringVariable("pgext.master_key_command",
							   "Command run at server start that prints master key lines \"<version>:<64 hex>\".",
							   "The key material never enters a GUC or the database; only this command line does.",
							   &keyring_master_key_command, "",
							   PGC_POSTMASTER, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomIntVariable("pgext.secret_encrypt_version",
							"Master key version that encrypts new and rewrapped secrets (0 = the newest loaded).",
							"Pin the previous version while a new key reaches every server (replicas too), then set it back to 0.",
							&keyring_encrypt_version, 0, 0, PG_INT32_MAX,
							PGC_SUSET, 0, NULL, NULL, NULL);
	KeyringLoad();
}

/* The version that encrypts: pgext.secret_encrypt_version or the newest. */
int32
KeyringEncryptVersion(void)
{
	KeyringRequire();
	if (keyring_encrypt_version == 0)
		return KeyringNewestVersion();
	if (!KeyringHasVersion(keyring_encrypt_version))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pgext.secret_encrypt_version is %d, but pgext.master_key_command did not provide that key version",
						keyring_encrypt_version),
				 errhint("Set pgext.secret_encrypt_version to 0 (the newest version) or to one of pgext.secret_key_versions().")));
	return keyring_encrypt_version;
}

/* The newest (highest) loaded version. */
int32
KeyringNewestVersion(void)
{
	KeyringRequire();
	return keyring->slots[keyring->nkeys - 1].version;
}

/* Loaded versions in ascending order; returns how many (<= max). */
int
KeyringVersions(int32 *versions, int max)
{
	int			i;
	int			n = 0;

	if (keyring_status != KEYRING_READY)
		return 0;
	for (i = 0; i < keyring->nkeys && n < max; i++)
		versions[n++] = keyring->slots[i].version;
	return n;
}
