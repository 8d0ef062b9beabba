# The background worker: shows in pg_stat_activity, runs its tasks on demand
# and on its own, records a task's error and goes on, reloads its intervals
# on SIGHUP, waits on a standby until promoted, comes back after SIGTERM and
# kill -9, and waits (no crash loop)
# while the extension is absent from pgext.database.  Every wait polls.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use PgextTest;

my $node = PgextTest::node('worker', worker => 1, conf => "restart_after_crash = on\nwal_level = replica\nmax_wal_senders = 4");

# The worker's pid once it shows in pg_stat_activity (polls).
sub worker_pid
{
	my ($n, $not) = @_;
	$not //= 0;
	$n->poll_query_until('postgres', qq{
		SELECT count(*) = 1 FROM pg_stat_activity
		 WHERE backend_type = 'pgext worker' AND pid <> $not})
	  or die 'the worker did not show up';
	return $n->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'pgext worker'});
}

# A task's run count.
sub runs
{
	my ($task) = @_;
	return $node->safe_psql('postgres',
		qq{SELECT runs FROM pgext.worker_status WHERE task = '$task'});
}

my $pid = worker_pid($node);
ok($pid > 0, 'the worker shows in pg_stat_activity');
is($node->safe_psql('postgres',
	q{SELECT application_name FROM pg_stat_activity WHERE pid = } . $pid),
	'pgext worker', 'with application_name pgext worker');
ok($node->poll_query_until('postgres',
	q{SELECT bool_and(refusing IS NULL AND worker_pid IS NOT NULL) FROM pgext.worker_status}),
	'the status view says the worker acts');
is($node->safe_psql('postgres', q{SELECT string_agg(task, ',' ORDER BY task) FROM pgext.worker_status}),
	'access_expire,api_calls_retention,billing_expire_grace,credit_sweep,health_recover,health_retention,hetzner_reconcile,secret_audit_flush,server_reconcile,stripe_events,stripe_reconcile,webhook_apply,webhook_retention',
	'every task has a status row');
is($node->safe_psql('postgres', q{SELECT "interval" FROM pgext.worker_status WHERE task = 'credit_sweep'}),
	'00:01:00', 'credit_sweep runs every minute by default');

# worker_run_now makes a task run.
my $before = runs('credit_sweep');
is($node->safe_psql('postgres', q{SELECT pgext.worker_run_now('credit_sweep')}), 't',
	'worker_run_now reaches the running worker');
ok($node->poll_query_until('postgres',
	qq{SELECT runs > $before AND last_ok FROM pgext.worker_status WHERE task = 'credit_sweep'}),
	'worker_run_now ran credit_sweep');

my ($ret, $out, $err) = $node->psql('postgres', q{SELECT pgext.worker_run_now('nope')});
like($err, qr/unknown worker task "nope".*\n.*HINT:  Known tasks: credit_sweep, billing_expire_grace/s,
	'an unknown task is refused with the list of tasks');

# An expired lot is swept by the worker (no credit_sweep call by hand).
my $a = $node->safe_psql('postgres', q{SELECT pgext.account_create('w-a')});
$node->safe_psql('postgres', qq{
	SELECT pgext.credit_grant('$a', 7, 'trial', 'trial', now() + interval '1 hour');
	UPDATE pgext.credit_lots SET expires_at = now() - interval '1 minute' WHERE account_id = '$a';
	SELECT pgext.worker_wake();
	SELECT pgext.worker_run_now('credit_sweep');});
ok($node->poll_query_until('postgres',
	qq{SELECT count(*) = 1 FROM pgext.credit_ledger WHERE account_id = '$a' AND op = 'expire'}),
	'the worker swept the expired lot');
is($node->safe_psql('postgres', qq{SELECT pgext.credit_balance('$a')}), '0', 'balance after the sweep');

# A task that fails is recorded; the loop goes on.
$node->safe_psql('postgres', q{ALTER FUNCTION pgext.secret_audit_flush() RENAME TO secret_audit_flush_gone});
$node->safe_psql('postgres', q{SELECT pgext.worker_run_now('secret_audit_flush')});
ok($node->poll_query_until('postgres',
	q{SELECT last_ok = false AND last_error LIKE '%secret_audit_flush() does not exist%'
	    FROM pgext.worker_status WHERE task = 'secret_audit_flush'}),
	'the failed task is recorded with its error');
$before = runs('credit_sweep');
$node->safe_psql('postgres', q{SELECT pgext.worker_run_now('credit_sweep')});
ok($node->poll_query_until('postgres',
	qq{SELECT runs > $before FROM pgext.worker_status WHERE task = 'credit_sweep'}),
	'the loop goes on after a failed task');
is(worker_pid($node), $pid, 'same worker process');
ok($node->log_contains('pgext worker task secret_audit_flush failed: function pgext.secret_audit_flush\(\) does not exist'),
	'the failure is logged');
$node->safe_psql('postgres', q{ALTER FUNCTION pgext.secret_audit_flush_gone() RENAME TO secret_audit_flush});
$node->safe_psql('postgres', q{SELECT pgext.worker_run_now('secret_audit_flush')});
ok($node->poll_query_until('postgres',
	q{SELECT last_ok AND last_error IS NULL FROM pgext.worker_status WHERE task = 'secret_audit_flush'}),
	'the task succeeds again once fixed');

# SIGHUP: a new interval.
$node->safe_psql('postgres', q{ALTER SYSTEM SET pgext.credit_sweep_interval = '2h'});
$node->safe_psql('postgres', q{SELECT pg_reload_conf()});
ok($node->poll_query_until('postgres',
	q{SELECT "interval" = interval '2 hours' FROM pgext.worker_status WHERE task = 'credit_sweep'}),
	'a reload changes the interval the worker uses');
ok($node->poll_query_until('postgres',
	q{SELECT next_run_at > now() + interval '1 hour' FROM pgext.worker_status WHERE task = 'credit_sweep'}),
	'and its next run');

# SIGTERM: the worker ends and the postmaster starts it again.
my $log_offset = -s $node->logfile;
$node->safe_psql('postgres', qq{SELECT pg_terminate_backend($pid)});
$node->poll_query_until('postgres',
	qq{SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid})
  or die 'the worker did not stop';
pass('SIGTERM stops the worker');
ok($node->log_contains('terminating background worker "pgext worker" due to administrator command', $log_offset),
	'it says so in the log');
my $pid2 = worker_pid($node, $pid);
isnt($pid2, $pid, 'the postmaster started a new worker after SIGTERM');

# A streaming standby: its worker refuses to act (in recovery) until promoted.
$node->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'b', has_streaming => 1);
$standby->start;
ok($standby->poll_query_until('postgres',
	q{SELECT bool_and(refusing LIKE 'in recovery%' AND runs = 0) FROM pgext.worker_status}),
	'on a standby the worker refuses to act: in recovery');
$standby->promote;
ok($standby->poll_query_until('postgres',
	q{SELECT bool_and(refusing IS NULL AND runs > 0) FROM pgext.worker_status WHERE task NOT IN ('hetzner_reconcile', 'stripe_reconcile', 'stripe_events')}),
	'after promotion it runs its tasks');
$standby->stop;

# kill -9: crash restart, the worker comes back.
kill 'KILL', $pid2;
$node->poll_query_until('postgres',
	qq{SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid2})
  or die 'the worker did not die';
my $pid3 = worker_pid($node, $pid2);
isnt($pid3, $pid2, 'the worker is back after kill -9');
$before = runs('credit_sweep');
$node->safe_psql('postgres', q{SELECT pgext.worker_run_now('credit_sweep')});
ok($node->poll_query_until('postgres',
	qq{SELECT runs > $before FROM pgext.worker_status WHERE task = 'credit_sweep'}),
	'and runs tasks');
$node->stop;

# The extension absent from pgext.database: the worker waits, logs once.
my $bare = PgextTest::node('bare', worker => 1, extension => 0);
my $bpid = worker_pid($bare);
$log_offset = 0;
$bare->wait_for_log(qr/pgext worker is waiting: extension pgext is not installed in database "postgres"/);
$bare->safe_psql('postgres', 'CREATE EXTENSION pgext CASCADE');
$bare->safe_psql('postgres', q{SELECT pgext.worker_wake()});
ok($bare->poll_query_until('postgres',
	q{SELECT bool_and(refusing IS NULL AND runs > 0) FROM pgext.worker_status
	   WHERE task = 'credit_sweep'}),
	'the waiting worker starts acting once the extension is created');
is(worker_pid($bare), $bpid, 'the same worker process waited (no restart)');
my $log = slurp_file($bare->logfile);
my $waits = () = $log =~ /pgext worker is waiting/g;
is($waits, 1, 'the wait is logged once');
unlike($log, qr/background worker "pgext worker".*exited/, 'the worker never exited');
$bare->stop;

# Disabled: the worker refuses and says why.
my $off = PgextTest::node('off');
ok($off->poll_query_until('postgres',
	q{SELECT bool_and(refusing = 'disabled by pgext.worker_enabled' AND runs = 0) FROM pgext.worker_status}),
	'pgext.worker_enabled = off: the worker refuses and says why');
$off->stop;

done_testing();
