# The worker against the fake Hetzner API (test/fake/hetzner.py) on loopback:
# a requested server becomes active; a full location falls back to the next
# and is skipped by the next create; a create whose answer is lost is adopted
# by name; the worker killed with SIGKILL mid-create adopts instead of
# creating a second server; a postmaster restart resumes pending work; a 429
# storm is ridden out within the budget with deletes first; orphans, vanished
# servers and drift are found; bad configuration is refused and said; SIGTERM
# stops the worker within a second with 1000 requests in flight; no token in
# the server log or api_calls.  Every wait polls; nothing depends on timing
# but the SIGTERM bound the issue asks for.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();
use FindBin;
use lib $FindBin::Bin;
use PgextTest;
use FakeHetzner;

my $token = 'hz-tok-' . join('', map { sprintf '%02x', int rand 256 } 1 .. 16);
my $fake = FakeHetzner->start(token => $token, action_polls => 1);

# A node whose worker calls the fake.
sub hetzner_node
{
	my ($name, %o) = @_;
	my $conf = join "\n",
	  "pgext.hetzner_api_url = '" . $fake->url . "'",
	  'pgext.allow_insecure_urls = on',
	  'restart_after_crash = on',
	  'pgext.server_limit_per_account = 2000',
	  # the Stripe key stored below is only checked here: no Stripe runs
	  'pgext.stripe_reconcile_interval = 0', 'pgext.stripe_events_interval = 0',
	  ($o{conf} // ());
	my $n = PgextTest::node($name, worker => 1, conf => $conf, %{ $o{opts} // {} });
	return $n;
}

my $node = hetzner_node('hz');
my $db = 'postgres';

# SQL on the node, one value.
sub q1 { my ($sql) = @_; return $node->safe_psql($db, $sql) }

# Poll until the SQL is true (dies with $what otherwise).
sub until_true
{
	my ($sql, $what) = @_;
	ok($node->poll_query_until($db, $sql), $what) or diag(q1(
		q{SELECT string_agg(format('%s %s %s %s', server, state, next_action, last_error), E'\n') FROM pgext.server_status}));
}

# The worker's pid.
sub worker_pid
{
	my ($n, $not) = @_;
	$not //= 0;
	$n->poll_query_until('postgres', qq{
		SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pgext worker' AND pid <> $not})
	  or die 'the worker did not show up';
	return $n->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'pgext worker'});
}

# Fake servers named $name.
sub fake_servers_named
{
	my ($name) = @_;
	my $r = $fake->api('GET', "/servers?name=$name");
	return scalar @{ $r->{json}{servers} };
}

# The fake's calls matching a method and a path regex.
sub fake_calls
{
	my ($method, $re) = @_;
	return grep { $_->{method} eq $method && $_->{path} =~ $re } @{ $fake->state(servers => 0, actions => 0)->{calls} };
}

# --- configuration: no token yet, so the worker refuses and says why
until_true(q{SELECT refusing LIKE '%hetzner:api_token is not set%' FROM pgext.worker_api_status WHERE api = 'hetzner'},
	'without hetzner:api_token the worker refuses to call Hetzner and says why');
$node->safe_psql($db, qq{SELECT pgext.secret_set('hetzner:api_token', '$token')});
until_true(q{SELECT refusing IS NULL FROM pgext.worker_api_status WHERE api = 'hetzner'},
	'once the token is stored the worker calls Hetzner (no reload needed)');
until_true(q{SELECT runs > 0 AND last_ok FROM pgext.worker_status WHERE task = 'hetzner_reconcile'},
	'a reconciliation ran at start');

# A live Stripe key in test mode is refused; a test key is taken.
$node->safe_psql($db, q{SELECT pgext.secret_set('stripe:api_key', 'sk_live_' || repeat('x', 24))});
$node->safe_psql($db, q{SELECT pg_reload_conf()});
until_true(q{SELECT refusing LIKE '%live key but pgext.stripe_livemode is off%' FROM pgext.worker_api_status WHERE api = 'stripe'},
	'config validation refuses a live Stripe key in test mode');
$node->safe_psql($db, q{SELECT pgext.secret_set('stripe:api_key', 'sk_test_' || repeat('y', 24))});
until_true(q{SELECT refusing IS NULL FROM pgext.worker_api_status WHERE api = 'stripe'},
	'a test key in test mode is taken');

# --- a requested server becomes active
my $acct = q1(q{SELECT pgext.account_create('hz-alice')});
q1(qq{SELECT pgext.access_grant('$acct', now() + interval '30 days', 'TAP')});
my $spec = q{'{"server_type":"cx22","image":"ubuntu-24.04","locations":["fsn1","nbg1","hel1"],"labels":{"app":"agent"}}'};
my $s1 = q1(qq{SELECT pgext.server_request('$acct', 'hz-1', $spec)});
until_true(qq{SELECT state = 'active' FROM pgext.servers WHERE id = $s1}, 'a requested server becomes active on the fake');
my ($name1, $hid1) = split /\|/, q1(qq{SELECT name, hetzner_id FROM pgext.servers WHERE id = $s1});
my $fs = $fake->api('GET', "/servers/$hid1")->{json}{server};
is($fs->{name}, $name1, 'the Hetzner server carries the pgext name');
is_deeply([ @{ $fs->{labels} }{qw(managed-by pgext-server app)} ], [ 'pgext', $s1, 'agent' ],
	'with labels managed-by=pgext, the server id and the spec\'s labels');
is($fs->{labels}{'pgext-account'}, $acct, 'and the account');
ok((grep { $_->{method} eq 'POST' && $_->{path} eq '/v1/servers' } @{ $fake->state->{calls} }) == 1, 'one create call');
is(q1(qq{SELECT count(*) FROM pgext.api_calls WHERE server_id = $s1 AND method = 'POST' AND http_status = 201}), 1,
	'the create is recorded in api_calls with its status');
is(q1(q{SELECT count(*) FROM pgext.api_calls WHERE api = 'hetzner' AND (request_id IS NULL OR request_id = '')}), 0,
	'every api_calls row has the API\'s correlation id');

# --- a full location falls back to the next, and is skipped by the next create
$fake->fault({ kind => 'resource_unavailable', location => 'fsn1' });
my $s2 = q1(qq{SELECT pgext.server_request('$acct', 'hz-2', $spec)});
until_true(qq{SELECT state = 'active' AND location = 'nbg1' FROM pgext.servers WHERE id = $s2},
	'fsn1 full: the server is created in nbg1');
is(q1(qq{SELECT count(*) FROM pgext.api_calls WHERE server_id = $s2 AND method = 'POST' AND error_code = 'resource_unavailable'}), 1,
	'the failed attempt is recorded');
ok(q1(q{SELECT count(*) > 0 FROM pgext.hetzner_cold WHERE location = 'fsn1' AND server_type = 'cx22' AND cold_until > now()}),
	'fsn1 is marked cold for cx22');
my $before412 = scalar fake_calls('POST', qr{^/v1/servers$});
my $s3 = q1(qq{SELECT pgext.server_request('$acct', 'hz-3', $spec)});
until_true(qq{SELECT state = 'active' FROM pgext.servers WHERE id = $s3}, 'the next server becomes active');
is(scalar(fake_calls('POST', qr{^/v1/servers$})) - $before412, 1, 'with one create: the cold location was skipped');
$fake->clear_faults;

# --- a create whose answer is lost (connection reset after the server was made) is adopted by name
$fake->fault({ kind => 'reset', method => 'POST', path => '^/v1/servers$', commit => JSON::PP::true, count => 1 });
my $s4 = q1(qq{SELECT pgext.server_request('$acct', 'hz-4', $spec)});
until_true(qq{SELECT state = 'active' FROM pgext.servers WHERE id = $s4}, 'a create whose answer was lost ends active');
my $name4 = q1(qq{SELECT name FROM pgext.servers WHERE id = $s4});
is(fake_servers_named($name4), 1, 'exactly one server by that name at Hetzner (adopted, not created twice)');
ok(q1(qq{SELECT count(*) > 0 FROM pgext.api_calls WHERE server_id = $s4 AND method = 'GET' AND path LIKE '/servers?name=%'}),
	'it was looked up by name');

# --- SIGKILL mid-create: the restarted worker adopts the server instead of creating a second
$fake->fault({ kind => 'slow', seconds => 4, method => 'POST', path => '^/v1/servers$', count => 1 });
my $pid = worker_pid($node);
my $s5 = q1(qq{SELECT pgext.server_request('$acct', 'hz-5', $spec)});
until_true(q{SELECT in_flight = 1 FROM pgext.worker_api_status WHERE api = 'hetzner'}, 'the create is in flight');
kill 'KILL', $pid;
my $pid2 = worker_pid($node, $pid);
ok($pid2 != $pid, 'the worker came back after SIGKILL');
until_true(qq{SELECT state = 'active' FROM pgext.servers WHERE id = $s5}, 'the server of the killed create ends active');
my $name5 = q1(qq{SELECT name FROM pgext.servers WHERE id = $s5});
# the slow create may still be sleeping at the fake: wait until it has answered
for (1 .. 400) { last if grep { ($_->{fault} // '') eq 'slow' } @{ $fake->state(servers => 0, actions => 0)->{calls} }; Time::HiRes::sleep(0.05) }
is(fake_servers_named($name5), 1, 'exactly one server by that name at Hetzner');
is(q1(qq{SELECT hetzner_id FROM pgext.servers WHERE id = $s5}),
	$fake->api('GET', "/servers?name=$name5")->{json}{servers}[0]{id}, 'the row holds that server\'s id');

# --- a postmaster restart resumes pending work
$node->append_conf('postgresql.conf', 'pgext.worker_enabled = off');
$node->reload;
until_true(q{SELECT bool_and(refusing = 'disabled by pgext.worker_enabled') FROM pgext.worker_status}, 'worker disabled');
my $s6 = q1(qq{SELECT pgext.server_request('$acct', 'hz-6', $spec)});
$node->append_conf('postgresql.conf', 'pgext.worker_enabled = on');
$node->restart;
until_true(qq{SELECT state = 'active' FROM pgext.servers WHERE id = $s6}, 'after a restart the pending create is done');

# --- orphans, vanished servers, drift
my $orph = $fake->seed(count => 3, labels => { 'managed-by' => 'pgext' }, name_prefix => 'stray-');
$fake->seed(count => 2, labels => { 'managed-by' => 'someone-else' }, name_prefix => 'other-');
my $hid3 = q1(qq{SELECT hetzner_id FROM pgext.servers WHERE id = $s3});
$fake->vanish($hid3);
my $hid2 = q1(qq{SELECT hetzner_id FROM pgext.servers WHERE id = $s2});
$fake->set_server($hid2, status => 'off');
my $runs = q1(q{SELECT runs FROM pgext.worker_status WHERE task = 'hetzner_reconcile'});
q1(q{SELECT pgext.worker_run_now('hetzner_reconcile')});
until_true(q{SELECT count(*) = 3 FROM pgext.server_orphans}, 'the three unknown managed servers are orphans');
is(q1(q{SELECT string_agg(hetzner_id::text, ',' ORDER BY hetzner_id) FROM pgext.server_orphans}),
	join(',', sort { $a <=> $b } @$orph), 'by their Hetzner ids (servers not managed by pgext are left alone)');
until_true(qq{SELECT state = 'failed' AND state_reason LIKE '%vanished%' FROM pgext.servers WHERE id = $s3},
	'a server gone at Hetzner fails, saying it vanished');
until_true(qq{SELECT count(*) > 0 FROM pgext.api_calls WHERE server_id = $s2 AND path LIKE '%/actions/poweron'},
	'a server found off while it should run is powered on');
ok($fake->api('GET', "/servers/$hid2")->{json}{server}{status} =~ /running|starting/, 'and runs again at Hetzner');
is(q1(q{SELECT count(*) FROM pgext.server_orphans WHERE deleted_at IS NOT NULL}), 0,
	'young orphans are not deleted');

# --- delete: goes through the worker
q1(qq{SELECT pgext.server_delete($s1, 'TAP delete')});
until_true(qq{SELECT state = 'deleted' FROM pgext.servers WHERE id = $s1}, 'a deleted server is deleted at Hetzner');
my $gone1 = $fake->api('GET', "/servers/$hid1");
ok($gone1->{status} == 404 || $gone1->{json}{server}{status} eq 'deleting', 'and gone (or going) there');

# --- a 429 storm: ridden out within the budget, deletes first.  The fake's
# budget is nearly spent (3 of 40, refilling 2/s); a reconciliation page shows
# the worker the headers, then deletes and creates are queued together and
# the API answers the first calls with 429 + Retry-After.
my @live = split /\n/, q1(q{SELECT id FROM pgext.servers WHERE state = 'active' ORDER BY id LIMIT 2});
$fake->config(rate_limit => 40, refill_per_second => 2, budget => 3);
my $rr0 = q1(q{SELECT runs FROM pgext.worker_status WHERE task = 'hetzner_reconcile'});
q1(q{SELECT pgext.worker_run_now('hetzner_reconcile')});
until_true(qq{SELECT runs > $rr0 FROM pgext.worker_status WHERE task = 'hetzner_reconcile'}, 'a reconciliation page shows the budget');
until_true(q{SELECT count(*) = 0 FROM pgext.hetzner_reconcile_runs WHERE finished_at IS NULL}, 'and the run finished');
until_true(q{SELECT ratelimit_limit = 40 AND ratelimit_remaining < 12 FROM pgext.worker_api_status WHERE api = 'hetzner'},
	'the worker knows the budget is low (below the 30% creates must leave)');
$fake->fault({ kind => 'rate_limit', retry_after => 1, count => 2 });
my $t0 = scalar @{ $fake->state(servers => 0, actions => 0)->{calls} };
$node->safe_psql($db, join ";\n", 'BEGIN',
	(map { "SELECT pgext.server_request('$acct', 'storm-$_', $spec)" } 1 .. 6),
	(map { "SELECT pgext.server_delete($_, 'storm delete')" } @live), 'COMMIT');
until_true(q{SELECT count(*) = 6 FROM pgext.servers WHERE provision_key LIKE 'storm-%' AND state = 'active'},
	'every create of the storm ends active');
until_true(qq{SELECT bool_and(state = 'deleted') FROM pgext.servers WHERE id IN (@{[ join ',', @live ]})},
	'both deletes done');
my @calls = @{ $fake->state(servers => 0, actions => 0)->{calls} };
@calls = @calls[$t0 .. $#calls];
my @ok = grep { $_->{status} != 429 } @calls;
my $n429 = grep { $_->{status} == 429 } @calls;
my ($first_create) = grep { $ok[$_]{method} eq 'POST' && $ok[$_]{path} eq '/v1/servers' } 0 .. $#ok;
my @del_idx = grep { $ok[$_]{method} eq 'DELETE' } 0 .. $#ok;
ok(@del_idx == 2 && $del_idx[-1] < $first_create, 'the deletes were served before any create')
  or diag(join "\n", map { "$_->{method} $_->{path} $_->{status}" } @calls);
ok($n429 >= 2 && $n429 <= 4, "the storm's 429s were ridden out: $n429 429s (2 injected), no hammering");
$fake->config(rate_limit => 3600, refill_per_second => 1);

# --- no token anywhere
my $log = slurp_file($node->logfile);
unlike($log, qr/\Q$token\E/, 'the token is not in the server log');
is(q1(qq{SELECT count(*) FROM pgext.api_calls c WHERE c::text LIKE '%$token%'}), 0, 'nor in api_calls');

# --- SIGTERM within a second with 1000 requests in flight
# a reconciliation first, so the worker knows the refilled budget from fresh headers
my $rr = q1(q{SELECT runs FROM pgext.worker_status WHERE task = 'hetzner_reconcile'});
q1(q{SELECT pgext.worker_run_now('hetzner_reconcile')});
until_true(qq{SELECT runs > $rr FROM pgext.worker_status WHERE task = 'hetzner_reconcile'}, 'a reconciliation ran');
until_true(q{SELECT count(*) = 0 FROM pgext.hetzner_reconcile_runs WHERE finished_at IS NULL}, 'and finished');
until_true(q{SELECT ratelimit_remaining > 3000 FROM pgext.worker_api_status WHERE api = 'hetzner'},
	'the worker sees the refilled budget');
$fake->fault({ kind => 'slow', seconds => 60, method => 'POST', path => '^/v1/servers$' });
$node->safe_psql($db, "ALTER SYSTEM SET pgext.hetzner_concurrency = 1000");
$node->reload;
$node->safe_psql($db, "SELECT pgext.server_request('$acct', 'many-' || g, $spec) FROM generate_series(1, 1000) g");
until_true(q{SELECT in_flight = 1000 FROM pgext.worker_api_status WHERE api = 'hetzner'}, '1000 creates in flight');
$pid = worker_pid($node);
my $t = [Time::HiRes::gettimeofday];
kill 'TERM', $pid;
my $gone;
for (1 .. 400) { if (!kill 0, $pid) { $gone = Time::HiRes::tv_interval($t); last } Time::HiRes::sleep(0.005) }
ok(defined $gone && $gone < 1.0, sprintf('SIGTERM stopped the worker in %.3f s with 1000 requests in flight', $gone // -1));
$fake->clear_faults;
$node->stop;
$fake->stop;
done_testing();
