# The ledger adds up after a crash: concurrent deduct/reserve/commit/release
# traffic, an immediate shutdown (no checkpoint, WAL replay on restart), then
# every balance equals its ledger and no balance is negative.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use FindBin;
use lib $FindBin::Bin;
use PgextTest;

my $node = PgextTest::node('crash', conf => 'fsync = on');
$node->safe_psql('postgres', q{
	SELECT pgext.credit_grant(pgext.account_create('acct-' || i), 1000000, 'seed')
	  FROM generate_series(1, 20) i;
	SELECT pgext.credit_grant(a.id, 500, 'promo', 'promo', now() + interval '1 day')
	  FROM pgext.accounts a WHERE external_id IN ('acct-1', 'acct-2');
});

# Traffic: deductions (fast and general path), reservations committed in part or released.
my $script = "${PostgreSQL::Test::Utils::tmp_check}/traffic.sql";
PostgreSQL::Test::Utils::append_to_file($script, q{
\set n random(1, 20)
\set k random(1, 9223372036854775806)
\set amt random(1, 50)
SELECT pgext.credit_deduct(a.id, :amt, 'd' || :k) FROM pgext.accounts a WHERE external_id = 'acct-' || :n;
SELECT CASE WHEN r.ok AND :k % 2 = 0 THEN (pgext.credit_commit(r.id, greatest(1, :amt / 2))).status
            WHEN r.ok THEN (pgext.credit_release(r.id)).status END
  FROM pgext.accounts a, pgext.credit_reserve(a.id, :amt, 'r' || :k) r
 WHERE external_id = 'acct-' || :n;
});
my ($out, $err) = ('', '');
my $bench = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '6', '-T', '120', '-f', $script,
	  '-h', $node->host, '-p', $node->port, 'postgres' ],
	'>', \$out, '2>', \$err);

# Wait (by polling, not sleeping a fixed time) until plenty of money has moved.
ok($node->poll_query_until('postgres',
	q{SELECT count(*) > 3000 FROM pgext.credit_ledger}), 'traffic is flowing');
$node->stop('immediate');
$bench->finish;    # pgbench exits on its own once the server is gone
$node->start;

is($node->safe_psql('postgres', 'SELECT count(*) FROM pgext.credit_audit()'), '0',
	'after crash recovery every balance equals the sum of its ledger');
is($node->safe_psql('postgres', q{SELECT string_agg(problem, '; ') FROM pgext.credit_verify()}), '',
	'lot totals, running balances and reservation parts are consistent');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pgext.accounts WHERE balance < 0'), '0',
	'no balance is negative');
cmp_ok($node->safe_psql('postgres', q{SELECT count(*) FROM pgext.credit_ledger WHERE op = 'deduct'}),
	'>', 500, 'the crash interrupted real work');
# held reservations survive as held and can still be settled by the sweep after their ttl
$node->safe_psql('postgres', q{
	UPDATE pgext.credit_reservations SET expires_at = now() - interval '1 second' WHERE status = 'held'});
$node->safe_psql('postgres', 'SELECT pgext.credit_sweep(100000)');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pgext.credit_reservations WHERE status = 'held'}),
	'0', 'no hold is left behind');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pgext.credit_audit()'), '0',
	'and the ledger still adds up');
$node->stop;
done_testing();
