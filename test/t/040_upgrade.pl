# Upgrades: 1.0 is released and frozen; ALTER EXTENSION pgext UPDATE turns a
# 1.0 install holding data into exactly a fresh install of the current version.
#
# 1. sql/pgext--1.0.sql (committed, shipped) still has the SHA-256 it was
#    released with, in the tree and as installed.
# 2. In database "old": CREATE EXTENSION pgext VERSION '1.0', data through the
#    public functions (an account, a grant and a deduction, a secret, a server
#    after an access grant, a health check, a verified generic webhook), then
#    ALTER EXTENSION pgext UPDATE: the version is the current one and the data
#    survived (balances, credit_audit()/credit_verify() empty, the secret
#    decrypts, the rows are there).
# 3. The schema of "old" equals a fresh CREATE EXTENSION pgext in "new":
#    `pg_dump -s --binary-upgrade` (plain -s leaves out extension members)
#    with the install-specific noise filtered out (OID-setting calls, frozen
#    xids, sequence positions, dropped-column placeholders, the random
#    \restrict key), plus the config_dump registrations
#    (pg_extension.extconfig/extcondition, by table name).
# 4. The comparison can fail: a scratch database with a changed column, a
#    changed function, a changed grant and a changed config_dump condition
#    gives a diff naming each.
use strict;
use warnings;
use Digest::SHA ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use PgextTest;

# The released 1.0 install script.  Never change this constant.
my $sha_1_0 = '196ea9098e1accd1711db2288709d4bc443f3e0faf50786312e73f62bdf2c35e';
my $frozen_msg = '1.0 is released: put schema changes in sql/install/*.sql AND sql/pgext--1.0--1.1.sql';

# The current version: default_version in pgext.control.
my $current;
{
	open(my $fh, '<', PgextTest::root() . '/pgext.control') or die "pgext.control: $!";
	while (<$fh>) { $current = $1 if /^default_version\s*=\s*'([^']+)'/; }
	close($fh);
}
ok(defined $current && $current ne '1.0', "pgext.control: default_version $current is past the released 1.0");

my $node = PgextTest::node('upgrade', extension => 0);

# ---- 1. the released script is frozen ----------------------------------------

my $sharedir = $node->config_data('--sharedir');
for my $file (PgextTest::root() . '/sql/pgext--1.0.sql', "$sharedir/extension/pgext--1.0.sql")
{
	my $sha = -f $file ? Digest::SHA->new(256)->addfile($file)->hexdigest : 'missing';
	is($sha, $sha_1_0, "$file unchanged") or diag("$file changed. $frozen_msg");
}
ok(-f "$sharedir/extension/pgext--1.0--$current.sql", "the upgrade script 1.0--$current is installed");

is($node->safe_psql('postgres',
		q{SELECT string_agg(version, ',' ORDER BY version) FROM pg_available_extension_versions WHERE name = 'pgext'}),
	"1.0,$current", 'versions 1.0 and the current one are available');
is($node->safe_psql('postgres',
		qq{SELECT path FROM pg_extension_update_paths('pgext') WHERE source = '1.0' AND target = '$current'}),
	"1.0--$current", "an update path 1.0 -> $current");

# ---- 2. 1.0 with data, updated ------------------------------------------------

my $n8n_key = 'n8n-UPGRADECANARY-signing-key';
my $body = '{"id":"evt_up_1","type":"workflow.finished","result":{"ok":true}}';
my $sig = Digest::SHA::hmac_sha256_hex($body, $n8n_key);

$node->safe_psql('postgres', 'CREATE DATABASE old');
$node->safe_psql('old', q{CREATE EXTENSION pgext VERSION '1.0' CASCADE});
is($node->safe_psql('old', q{SELECT extversion FROM pg_extension WHERE extname = 'pgext'}), '1.0',
	'database "old" has pgext 1.0');

my $acct = $node->safe_psql('old', q{SELECT pgext.account_create('upgrade-user')});
$node->safe_psql('old', qq{
	SELECT pgext.credit_grant('$acct', 500, 'grant-1', 'purchase');
	SELECT pgext.credit_deduct('$acct', 120, 'deduct-1', 'chat');
	SELECT pgext.secret_set('openai:api_key', 'sk-UPGRADECANARY-0123456789', '$acct');
	SELECT pgext.secret_set('webhook:n8n', '$n8n_key');
	SELECT pgext.webhook_source_set('n8n', 'webhook:n8n');
	SELECT pgext.access_grant('$acct', now() + interval '30 days', 'upgrade test');
});
my $server = $node->safe_psql('old', qq{
	SELECT pgext.server_request('$acct', 'agent-1',
	  '{"server_type":"cx22","image":"ubuntu-24.04","locations":["fsn1"]}')});
like($server, qr/^\d+$/, 'a server was requested on 1.0');
my $check = $node->safe_psql('old', qq{SELECT pgext.health_check_add($server, 'http://203.0.113.9:8080/health')});
like($check, qr/^\d+$/, 'a health check was added on 1.0');
is($node->safe_psql('old', qq{SELECT status FROM pgext.webhook_ingest('n8n', \$b\$$body\$b\$, '$sig')}),
	'accepted', 'a generic webhook was accepted on 1.0');

# What the data looks like before the update, compared after it.
my $snapshot = qq{
	SELECT pgext.credit_balance('$acct');
	SELECT count(*) FROM pgext.accounts;
	SELECT string_agg(state, ',') FROM pgext.servers;
	SELECT count(*) FROM pgext.health_checks;
	SELECT string_agg(event_id || ':' || status, ',') FROM pgext.webhook_events;
	SELECT count(*) FROM pgext.access_grants;
};
my $before = $node->safe_psql('old', $snapshot);

$node->safe_psql('old', 'ALTER EXTENSION pgext UPDATE');
is($node->safe_psql('old', q{SELECT extversion FROM pg_extension WHERE extname = 'pgext'}), $current,
	"ALTER EXTENSION pgext UPDATE: database \"old\" has pgext $current");

is($node->safe_psql('old', $snapshot), $before, 'the rows survived the update');
is($node->safe_psql('old', qq{SELECT pgext.credit_balance('$acct')}), '380', 'balance 500 - 120 = 380');
is($node->safe_psql('old', 'SELECT count(*) FROM pgext.credit_audit()'), '0', 'credit_audit() finds nothing');
is($node->safe_psql('old', 'SELECT count(*) FROM pgext.credit_verify()'), '0', 'credit_verify() finds nothing');
is($node->safe_psql('old', qq{SELECT pgext.secret_get('openai:api_key', '$acct') = 'sk-UPGRADECANARY-0123456789'}),
	't', 'the secret decrypts after the update');
is($node->safe_psql('old', q{SELECT status FROM pgext.webhook_ingest('n8n', $b$} . $body . qq{\$b\$, '$sig')}),
	'duplicate', 'a redelivered webhook is still a duplicate');
is($node->safe_psql('old', qq{SELECT (pgext.credit_deduct('$acct', 80, 'deduct-2')).status || '/' || pgext.credit_balance('$acct')}),
	'deducted/300', 'credits work after the update');

# ---- 3. the updated schema equals a fresh install ------------------------------

$node->safe_psql('postgres', 'CREATE DATABASE new');
$node->safe_psql('new', 'CREATE EXTENSION pgext CASCADE');
is($node->safe_psql('new', q{SELECT extversion FROM pg_extension WHERE extname = 'pgext'}), $current,
	"database \"new\" has a fresh pgext $current");

my $tmp = PostgreSQL::Test::Utils::tempdir;

# The schema of $db as pg_dump -s --binary-upgrade prints it (every extension
# member, its grants and its ALTER EXTENSION ... ADD), without what differs
# between two installs of the same schema, followed by the config_dump
# registrations.
sub schema_of
{
	my ($db) = @_;
	my $file = "$tmp/$db.sql";
	$node->command_ok(
		[ 'pg_dump', '-s', '--binary-upgrade', '-d', $node->connstr($db), '-f', $file ],
		"pg_dump -s --binary-upgrade of \"$db\"");
	open(my $fh, '<', $file) or die "$file: $!";
	my @lines;
	while (my $l = <$fh>)
	{
		next if $l =~ /binary_upgrade_|^-- For binary upgrade/;                 # OIDs, empty extension shells
		next if $l =~ /\b(relfrozenxid|relminmxid|datfrozenxid|datminmxid)\b/;  # frozen xids
		next if $l =~ /^UPDATE pg_catalog\.pg_class$|^WHERE oid = /;               # (their other lines)
		next if $l =~ /^SELECT pg_catalog\.setval\(/;                             # sequence positions are data
		next if $l =~ /^\\(un)?restrict /;                                       # a random key per dump
		next if $l =~ /pg\.dropped|UPDATE pg_catalog\.pg_attribute/;             # dropped-column placeholders
		next if $l =~ /^-- (Dumped from|Dumped by|PostgreSQL database dump)/;
		push @lines, $l;
	}
	close($fh);
	my $config = $node->safe_psql($db, q{
		SELECT string_agg(c::regclass::text || ' ' || COALESCE(NULLIF(w, ''), '(none)'), E'\n' ORDER BY c::regclass::text)
		  FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS u(c, w)
		 WHERE e.extname = 'pgext'});
	return join('', @lines) . "\n-- config_dump registrations\n$config\n";
}

# The lines of $b not in $a (+) and of $a not in $b (-), by diff -u.
sub schema_diff
{
	my ($name_a, $a, $name_b, $b) = @_;
	my ($fa, $fb) = ("$tmp/$name_a.schema", "$tmp/$name_b.schema");
	for ([ $fa, $a ], [ $fb, $b ])
	{
		open(my $fh, '>', $_->[0]) or die "$_->[0]: $!";
		print $fh $_->[1];
		close($fh);
	}
	my ($out, $err) = run_command([ 'diff', '-u', $fa, $fb ]);
	return $out;
}

my $new_schema = schema_of('new');
my $old_schema = schema_of('old');
cmp_ok(scalar(() = $new_schema =~ /^ALTER EXTENSION pgext ADD /mg), '>', 100,
	'the dump lists the extension members (ALTER EXTENSION pgext ADD ...)');
like($new_schema, qr/^CREATE FUNCTION pgext\.health_check_add\(/m, 'and their definitions');
like($new_schema, qr/^GRANT .* TO pgext_app;$/m, 'and their grants');
like($new_schema, qr/^pgext\.accounts \(none\)$/m, 'and the config_dump registrations');
unlike($new_schema, qr/binary_upgrade|relfrozenxid/, 'install-specific lines are filtered out');
my $diff = schema_diff('new', $new_schema, 'old', $old_schema);
is($diff, '', "the schema after 1.0 + ALTER EXTENSION UPDATE equals a fresh $current")
  or diag("1.0 updated vs fresh $current differ: sql/pgext--1.0--$current.sql must make the same "
	  . "changes as sql/install/*.sql\n" . substr($diff, 0, 20000));

# ---- 4. the comparison can fail --------------------------------------------------

$node->safe_psql('postgres', 'CREATE DATABASE scratch');
$node->safe_psql('scratch', 'CREATE EXTENSION pgext CASCADE');
$node->safe_psql('scratch', q{
	ALTER TABLE pgext.accounts ADD COLUMN scratch_note text;
	ALTER FUNCTION pgext.credit_balance(uuid) SET work_mem = '8MB';
	REVOKE ALL ON FUNCTION pgext.health_check_add(bigint, text, text, interval, interval) FROM pgext_app;
	UPDATE pg_extension SET extcondition[1] = 'WHERE false' WHERE extname = 'pgext';
});
my $scratch_diff = schema_diff('new2', $new_schema, 'scratch', schema_of('scratch'));
isnt($scratch_diff, '', 'a different schema gives a non-empty diff');
like($scratch_diff, qr/^\+\s+scratch_note text/m, 'it shows an added column');
like($scratch_diff, qr/^\+\s+SET work_mem TO '8MB'/m, 'a changed function');
like($scratch_diff, qr/^\+REVOKE ALL ON FUNCTION pgext\.health_check_add\(.*\) FROM pgext_app;$/m, 'a changed grant');
like($scratch_diff, qr/^\+\S+ WHERE false$/m, 'a changed config_dump condition');

$node->stop;
done_testing();
