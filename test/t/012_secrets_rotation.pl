# Key rotation: add a version with a new key command and a restart, rewrap
# online, retire old versions; every older version keeps decrypting until its
# rows are rewrapped, and a missing or wrong key is a clear error.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use PgextTest;

my %key = (
	1 => '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
	2 => '202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f',
	3 => 'c0ffee00c0ffee01c0ffee02c0ffee03c0ffee04c0ffee05c0ffee06c0ffee07');
my $acct = '11111111-1111-4111-8111-111111111111';

my $node = PgextTest::node('secrets_rotation', keys => undef, start => 0);
my $dir = $node->basedir;
my $running = 0;

# Restart with a key command printing the given "version:hex" lines.
sub use_keys
{
	my ($name, @lines) = @_;
	my $path = PgextTest::shell_script("$dir/$name.sh", join('', map { "echo '$_'\n" } @lines));
	$node->append_conf('postgresql.conf', "pgext.master_key_command = '$path'");
	if ($running) { $node->restart; }
	else          { $node->start; $running = 1; }
}

# Every secret's value and key version, one "name=value@vN" per line.
sub snapshot
{
	return $node->safe_psql('postgres', q{
		SELECT string_agg(name || '=' || pgext.secret_get(name, account_id) || '@v' || key_version,
		                  ' ' ORDER BY name)
		  FROM pgext.secrets});
}

# Rewrap in small batches until nothing is left; returns the total.
sub rewrap_all
{
	my $total = 0;
	for (1 .. 100)
	{
		my $n = $node->safe_psql('postgres', q{SELECT pgext.secret_rewrap(2)});
		return $total if $n == 0;
		$total += $n;
	}
	die 'secret_rewrap never reached 0';
}

# Version 1 only.
use_keys('v1', "1:$key{1}");
$node->safe_psql('postgres', qq{
	CREATE EXTENSION pgext CASCADE;
	INSERT INTO pgext.accounts (id, external_id) VALUES ('$acct', 'tenant-rot');
	SELECT pgext.secret_set('a', 'alpha-value', '$acct');
	SELECT pgext.secret_set('b', 'bravo-value');
	SELECT pgext.secret_set('c', 'charlie-value', '$acct');
});
is(snapshot(), 'a=alpha-value@v1 b=bravo-value@v1 c=charlie-value@v1', 'all under version 1');

# Add version 2: old rows still decrypt, new writes use version 2.
use_keys('v12', "1:$key{1}", "2:$key{2}");
is($node->safe_psql('postgres', 'SELECT pgext.secret_key_versions()'), '{1,2}', 'versions 1 and 2 loaded');
$node->safe_psql('postgres', q{SELECT pgext.secret_set('d', 'delta-value')});
is(snapshot(), 'a=alpha-value@v1 b=bravo-value@v1 c=charlie-value@v1 d=delta-value@v2',
	'version 1 rows decrypt; new rows use version 2');

# Add version 3 with a different key command (order of lines does not matter).
use_keys('v123', "3:$key{3}", "1:$key{1}", "2:$key{2}");
is($node->safe_psql('postgres', 'SELECT pgext.secret_key_versions()'), '{1,2,3}', 'versions 1 to 3 loaded');
is(snapshot(), 'a=alpha-value@v1 b=bravo-value@v1 c=charlie-value@v1 d=delta-value@v2',
	'nothing changes before the rewrap');
# Reads during a rewrap batch that is not yet committed see the old rows.
my $bg = $node->background_psql('postgres');
$bg->query_safe('BEGIN');
is($bg->query_safe('SELECT pgext.secret_rewrap(2)'), '2', 'first batch of 2 (uncommitted)');
is(snapshot(), 'a=alpha-value@v1 b=bravo-value@v1 c=charlie-value@v1 d=delta-value@v2',
	'readers are not blocked by an open rewrap');
$bg->query_safe('COMMIT');
$bg->quit;
is(rewrap_all(), 2, 'the remaining rows are rewrapped');
is(snapshot(), 'a=alpha-value@v3 b=bravo-value@v3 c=charlie-value@v3 d=delta-value@v3',
	'everything under version 3, values intact');
is($node->safe_psql('postgres', 'SELECT pgext.secret_rewrap()'), '0', 'nothing left to rewrap');

# Retire versions 1 and 2.
use_keys('v3', "3:$key{3}");
is(snapshot(), 'a=alpha-value@v3 b=bravo-value@v3 c=charlie-value@v3 d=delta-value@v3',
	'old versions retired; all secrets still readable');

# Losing version 3 is a clear error naming the version.
use_keys('lost3', "1:$key{1}", "2:$key{2}");
my ($ret, $out, $err) = $node->psql('postgres', q{SELECT pgext.secret_get('b')});
like($err, qr/secret "b" of the platform \(account NULL\) is encrypted with master key version 3, which pgext.master_key_command did not provide/,
	'missing version 3: clear error');
like($err, qr/HINT:  Make the command print key version 3 again/, 'and what to do');

# A different key under the same version number fails authentication, clearly.
use_keys('wrong3', "3:" . ('ab' x 32));
($ret, $out, $err) = $node->psql('postgres', q{SELECT pgext.secret_get('c', '11111111-1111-4111-8111-111111111111')});
like($err, qr/secret "c" of account 11111111-1111-4111-8111-111111111111 cannot be decrypted/,
	'wrong key for version 3: authentication fails');
like($err, qr/different key for version 3/, 'and the hint names the version');

# The right key again: everything is back.
use_keys('right3', "3:$key{3}");
is(snapshot(), 'a=alpha-value@v3 b=bravo-value@v3 c=charlie-value@v3 d=delta-value@v3',
	'the right key restores access');

my $log = slurp_file($node->logfile);
unlike($log, qr/$key{$_}/, "key $_ never logged") for 1 .. 3;
unlike($log, qr/(alpha|bravo|charlie|delta)-value/, 'no value logged');
$node->stop;
done_testing();
