# credit_deduct's fast path (src/credits/fastpath.c) writes rows through the
# executor's row-level entry points instead of a SQL statement: its changes
# must reach a streaming standby and logical decoding exactly as an UPDATE and
# an INSERT do.  A primary with wal_level = logical and a standby; traffic on
# the fast path (and, for comparison, the SQL path under REPEATABLE READ);
# then the standby's ledger and balances equal the primary's, add up, and a
# test_decoding slot shows one UPDATE of pgext.accounts and one INSERT into
# pgext.credit_ledger per deduct, with the new balance and the ledger row.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use PgextTest;

my $primary = PgextTest::node('repl_primary', conf => join "\n",
	'wal_level = logical', 'max_wal_senders = 4', 'max_replication_slots = 4',
	'hot_standby = on');
$primary->safe_psql('postgres', q{
	SELECT pgext.credit_grant(pgext.account_create('repl-' || i), 1000, 'seed')
	  FROM generate_series(1, 5) i;
});
$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('repl_standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;

$primary->safe_psql('postgres',
	q{SELECT pg_create_logical_replication_slot('fast_path', 'test_decoding')});

# 50 deducts on the fast path (READ COMMITTED), 5 on the SQL path
$primary->safe_psql('postgres', q{
	SELECT pgext.credit_deduct(a.id, g, 'fast-' || g, 'r' || g)
	  FROM generate_series(1, 50) g,
	       LATERAL (SELECT id FROM pgext.accounts WHERE external_id = 'repl-' || (1 + g % 5)) a;
});
for my $i (1 .. 5)
{
	$primary->safe_psql('postgres', qq{
		BEGIN ISOLATION LEVEL REPEATABLE READ;
		SELECT pgext.credit_deduct(id, 7, 'sql-$i') FROM pgext.accounts WHERE external_id = 'repl-$i';
		COMMIT;
	});
}
$primary->wait_for_catchup($standby);

my $state = q{
	SELECT string_agg(a.external_id || '=' || a.balance, ',' ORDER BY a.external_id),
	       (SELECT count(*) FROM pgext.credit_ledger),
	       (SELECT sum(delta) FROM pgext.credit_ledger),
	       (SELECT string_agg(idempotency_key || ':' || balance_after || ':' || coalesce(reason, ''),
	                          ',' ORDER BY id) FROM pgext.credit_ledger WHERE op = 'deduct')
	  FROM pgext.accounts a
};
my $on_primary = $primary->safe_psql('postgres', $state);
is($standby->safe_psql('postgres', $state), $on_primary,
	'the standby has the same balances and ledger as the primary');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM pgext.credit_audit()'), '0',
	'the standby\'s balances equal their ledgers');
like($on_primary, qr/\|60\|3690\|/, '55 deducts (1..50 credits, then 5 x 7) recorded: 5000 - 1310');

# Logical decoding: per deduct, one UPDATE of the account with the new
# balance and one INSERT of its ledger row, in the order they were made.
my $changes = $primary->safe_psql('postgres', q{
	SELECT data FROM pg_logical_slot_get_changes('fast_path', NULL, NULL)
	 WHERE data LIKE 'table pgext.accounts: UPDATE%' OR data LIKE 'table pgext.credit_ledger: INSERT%'
});
my @lines = split /\n/, $changes;
is(scalar(grep { /^table pgext\.accounts: UPDATE/ } @lines), 55, '55 account updates decoded');
is(scalar(grep { /^table pgext\.credit_ledger: INSERT/ } @lines), 55, '55 ledger inserts decoded');
like($changes, qr/table pgext\.credit_ledger: INSERT: id\[bigint\]:\d+ account_id\[uuid\]:'[0-9a-f-]+' op\[text\]:'deduct' kind\[text\]:null amount\[bigint\]:50 delta\[bigint\]:-50 balance_after\[bigint\]:\d+ idempotency_key\[text\]:'fast-50' reason\[text\]:'r50'/,
	'a fast-path ledger row decodes with its values');
# each UPDATE's new balance is the balance_after of the ledger row that follows it
my @pairs;
for my $i (0 .. $#lines - 1)
{
	next unless $lines[$i] =~ /^table pgext\.accounts: UPDATE: .*balance\[bigint\]:(\d+) /;
	my $bal = $1;
	push @pairs, ($lines[$i + 1] =~ /^table pgext\.credit_ledger: INSERT: .*balance_after\[bigint\]:(\d+) /
		&& $1 == $bal) ? 1 : 0;
}
is(scalar(grep { $_ } @pairs), 55, 'every decoded balance update is followed by its ledger row');

$standby->stop;
$primary->stop;
done_testing();
