/*
 * cloudinit.c — cloud-init user_data validation (PG-free, fuzzed).
 *
 * The checks, in order: size (Hetzner's 32768-byte limit), strict UTF-8
 * without NUL bytes, the header ("#cloud-config" or "#!" on the first line,
 * nothing before it), then for a cloud-config: one YAML document parsed by
 * libyaml's loader, only the YAML 1.1 tags PyYAML's safe loader knows, a
 * mapping (or nothing) at the top, every top-level key one cloud-init knows
 * (an unknown key is almost always a typo cloud-init would skip silently),
 * no key twice (the last would silently win), and the shapes of the common
 * keys.  Every refusal names a line and a column.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <yaml.h>

#include "servers/cloudinit.h"

#define HEADER_CLOUD_CONFIG "#cloud-config"
#define HEADER_SCRIPT "#!"
#define YAML_TAG_PREFIX "tag:yaml.org,2002:"
/* Longest key or value quoted in a message. */
#define QUOTE_MAX 64

/*
 * Top-level keys of cloud-init's cloud-config (its module schema, current
 * and deprecated names, and the base configuration keys a user-data may
 * merge).  Generous on purpose: refusing a real key is worse than missing
 * a typo.
 */
static const char *const known_keys[] = {
	"allow_public_ssh_keys", "ansible", "apk_repos", "apt", "apt_custom_sources_list",
	"apt_ftp_proxy", "apt_get_command", "apt_get_upgrade_subcommand", "apt_get_wrapper",
	"apt_http_proxy", "apt_https_proxy", "apt_mirror", "apt_mirror_search",
	"apt_mirror_search_dns", "apt_pipelining", "apt_preserve_sources_list", "apt_proxy",
	"apt_reboot_if_required", "apt_sources", "apt_update", "apt_upgrade", "authkey_hash",
	"autoinstall", "bootcmd", "byobu_by_default", "ca-certs", "ca_certs", "chef", "chpasswd",
	"cloud_config_modules", "cloud_final_modules", "cloud_init_modules",
	"create_hostname_file", "datasource", "datasource_list", "debconf_selections",
	"def_log_file", "device_aliases", "disable_ec2_metadata", "disable_root",
	"disable_root_opts", "disable_vmware_customization", "disk_setup", "drivers", "fan",
	"final_message", "fqdn", "fs_setup", "groups", "growpart", "grub-dpkg", "grub_dpkg",
	"hostname", "keyboard", "landscape", "locale", "locale_configfile", "log_cfgs", "lxd",
	"manage_etc_hosts", "manage_resolv_conf", "manual_cache_clean", "mcollective",
	"merge_how", "merge_type", "migrate", "mount_default_fields", "mounts", "network",
	"no_ssh_fingerprints", "ntp", "output", "package_reboot_if_required", "package_update",
	"package_upgrade", "packages", "password", "phone_home", "power_state",
	"prefer_fqdn_over_hostname", "preserve_hostname", "preserve_sources_list", "puppet",
	"random_seed", "reporting", "resize_rootfs", "resize_rootfs_tmp", "resolv_conf",
	"rh_subscription", "rsyslog", "runcmd", "salt_minion", "snap", "snappy", "spacewalk",
	"ssh", "ssh_authorized_keys", "ssh_deletekeys", "ssh_fp_console_blacklist",
	"ssh_genkeytypes", "ssh_import_id", "ssh_key_console_blacklist", "ssh_keys",
	"ssh_publish_hostkeys", "ssh_pwauth", "ssh_quiet_keygen", "ssh_redirect_user",
	"ssh_svcname", "swap", "syslog_fix_perms", "system_info", "timezone",
	"ubuntu_advantage", "ubuntu_pro", "unverified_modules", "updates", "user", "users",
	"vendor_data", "wireguard", "write_files", "yum_repo_dir", "yum_repos", "zypper",
};

/* Standard tags PyYAML's safe loader (what cloud-init uses) constructs. */
static const char *const safe_tags[] = {
	"str", "seq", "map", "null", "bool", "int", "float", "binary", "timestamp",
	"omap", "pairs", "set", "merge", "value",
};

/* Keys whose value must be a list; lists of commands check their items too. */
typedef enum ListItems
{
	ITEMS_ANY,					/* anything (packages: names, [name, version], {apt: [...]}) */
	ITEMS_COMMAND,				/* a string or a list of strings, never a mapping */
	ITEMS_STRING,				/* a string */
	ITEMS_FILE					/* a mapping with a path */
} ListItems;

typedef struct ListKey
{
	const char *key;
	ListItems	items;
} ListKey;

static const ListKey list_keys[] = {
	{"runcmd", ITEMS_COMMAND},
	{"bootcmd", ITEMS_COMMAND},
	{"packages", ITEMS_ANY},
	{"write_files", ITEMS_FILE},
	{"ssh_authorized_keys", ITEMS_STRING},
};

#define lengthof(a) (sizeof(a) / sizeof((a)[0]))

/* Record a refusal at (line, column), both 1-based; returns false. */
static bool
Fail(CloudInitError *err, int line, int column, const char *hint, const char *fmt,...)
	__attribute__((format(printf, 5, 6)));

static bool
Fail(CloudInitError *err, int line, int column, const char *hint, const char *fmt,...)
{
	va_list		ap;
	size_t		n;

	err->line = line;
	err->column = column;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	snprintf(err->hint, sizeof(err->hint), "%s", hint ? hint : "");
	/* hints are sentences: capital first letter, final period */
	n = strlen(err->hint);
	if (n > 0 && err->hint[0] >= 'a' && err->hint[0] <= 'z')
		err->hint[0] -= 'a' - 'A';
	if (n > 0 && n + 1 < sizeof(err->hint) && strchr(".?!", err->hint[n - 1]) == NULL)
		strcat(err->hint, ".");
	return false;
}

/* Refusal at a libyaml mark (0-based). */
#define FailAt(err, mark, ...) \
	Fail((err), (int) (mark).line + 1, (int) (mark).column + 1, __VA_ARGS__)

/*
 * Line and column (1-based, columns in characters) of byte offset in data,
 * counting line breaks the way libyaml does: LF, CR LF, CR, NEL, LS, PS.
 */
static void
PositionOf(const char *data, size_t len, size_t offset, int *line, int *column)
{
	const unsigned char *p = (const unsigned char *) data;
	size_t		i = 0;
	int			l = 1;
	int			c = 1;

	if (offset > len)
		offset = len;
	while (i < offset)
	{
		size_t		brk = 0;

		if (p[i] == '\n')
			brk = 1;
		else if (p[i] == '\r')
			brk = (i + 1 < len && p[i + 1] == '\n') ? 2 : 1;
		else if (p[i] == 0xC2 && i + 1 < len && p[i + 1] == 0x85)
			brk = 2;
		else if (p[i] == 0xE2 && i + 2 < len && p[i + 1] == 0x80 &&
				 (p[i + 2] == 0xA8 || p[i + 2] == 0xA9))
			brk = 3;
		if (brk > 0 && i + brk <= offset)
		{
			l++;
			c = 1;
			i += brk;
			continue;
		}
		/* a character starts at every byte that is not a continuation byte */
		i++;
		while (i < offset && (p[i] & 0xC0) == 0x80)
			i++;
		c++;
	}
	*line = l;
	*column = c;
}

/* Refusal at a byte offset of the input. */
static bool
FailAtOffset(CloudInitError *err, const char *data, size_t len, size_t offset,
			 const char *hint, const char *message)
{
	int			line;
	int			column;

	PositionOf(data, len, offset, &line, &column);
	return Fail(err, line, column, hint, "%s", message);
}

/* Length of the strict-UTF-8 prefix of data (see cloudinit.h). */
size_t
pgext_utf8_valid_prefix(const char *data, size_t len)
{
	const unsigned char *p = (const unsigned char *) data;
	size_t		i = 0;

	while (i < len)
	{
		unsigned char b = p[i];
		size_t		n;
		unsigned char lo = 0x80;
		unsigned char hi = 0xBF;
		size_t		k;

		if (b < 0x80)
		{
			i++;
			continue;
		}
		if (b >= 0xC2 && b <= 0xDF)
			n = 1;
		else if (b >= 0xE0 && b <= 0xEF)
		{
			n = 2;
			if (b == 0xE0)
				lo = 0xA0;		/* overlong below U+0800 */
			else if (b == 0xED)
				hi = 0x9F;		/* UTF-16 surrogates U+D800..U+DFFF */
		}
		else if (b >= 0xF0 && b <= 0xF4)
		{
			n = 3;
			if (b == 0xF0)
				lo = 0x90;		/* overlong below U+10000 */
			else if (b == 0xF4)
				hi = 0x8F;		/* above U+10FFFF */
		}
		else
			return i;			/* continuation byte, C0, C1 or F5..FF */
		if (len - i <= n)
			return i;			/* truncated sequence */
		if (p[i + 1] < lo || p[i + 1] > hi)
			return i;
		for (k = 2; k <= n; k++)
			if ((p[i + k] & 0xC0) != 0x80)
				return i;
		i += n + 1;
	}
	return len;
}

/* Equality of a counted string and a C string. */
static bool
EqualsKey(const char *s, size_t len, const char *key)
{
	return strlen(key) == len && memcmp(s, key, len) == 0;
}

/* Whether key is in known_keys (exact, case-sensitive, as cloud-init reads it). */
bool
pgext_cloudinit_known_key(const char *key, size_t len)
{
	size_t		i;

	for (i = 0; i < lengthof(known_keys); i++)
		if (EqualsKey(key, len, known_keys[i]))
			return true;
	return false;
}

/* Lower-case an ASCII byte. */
static unsigned char
Lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

/*
 * Edit distance (optimal string alignment: insert, delete, substitute,
 * swap two neighbours; case ignored) between a and b, or limit + 1 when it
 * exceeds limit or a is too long to be a near miss.
 */
static int
EditDistance(const char *a, size_t alen, const char *b, int limit)
{
	size_t		blen = strlen(b);
	int			d[QUOTE_MAX + 2][QUOTE_MAX + 2];
	size_t		i;
	size_t		j;

	if (alen > QUOTE_MAX || blen > QUOTE_MAX ||
		(alen > blen ? alen - blen : blen - alen) > (size_t) limit)
		return limit + 1;
	for (i = 0; i <= alen; i++)
		d[i][0] = (int) i;
	for (j = 0; j <= blen; j++)
		d[0][j] = (int) j;
	for (i = 1; i <= alen; i++)
	{
		for (j = 1; j <= blen; j++)
		{
			int			cost = Lower(a[i - 1]) == Lower(b[j - 1]) ? 0 : 1;
			int			best = d[i - 1][j] + 1;

			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < best)
				best = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && Lower(a[i - 1]) == Lower(b[j - 2]) &&
				Lower(a[i - 2]) == Lower(b[j - 1]) && d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[alen][blen] > limit ? limit + 1 : d[alen][blen];
}

/* The known key closest to key within edit distance 2, or NULL. */
static const char *
Suggest(const char *key, size_t len)
{
	const char *best = NULL;
	int			bestd = 3;
	size_t		i;

	for (i = 0; i < lengthof(known_keys); i++)
	{
		int			dist = EditDistance(key, len, known_keys[i], 2);

		if (dist < bestd)
		{
			bestd = dist;
			best = known_keys[i];
		}
	}
	return best;
}

/*
 * Printable copy of a scalar for a message: at most QUOTE_MAX bytes (cut at
 * a character boundary, "..." appended), control characters, quotes and
 * backslashes as '?'.
 */
static void
Quote(const unsigned char *s, size_t len, char *out, size_t outlen)
{
	size_t		n = len;
	size_t		i;
	size_t		o = 0;

	if (n > QUOTE_MAX)
	{
		n = QUOTE_MAX;
		while (n > 0 && (s[n] & 0xC0) == 0x80)
			n--;
	}
	for (i = 0; i < n && o + 1 < outlen; i++)
	{
		unsigned char c = s[i];

		out[o++] = (c < 0x20 || c == 0x7F || c == '"' || c == '\\') ? '?' : (char) c;
	}
	if (n < len)
		for (i = 0; i < 3 && o + 1 < outlen; i++)
			out[o++] = '.';
	out[o] = '\0';
}

/* Whether node is a scalar (string, number, bool...; not null is not checked). */
static bool
IsScalar(const yaml_node_t *node)
{
	return node != NULL && node->type == YAML_SCALAR_NODE;
}

/* Whether node is the YAML null: an empty plain scalar, ~, null, Null or NULL. */
static bool
IsNull(const yaml_node_t *node)
{
	const char *v;
	size_t		len;

	if (!IsScalar(node) || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	if (node->tag && strcmp((const char *) node->tag, YAML_TAG_PREFIX "null") != 0 &&
		strcmp((const char *) node->tag, YAML_TAG_PREFIX "str") != 0)
		return false;
	v = (const char *) node->data.scalar.value;
	len = node->data.scalar.length;
	return len == 0 || EqualsKey(v, len, "~") || EqualsKey(v, len, "null") ||
		EqualsKey(v, len, "Null") || EqualsKey(v, len, "NULL");
}

/* Name of a node's kind for messages. */
static const char *
KindName(const yaml_node_t *node)
{
	if (node == NULL)
		return "nothing";
	if (IsNull(node))
		return "null";
	switch (node->type)
	{
		case YAML_SCALAR_NODE:
			return "a scalar";
		case YAML_SEQUENCE_NODE:
			return "a list";
		case YAML_MAPPING_NODE:
			return "a mapping";
		default:
			return "nothing";
	}
}

/* Every node's tag is one PyYAML's safe loader constructs. */
static bool
CheckTags(yaml_document_t *doc, CloudInitError *err)
{
	yaml_node_t *node;

	for (node = doc->nodes.start; node < doc->nodes.top; node++)
	{
		const char *tag = (const char *) node->tag;
		bool		ok = false;
		size_t		i;
		char		q[QUOTE_MAX + 4];

		if (tag && strncmp(tag, YAML_TAG_PREFIX, strlen(YAML_TAG_PREFIX)) == 0)
			for (i = 0; i < lengthof(safe_tags); i++)
				if (strcmp(tag + strlen(YAML_TAG_PREFIX), safe_tags[i]) == 0)
					ok = true;
		if (!ok)
		{
			Quote((const unsigned char *) (tag ? tag : ""), tag ? strlen(tag) : 0, q, sizeof(q));
			return FailAt(err, node->start_mark,
						  "drop the tag: cloud-init loads YAML with a safe loader that knows only the standard tags (!!str, !!int, !!binary, ...)",
						  "unsupported YAML tag \"%s\"", q);
		}
	}
	return true;
}

/* The value under key in mapping node, or NULL. */
static yaml_node_t *
MappingGet(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
	yaml_node_pair_t *pair;

	for (pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top; pair++)
	{
		yaml_node_t *k = yaml_document_get_node(doc, pair->key);

		if (IsScalar(k) && EqualsKey((const char *) k->data.scalar.value,
									 k->data.scalar.length, key))
			return yaml_document_get_node(doc, pair->value);
	}
	return NULL;
}

/* Shape of a key that takes a list, and of its items. */
static bool
CheckList(yaml_document_t *doc, const ListKey *lk, yaml_node_t *value, CloudInitError *err)
{
	yaml_node_item_t *item;
	int			n = 0;

	if (value->type != YAML_SEQUENCE_NODE)
		return FailAt(err, value->start_mark,
					  "write it as a YAML list: one \"- item\" per line",
					  "\"%s\" must be a list, not %s", lk->key, KindName(value));
	for (item = value->data.sequence.items.start; item < value->data.sequence.items.top; item++)
	{
		yaml_node_t *it = yaml_document_get_node(doc, *item);
		yaml_node_t *path;

		n++;
		if (it == NULL)
			continue;
		switch (lk->items)
		{
			case ITEMS_ANY:
				break;
			case ITEMS_COMMAND:
				if (it->type == YAML_MAPPING_NODE)
					return FailAt(err, it->start_mark,
								  "an unquoted \": \" inside a command makes it a mapping: quote the whole command",
								  "\"%s\" item %d is a mapping, not a command (a string or a list of strings)",
								  lk->key, n);
				if (it->type == YAML_SEQUENCE_NODE)
				{
					yaml_node_item_t *arg;

					for (arg = it->data.sequence.items.start; arg < it->data.sequence.items.top; arg++)
					{
						yaml_node_t *a = yaml_document_get_node(doc, *arg);

						if (a != NULL && !IsScalar(a))
							return FailAt(err, a->start_mark,
										  "a command given as a list holds one string per argument: quote the argument",
										  "\"%s\" item %d has an argument that is %s, not a string",
										  lk->key, n, KindName(a));
					}
				}
				break;
			case ITEMS_STRING:
				if (!IsScalar(it) || IsNull(it))
					return FailAt(err, it->start_mark,
								  "write one key per item, as a string",
								  "\"%s\" item %d must be a string, not %s", lk->key, n, KindName(it));
				break;
			case ITEMS_FILE:
				if (it->type != YAML_MAPPING_NODE)
					return FailAt(err, it->start_mark,
								  "each entry is a mapping such as {path: /etc/example.conf, content: ...}",
								  "\"write_files\" entry %d must be a mapping, not %s", n, KindName(it));
				path = MappingGet(doc, it, "path");
				if (path == NULL)
					return FailAt(err, it->start_mark,
								  "give every entry the absolute path of the file to write",
								  "\"write_files\" entry %d has no \"path\"", n);
				if (!IsScalar(path) || IsNull(path))
					return FailAt(err, path->start_mark,
								  "give the absolute path of the file to write as a string",
								  "\"write_files\" entry %d: \"path\" must be a string, not %s",
								  n, KindName(path));
				break;
		}
	}
	return true;
}

/* The top-level mapping: known keys, each once, common shapes. */
static bool
CheckTopLevel(yaml_document_t *doc, yaml_node_t *root, CloudInitError *err)
{
	yaml_node_pair_t *pair;

	for (pair = root->data.mapping.pairs.start; pair < root->data.mapping.pairs.top; pair++)
	{
		yaml_node_t *k = yaml_document_get_node(doc, pair->key);
		yaml_node_t *v = yaml_document_get_node(doc, pair->value);
		const char *key;
		size_t		klen;
		yaml_node_pair_t *prev;
		size_t		i;
		char		q[QUOTE_MAX + 4];

		if (k == NULL || v == NULL)
			continue;
		if (!IsScalar(k))
			return FailAt(err, k->start_mark,
						  "top-level keys are cloud-init module keys such as runcmd or packages",
						  "a top-level key must be a string, not %s", KindName(k));
		key = (const char *) k->data.scalar.value;
		klen = k->data.scalar.length;
		if (EqualsKey(key, klen, "<<"))
			continue;			/* a YAML merge key: PyYAML merges it */
		Quote((const unsigned char *) key, klen, q, sizeof(q));
		if (!pgext_cloudinit_known_key(key, klen))
		{
			const char *s = Suggest(key, klen);
			char		hint[256];

			if (s)
				snprintf(hint, sizeof(hint),
						 "did you mean \"%s\"? cloud-init would skip \"%s\" silently", s, q);
			else
				snprintf(hint, sizeof(hint),
						 "check the spelling against cloud-init's module documentation; cloud-init would skip an unknown key silently");
			return FailAt(err, k->start_mark, hint, "unknown cloud-config key \"%s\"", q);
		}
		for (prev = root->data.mapping.pairs.start; prev < pair; prev++)
		{
			yaml_node_t *pk = yaml_document_get_node(doc, prev->key);

			if (IsScalar(pk) && pk->data.scalar.length == klen &&
				memcmp(pk->data.scalar.value, key, klen) == 0)
				return FailAt(err, k->start_mark,
							  "merge them into one: cloud-init would keep only the last one",
							  "cloud-config key \"%s\" appears twice (first at line %d)",
							  q, (int) pk->start_mark.line + 1);
		}
		for (i = 0; i < lengthof(list_keys); i++)
			if (EqualsKey(key, klen, list_keys[i].key) &&
				!CheckList(doc, &list_keys[i], v, err))
				return false;
	}
	return true;
}

/* Report the error libyaml's loader stopped at. */
static bool
LoadFailed(yaml_parser_t *parser, const char *data, size_t len, CloudInitError *err)
{
	char		msg[200];

	if (parser->error == YAML_MEMORY_ERROR)
		return Fail(err, 1, 1, "retry; the server is short of memory",
					"out of memory while parsing user_data");
	snprintf(msg, sizeof(msg), "invalid YAML: %s%s%s",
			 parser->problem ? parser->problem : "syntax error",
			 parser->context ? " " : "", parser->context ? parser->context : "");
	if (parser->error == YAML_READER_ERROR)
		return FailAtOffset(err, data, len, parser->problem_offset,
							"remove control characters from user_data", msg);
	return FailAt(err, parser->problem_mark,
				  "fix the YAML at that spot (indentation, a missing \":\", an unclosed quote or bracket)",
				  "%s", msg);
}

/* Parse a cloud-config with libyaml and check it; frees what it loads. */
static bool
CheckCloudConfig(const char *data, size_t len, CloudInitError *err)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_document_t extra;
	yaml_node_t *root;
	bool		ok = true;

	if (!yaml_parser_initialize(&parser))
		return Fail(err, 1, 1, "retry; the server is short of memory",
					"out of memory while parsing user_data");
	yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
	yaml_parser_set_input_string(&parser, (const unsigned char *) data, len);
	if (!yaml_parser_load(&parser, &doc))
	{
		ok = LoadFailed(&parser, data, len, err);
		yaml_parser_delete(&parser);
		return ok;
	}

	root = yaml_document_get_root_node(&doc);
	if (root != NULL)
	{
		/* PyYAML's safe_load refuses a stream of several documents */
		if (!yaml_parser_load(&parser, &extra))
			ok = LoadFailed(&parser, data, len, err);
		else
		{
			if (yaml_document_get_root_node(&extra) != NULL)
				ok = FailAt(err, extra.start_mark,
							"remove the \"---\" and what follows, or merge it into the first: cloud-init reads a single YAML document",
							"more than one YAML document");
			yaml_document_delete(&extra);
		}
	}
	if (ok)
		ok = CheckTags(&doc, err);
	if (ok && root != NULL && !IsNull(root))
	{
		if (root->type != YAML_MAPPING_NODE)
			ok = FailAt(err, root->start_mark,
						"a cloud-config is a mapping of keys such as \"runcmd:\" or \"packages:\" at the start of a line",
						"the top level of a cloud-config must be a mapping, not %s", KindName(root));
		else
			ok = CheckTopLevel(&doc, root, err);
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return ok;
}

/* The whole user_data check, cheapest first (see the file header). */
bool
pgext_cloudinit_check(const char *data, size_t len, CloudInitError *err)
{
	const char *nul;
	size_t		valid;
	size_t		hlen = strlen(HEADER_CLOUD_CONFIG);
	size_t		i;

	memset(err, 0, sizeof(*err));
	if (len > CLOUDINIT_MAX_BYTES)
	{
		char		msg[128];

		snprintf(msg, sizeof(msg), "user_data is %zu bytes; Hetzner takes at most %d (the limit falls here)",
				 len, CLOUDINIT_MAX_BYTES);
		return FailAtOffset(err, data, len, CLOUDINIT_MAX_BYTES,
							"shorten it: fetch large files from a URL in runcmd, or compress them into a write_files entry (encoding: gz+b64)",
							msg);
	}
	valid = pgext_utf8_valid_prefix(data, len);
	if (valid < len)
	{
		char		msg[128];

		snprintf(msg, sizeof(msg), "user_data is not valid UTF-8 (byte 0x%02X at offset %zu)",
				 (unsigned char) data[valid], valid);
		return FailAtOffset(err, data, len, valid,
							"save the file as UTF-8; encode binary content with base64 in a write_files entry",
							msg);
	}
	nul = memchr(data, '\0', len);
	if (nul != NULL)
		return FailAtOffset(err, data, len, (size_t) (nul - data),
							"remove the NUL byte; encode binary content with base64 in a write_files entry",
							"user_data contains a NUL byte");

	/* the header */
	if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
		return Fail(err, 1, 1, "save the file as UTF-8 without a byte order mark",
					"user_data starts with a byte order mark (BOM); cloud-init would not recognise the header after it");
	if (len > 0 && (data[0] == ' ' || data[0] == '\t' || data[0] == '\n' || data[0] == '\r'))
		return Fail(err, 1, 1,
					"remove the blank lines and spaces before the header: it must be the very first bytes",
					"user_data starts with whitespace before its \"#cloud-config\" or \"#!\" header");
	if (len >= strlen(HEADER_SCRIPT) && memcmp(data, HEADER_SCRIPT, strlen(HEADER_SCRIPT)) == 0)
		return true;			/* a script: size and encoding were all to check */
	if (len < hlen || memcmp(data, HEADER_CLOUD_CONFIG, hlen) != 0)
		return Fail(err, 1, 1,
					"start the first line with \"#cloud-config\" (a cloud-config) or \"#!\" (a script, e.g. #!/bin/bash)",
					"user_data must start with \"#cloud-config\" or \"#!\"");
	/* "#cloud-config" then optional blanks, then the end of the line */
	for (i = hlen; i < len && (data[i] == ' ' || data[i] == '\t'); i++)
		;
	if (i < len && data[i] != '\n' && data[i] != '\r')
	{
		char		q[QUOTE_MAX + 4];
		size_t		e = hlen;

		while (e < len && data[e] != '\n' && data[e] != '\r')
			e++;
		Quote((const unsigned char *) data, e, q, sizeof(q));
		return Fail(err, 1, (int) hlen + 1,
					"put \"#cloud-config\" alone on the first line (other types such as #cloud-config-archive or #include are not accepted)",
					"unsupported user_data header \"%s\"", q);
	}
	return CheckCloudConfig(data, len, err);
}
