# Loading pgext: preloaded vs not, the reserved GUC prefix, clean DROP/CREATE.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use PgextTest;

my $node = PgextTest::node('preloaded', extension => 0);

my ($ret, $out, $err) = $node->psql('postgres', 'CREATE EXTENSION pgext CASCADE');
is($ret, 0, 'CREATE EXTENSION with pgext preloaded');
unlike($err, qr/shared_preload_libraries/, 'no preload warning when preloaded');

is($node->safe_psql('postgres', 'SHOW pgext.hetzner_api_url'),
	'https://api.hetzner.cloud/v1', 'GUC default for the Hetzner API');
is($node->safe_psql('postgres', 'SHOW pgext.stripe_livemode'), 'off', 'test mode by default');

($ret, $out, $err) = $node->psql('postgres', 'SET pgext.no_such_setting = 1');
isnt($ret, 0, 'unknown pgext.* setting is refused');
like($err, qr/invalid configuration parameter name|reserved prefix/, 'prefix pgext is reserved');

# Objects come and go with the extension.
$node->safe_psql('postgres', q{SELECT pgext.account_create('t1')});
$node->safe_psql('postgres', 'DROP EXTENSION pgext');
# The schema itself (made by CREATE EXTENSION from pgext.control) stays, empty.
is($node->safe_psql('postgres', q{
	SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = 'pgext'::regnamespace)
	     + (SELECT count(*) FROM pg_proc WHERE pronamespace = 'pgext'::regnamespace)
	     + (SELECT count(*) FROM pg_type WHERE typnamespace = 'pgext'::regnamespace)}),
	'0', 'DROP EXTENSION removes every object');
$node->safe_psql('postgres', 'CREATE EXTENSION pgext');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pgext.accounts'), '0', 'recreated empty');
$node->stop;

# Without preloading: a clear warning at CREATE EXTENSION, credits still work.
my $plain = PgextTest::node('not_preloaded', preload => 0, extension => 0);
($ret, $out, $err) = $plain->psql('postgres', 'CREATE EXTENSION pgext CASCADE');
is($ret, 0, 'CREATE EXTENSION works without preloading');
like($err, qr/WARNING:  pgext is not in shared_preload_libraries/, 'warns when not preloaded');
like($err, qr/HINT:  Add pgext to shared_preload_libraries/, 'and says how to fix it');
is($plain->safe_psql('postgres', q{
	SELECT (pgext.credit_grant(a, 5, 'k')).status || '/' || pgext.credit_balance(a)
	  FROM pgext.account_create('t2') a}), 'granted/5', 'credits work without preloading');
$plain->stop;

done_testing();
