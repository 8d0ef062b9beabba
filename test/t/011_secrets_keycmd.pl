# pgext.master_key_command at server start: a missing, failing or malformed
# command never stops the server; it logs a WARNING that names the setting
# (never a key), and the secret functions then raise a clear error naming it.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use PgextTest;

my $good_keys = PgextTest::keys_path();
# The key bytes of test/keys.sh: they must never show up in a log.
my @key_hex = (
	'000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
	'202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f');

my $node = PgextTest::node('secrets_keycmd', keys => undef, start => 0);
my $dir = $node->basedir;
my $running = 0;

# Write an executable key command into the node's directory.
sub key_script
{
	my ($name, $body) = @_;
	return PgextTest::shell_script("$dir/$name", $body);
}

# Restart with a command (undef = unset); returns the log written meanwhile.
sub restart_with
{
	my ($command) = @_;
	my $conf = defined $command ? "pgext.master_key_command = '$command'" : "pgext.master_key_command = ''";
	$node->append_conf('postgresql.conf', $conf);
	my $start = -e $node->logfile ? -s $node->logfile : 0;
	if ($running) { $node->restart; }
	else          { $node->start; $running = 1; }
	return substr(slurp_file($node->logfile), $start);
}

# Check that the secret functions refuse with an error matching $re.
sub refuses
{
	my ($re, $case) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', q{SELECT pgext.secret_get('k')});
	isnt($ret, 0, "$case: secret_get refuses");
	like($err, $re, "$case: secret_get names the problem");
	like($err, qr/HINT:  .*restart the server/, "$case: and says how to fix it");
	($ret, $out, $err) = $node->psql('postgres', q{SELECT pgext.secret_set('k', 'v')});
	like($err, $re, "$case: secret_set refuses the same way");
	($ret, $out, $err) = $node->psql('postgres', q{SELECT pgext.secret_rewrap()});
	like($err, $re, "$case: secret_rewrap refuses the same way");
}

# 1. Unset.
my $log = restart_with(undef);
$node->safe_psql('postgres', 'CREATE EXTENSION pgext CASCADE');
like($log, qr/WARNING:  pgext.master_key_command is not set: pgext secret functions will refuse to run/,
	'unset: startup warning names the setting');
refuses(qr/ERROR:  pgext secrets are unavailable: pgext.master_key_command is not set/, 'unset');
is($node->safe_psql('postgres', q{
	SELECT (pgext.credit_grant(a, 5, 'k')).status FROM pgext.account_create('t') a}),
	'granted', 'unset: credits still work');
my ($ret, $out, $err) = $node->psql('postgres', 'SHOW pgext.master_key_command');
is($out, '', 'unset: the setting is empty');

# 2. The command fails.
$log = restart_with(key_script('fail.sh', "echo 'oops' >&2\nexit 3\n"));
like($log, qr/WARNING:  pgext.master_key_command failed: it exited with status 3; pgext secret functions will refuse to run/,
	'failing command: warning with the exit status');
refuses(qr/ERROR:  pgext secrets are unavailable: pgext.master_key_command failed at server start: it exited with status 3/,
	'failing command');

# 3. The command does not exist.
$log = restart_with("$dir/no-such-command");
like($log, qr/pgext.master_key_command failed: it exited with status 127/, 'missing command: status 127');
refuses(qr/failed at server start: it exited with status 127/, 'missing command');

# 4. A key with 63 hex digits: the line number is named, its bytes are not.
my $short_hex = '5' x 63;
$log = restart_with(key_script('short.sh',
	"echo '1:$key_hex[0]'\necho '2:$short_hex'\n"));
like($log, qr/failed: line 2: key version 2 is not followed by exactly 64 hex digits/,
	'short key: names the line');
unlike($log, qr/5{20}/, 'short key: its digits are not logged');
refuses(qr/failed at server start: line 2: key version 2 is not followed by exactly 64 hex digits/,
	'short key (no partial keyring)');

# 5. Other malformed lines.
$log = restart_with(key_script('dup.sh', "echo '1:$key_hex[0]'\necho '1:$key_hex[1]'\n"));
like($log, qr/failed: line 2: key version 1 appears twice/, 'duplicate version');
$log = restart_with(key_script('nocolon.sh', "echo '$key_hex[0]'\n"));
like($log, qr/failed: line 1 has no "<version>:" prefix/, 'missing version');
unlike($log, qr/$key_hex[0]/, 'missing version: the key is not logged');
$log = restart_with(key_script('zero.sh', "echo '0:$key_hex[0]'\n"));
like($log, qr/failed: line 1: key versions start at 1/, 'version 0');
$log = restart_with(key_script('empty.sh', "exit 0\n"));
like($log, qr/failed: it printed no key lines/, 'no output');
refuses(qr/failed at server start: it printed no key lines/, 'no output');
$log = restart_with(key_script('long.sh', "printf '1:%0600d\\n' 0\n"));
like($log, qr/failed: line 1 is longer than 510 bytes/, 'overlong line');

# 6. Comments, blank lines, CRLF and trailing blanks are fine.
$log = restart_with(key_script('ok.sh',
	"echo '# pgext keys'\necho ''\nprintf '2:$key_hex[1]\\r\\n'\necho '1:$key_hex[0]  '\n"));
like($log, qr/loaded 2 master key version\(s\) from pgext.master_key_command; newest is 2/,
	'well-formed keys with comments load');
is($node->safe_psql('postgres', q{SELECT pgext.secret_key_versions()}), '{1,2}', 'versions 1 and 2');
$node->safe_psql('postgres', q{SELECT pgext.secret_set('k', 'keycmd-value')});
is($node->safe_psql('postgres', q{SELECT pgext.secret_get('k')}), 'keycmd-value', 'round trip');

# 7. Same keys as test/keys.sh: the values stored above decrypt.
$log = restart_with($good_keys);
is($node->safe_psql('postgres', q{SELECT pgext.secret_get('k')}), 'keycmd-value',
	'test/keys.sh holds the same keys');

my $full_log = slurp_file($node->logfile);
unlike($full_log, qr/$key_hex[0]/, 'key 1 never logged');
unlike($full_log, qr/$key_hex[1]/, 'key 2 never logged');
$node->stop;

# 8. Not preloaded: a clear error that says how to fix it.
my $plain = PgextTest::node('secrets_not_preloaded', preload => 0);
($ret, $out, $err) = $plain->psql('postgres', q{SELECT pgext.secret_set('k', 'v')});
like($err, qr/ERROR:  pgext secrets requires pgext in shared_preload_libraries/,
	'not preloaded: secret_set says so');
($ret, $out, $err) = $plain->psql('postgres', q{SELECT pgext.secret_get('k')});
like($err, qr/HINT:  Add pgext to shared_preload_libraries/, 'not preloaded: secret_get says how to fix');
$plain->stop;

done_testing();
