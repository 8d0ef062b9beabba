# The health poller on the worker's event loop (src/health/poller.c): checks
# are polled over loopback and written in batches (health_poller() counters,
# health_checks.checks_total); a check added while the worker runs is picked
# up, a removed one is no longer polled; a refused connection and a timeout
# are recorded as 'refused' and 'timeout'; SIGTERM with 10,000 checks
# scheduled (hundreds in flight at a listener that never answers) stops the
# worker within a second.  The behaviour of the checks (thresholds, grace,
# recovery) is tested with the fake agent elsewhere.  Every wait polls.
use strict;
use warnings;
use File::Temp ();
use HTTP::Tiny;
use IPC::Run ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();
use FindBin;
use lib $FindBin::Bin;
use PgextTest;

# A loopback HTTP server: 200 "ok" on every path, counting hits per path
# (GET /__hits?p=PATH answers the count); and a listener that never accepts
# (a connection to it hangs).  It writes "PORT HANG_PORT" to its port file.
my $dir = File::Temp::tempdir('health-poller-XXXXXX', TMPDIR => 1, CLEANUP => 1);
open my $py, '>', "$dir/server.py" or die $!;
print $py <<'PY';
import http.server, socket, sys, threading, urllib.parse
hits = {}
lock = threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        if u.path == '/__hits':
            body = str(hits.get(urllib.parse.parse_qs(u.query)['p'][0], 0)).encode()
        else:
            with lock:
                hits[self.path] = hits.get(self.path, 0) + 1
            body = b'ok'
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
srv = S(('127.0.0.1', 0), H)
hang = socket.socket()
hang.bind(('127.0.0.1', 0))
hang.listen(65535)
with open(sys.argv[1] + '.tmp', 'w') as f:
    f.write('%d %d\n' % (srv.server_address[1], hang.getsockname()[1]))
import os
os.rename(sys.argv[1] + '.tmp', sys.argv[1])
srv.serve_forever()
PY
close $py;
my $server = IPC::Run::start([ 'python3', "$dir/server.py", "$dir/port" ],
	'<', \undef, '>', "$dir/out", '2>', "$dir/err");
# stopped however the test ends (it would keep the runner's lock file open)
END { eval { $server->kill_kill } if $server }
my $deadline = time + 30;
until (-s "$dir/port")
{
	die 'the test server did not start' if time > $deadline;
	Time::HiRes::sleep(0.05);
}
open my $pf, '<', "$dir/port" or die $!;
my ($port, $hang_port) = split ' ', scalar <$pf>;
close $pf;

# A port nothing listens on (bound, then closed).
my $closed_port = PostgreSQL::Test::Cluster::get_free_port();

my $node = PgextTest::node('health_poller', worker => 1, conf => join("\n",
	'pgext.allow_insecure_urls = on',
	'pgext.health_flush_interval = 300ms',
	'pgext.health_batch_size = 1000',
	'pgext.health_recover_interval = 0',
	'pgext.health_grace = 0'));

# One active server owning the checks (no Hetzner id: nothing is ever recovered).
my $server_id = $node->safe_psql('postgres', q{
	INSERT INTO pgext.servers (account_id, provision_key, name, spec, spec_hash)
	VALUES (pgext.account_create('poller'), 'poller-1', 'poller-1', '{}', 'h')
	RETURNING id});
$node->safe_psql('postgres', qq{
	SELECT pgext.server_transition($server_id, 'creating', 'test');
	SELECT pgext.server_transition($server_id, 'active', 'test');});

# Adds a check of path (every 200 ms, timeout 100 ms unless given); returns its id.
sub add_check
{
	my ($url, $every, $timeout) = @_;
	$every //= '200 ms';
	$timeout //= '100 ms';
	return $node->safe_psql('postgres',
		qq{SELECT pgext.health_check_add($server_id, '$url', 'shallow', '$every', '$timeout')});
}

# Hits the test server saw on path.
sub hits
{
	my ($path) = @_;
	my $res = HTTP::Tiny->new(timeout => 30)->get("http://127.0.0.1:$port/__hits?p=$path");
	die "the test server did not answer: $res->{status}" unless $res->{success};
	return $res->{content};
}

# The worker's pid once it shows in pg_stat_activity (polls), other than $not.
sub worker_pid
{
	my ($not) = @_;
	$not //= 0;
	$node->poll_query_until('postgres', qq{
		SELECT count(*) = 1 FROM pg_stat_activity
		 WHERE backend_type = 'pgext worker' AND pid <> $not})
	  or die 'the worker did not show up';
	return $node->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'pgext worker'});
}

my @ok = map { add_check("http://127.0.0.1:$port/ok$_") } 1 .. 5;
my $refused = add_check("http://127.0.0.1:$closed_port/health");
my $timeout = add_check("http://127.0.0.1:$hang_port/health");

# Polled and recorded in batches: one batch writes a result of every check
# (one result per check at a time), so they share last_checked_at.
ok($node->poll_query_until('postgres', q{
	SELECT min(checks_total) >= 3 AND count(DISTINCT last_checked_at) = 1
	  FROM pgext.health_checks}),
	'every check is polled, the results written in batches');
is($node->safe_psql('postgres', q{
	SELECT checks_loaded = 7 AND sent > 0 AND completed > 0 AND recorded >= 21
	       AND record_errors = 0 AND last_flush_at IS NOT NULL
	       AND version = pgext.health_config_version()
	  FROM pgext.health_poller()}), 't', 'health_poller() shows the counters');
# The worker flushes its table statistics, so autovacuum sees its updates
# (a background worker never passes the idle point where backends flush them).
ok($node->poll_query_until('postgres', q{
	SELECT n_tup_upd >= 21 FROM pg_stat_user_tables WHERE relid = 'pgext.health_checks'::regclass}),
	"the worker's updates of health_checks reach the table statistics");
is($node->safe_psql('postgres', qq{
	SELECT string_agg(format('%s %s %s', last_status, last_error IS NULL, state), ',' ORDER BY id)
	  FROM pgext.health_checks WHERE id IN (@{[join ',', @ok]})}),
	join(',', ('200 t healthy') x 5), 'the answered checks passed');
is($node->safe_psql('postgres', qq{
	SELECT last_error || ' ' || coalesce(last_status, 0) FROM pgext.health_checks WHERE id = $refused}),
	'refused 0', 'a refused connection is recorded as refused');
is($node->safe_psql('postgres', qq{
	SELECT last_error || ' ' || coalesce(last_status, 0) FROM pgext.health_checks WHERE id = $timeout}),
	'timeout 0', 'a listener that never answers is recorded as timeout');
ok($node->poll_query_until('postgres', qq{
	SELECT consecutive_failures >= 3 FROM pgext.health_checks WHERE id = $refused}),
	'failures are counted over batches');

# A check added while the worker runs is picked up.
my $added = add_check("http://127.0.0.1:$port/added");
ok($node->poll_query_until('postgres', qq{
	SELECT checks_total > 0 AND last_status = 200 FROM pgext.health_checks WHERE id = $added}),
	'a check added while running is polled');

# A removed check is no longer polled: once the worker loaded the new
# version, its path sees at most the one request that was on the wire.
$node->safe_psql('postgres', qq{SELECT pgext.health_check_remove($ok[0])});
ok($node->poll_query_until('postgres', q{
	SELECT checks_loaded = 7 AND version = pgext.health_config_version() FROM pgext.health_poller()}),
	'the worker loaded the checks again');
my $removed_hits = hits('/ok1');
my $added_before = $node->safe_psql('postgres', qq{SELECT checks_total FROM pgext.health_checks WHERE id = $added});
ok($node->poll_query_until('postgres', qq{
	SELECT checks_total >= $added_before + 5 FROM pgext.health_checks WHERE id = $added}),
	'the other checks go on');
ok(hits('/ok1') <= $removed_hits + 1, 'the removed check is no longer polled');

# SIGTERM with 10,000 checks scheduled, hundreds in flight at the listener
# that never answers: the worker exits within a second.
$node->safe_psql('postgres', qq{
	SELECT count(pgext.health_check_add($server_id, 'http://127.0.0.1:$hang_port/h' || g, 'shallow', '1 s', '900 ms'))
	  FROM generate_series(1, 10000) g});
$node->safe_psql('postgres', q{ALTER SYSTEM SET pgext.health_concurrency = 1000});
$node->reload;
ok($node->poll_query_until('postgres', q{
	SELECT checks_loaded >= 10000 AND in_flight >= 300 FROM pgext.health_poller()}),
	'10,000 checks loaded, hundreds in flight');
my $pid = worker_pid();
my $t0 = Time::HiRes::time();
kill 'TERM', $pid;
my $gone = 0;
while (Time::HiRes::time() - $t0 < 10)
{
	# the postmaster reaps the worker at once; a zombie would still answer kill 0
	if (!kill 0, $pid) { $gone = 1; last }
	Time::HiRes::sleep(0.005);
}
my $elapsed = Time::HiRes::time() - $t0;
ok($gone, 'the worker exits on SIGTERM');
note(sprintf('exit after SIGTERM: %.0f ms', $elapsed * 1000));
ok($elapsed < 1.0, 'within a second');

# The postmaster starts it again (after 5 s); it loads the checks anew.
worker_pid($pid);
ok($node->poll_query_until('postgres', q{
	SELECT checks_loaded >= 10000 AND sent > 0 FROM pgext.health_poller()}),
	'the restarted worker polls again');

$node->stop;
$server->kill_kill;
done_testing();
