# Secret audit counters in shared memory: a full table counts the rest as
# "dropped", a flush empties it, and unflushed counts do not survive a restart.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use PgextTest;

my $node = PgextTest::node('secrets_audit', conf => 'pgext.secret_audit_slots = 16');
is($node->safe_psql('postgres', 'SHOW pgext.secret_audit_slots'), '16', 'slots setting');

# 20 distinct secrets set: 16 counters, 4 uses counted only as dropped.
$node->safe_psql('postgres', q{
	SELECT count(pgext.secret_set('s' || i, 'value-number-' || i)) FROM generate_series(1, 20) i});
is($node->safe_psql('postgres', 'SELECT count(*), sum(count) FROM pgext.secret_audit_pending()'),
	'16|16', '16 counters kept');
is($node->safe_psql('postgres', 'SELECT pgext.secret_audit_flush()'), '17', 'flush writes 16 rows + dropped');
is($node->safe_psql('postgres', q{
	SELECT op, outcome, count, role_name IS NULL, secret_id IS NULL FROM pgext.secret_audit
	 WHERE op = 'dropped'}), 'dropped|ok|4|t|t', 'the dropped row carries the 4 uncounted uses');
is($node->safe_psql('postgres', q{SELECT sum(count) FROM pgext.secret_audit WHERE op = 'set'}),
	'16', 'set counts');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pgext.secret_audit_pending()'), '0',
	'nothing pending after the flush');
is($node->safe_psql('postgres', 'SELECT pgext.secret_audit_flush()'), '0', 'a second flush writes nothing');

# Counting resumes; many reads of one secret are one counter.
$node->safe_psql('postgres', q{
	SELECT count(pgext.secret_get('s1')) FROM generate_series(1, 500)});
is($node->safe_psql('postgres', q{
	SELECT op, outcome, name, count FROM pgext.secret_audit_pending()}), 'get|ok|s1|500',
	'500 reads in one counter');

# Unflushed counts are lost on restart (documented); flushed rows stay.
$node->restart;
is($node->safe_psql('postgres', 'SELECT count(*) FROM pgext.secret_audit_pending()'), '0',
	'unflushed counts are gone after a restart');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pgext.secret_audit'), '17', 'flushed rows stay');

# Several sessions read, with flushes in between: every read is counted exactly once.
my @bg = map { $node->background_psql('postgres') } 1 .. 3;
$_->query_safe(q{SELECT count(pgext.secret_get('s2')) FROM generate_series(1, 300)}) for @bg;
$node->safe_psql('postgres', 'SELECT pgext.secret_audit_flush()');
$_->query_safe(q{SELECT count(pgext.secret_get('s2')) FROM generate_series(1, 200)}) for @bg;
$node->safe_psql('postgres', 'SELECT pgext.secret_audit_flush()');
$_->quit for @bg;
is($node->safe_psql('postgres', q{
	SELECT sum(count) FROM pgext.secret_audit WHERE op = 'get' AND name = 's2'}), '1500',
	'3 sessions x 500 reads counted once each across two flushes');

$node->stop;
done_testing();
