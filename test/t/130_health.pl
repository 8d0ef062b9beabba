# Fleet health polling end to end: the worker polls fake agents
# (test/fake/agent.py) on the loopback addresses the fake Hetzner API gives
# its servers, and SQL turns the results into states, events and outbox rows:
# thresholds (unhealthy after 3 failures in a row, healthy after 2 passes),
# what each kind of failure is called, the grace period, jitter (many checks
# added at once are spread over their interval), configuring -> active on the
# first passing check of a spec's health check (and failed after the
# configuring timeout when none passes), removal, and the status views.
# Recovery is off here (pgext.health_recovery_per_minute = 0); it is tested in
# 132_health_recovery.pl.  Every wait polls; settings are small (checks every
# 200 ms) so the file runs in seconds.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();
use List::Util qw(min max);
use FindBin;
use lib $FindBin::Bin;
use PgextTest;
use HealthTest;

my $h = HealthTest->new('health', conf => join "\n",
	'pgext.health_recovery_per_minute = 0',
	'pgext.server_configuring_timeout = 10s');
my $fa = $h->fa;
my $port = $fa->port;

# A server's agent state.
sub agent_of { my ($s) = @_; return $h->sql("SELECT agent FROM pgext.health_servers WHERE server_id = $s->{id}") }

# Outbox kinds of a server, oldest first, comma-separated.
sub outbox_of
{
	my ($s) = @_;
	return $h->sql("SELECT string_agg(kind, ',' ORDER BY id) FROM pgext.outbox WHERE server_id = $s->{id} AND kind LIKE 'agent%'");
}

my ($sa, $sb, $sc) = $h->servers(3);
my $ca;

# Waits until $n more results of check $ca (server A's, always polled) are
# written: time for anything else the worker polls to show up.
sub more_checks
{
	my ($n) = @_;
	my $t = $h->col($ca, 'checks_total');
	$h->poll("SELECT checks_total >= $t + $n FROM pgext.health_checks WHERE id = $ca", "$n more checks of another server");
}

# Waits until the worker loaded the current check list, and for results that
# were in flight or unwritten then.
sub settle
{
	my ($what) = @_;
	$h->poll('SELECT version >= pgext.health_config_version() FROM pgext.health_poller()',
		"the worker reloaded its checks after $what");
	more_checks(2);
}

# Requests the jitter checks' agent got so far.
sub jitter_requests
{
	my $n = 0;
	$n += $_->{count} for values %{ $fa->agent($sc->{ip}, times => 0)->{paths} };
	return $n;
}
like($sa->{ip}, qr/^127\.\d+\.\d+\.\d+$/, 'the fake Hetzner gives servers loopback addresses');

# --- the grace period: a check added to an active server gets grace_until =
# now + grace; failures before it are counted as ignored, not as failures.
# Started first: it runs while the thresholds are tested on another server.
$fa->mode($sb->{ip}, 'fail', path => '/health');
my $cg = $h->check($sb, '/health', set => "SET pgext.health_grace = '4s'");
ok($h->sql("SELECT grace_until > created_at FROM pgext.health_checks WHERE id = $cg"),
	'a check added to an active server gets a grace period');
$h->poll(qq{SELECT ignored_total >= 2 AND state = 'unknown' AND consecutive_failures = 0
              FROM pgext.health_checks WHERE id = $cg},
	'failures during the grace period are ignored: not counted, state unchanged');

# --- the jitter: 40 checks added at once (every 2 s) on one agent, each its
# own path; started now, looked at below.
my $every_s = 2;
my $nj = 40;
$h->sql(qq{SELECT count(pgext.health_check_add($sc->{id}, 'http://$sc->{ip}:$port/j' || g, 'shallow', '$every_s s', '1 s'))
             FROM generate_series(1, $nj) g});

# --- thresholds
$ca = $h->check($sa, '/health');
$h->poll("SELECT state = 'healthy' FROM pgext.health_checks WHERE id = $ca", 'a passing check: unknown -> healthy at once');
is($h->sql("SELECT last_status || ' ' || (last_error IS NULL) || ' ' || (last_latency_ms >= 0) || ' ' || (last_ok_at IS NOT NULL)
              FROM pgext.health_checks WHERE id = $ca"), '200 true true true', 'status 200, no error, a latency, last_ok_at');
is(agent_of($sa), 'healthy', 'the agent is healthy');
is(outbox_of($sa), 'agent_healthy', 'outbox: agent_healthy');

# two failures in a row never make it unhealthy
$fa->mode($sa->{ip}, 'flap', path => '/health', pattern => ['ok', 'fail', 'fail']);
my $t0 = $h->col($ca, 'checks_total');
$h->poll("SELECT checks_total >= $t0 + 12 FROM pgext.health_checks WHERE id = $ca", 'flapping: 12 more checks');
is($h->sql("SELECT state || ' ' || (failures_total >= 6) FROM pgext.health_checks WHERE id = $ca"), 'healthy true',
	'ok, fail, fail, ...: failures, but never 3 in a row: still healthy');

# three do
$fa->mode($sa->{ip}, 'fail', path => '/health');
$h->poll("SELECT state = 'unhealthy' FROM pgext.health_checks WHERE id = $ca", 'failing: healthy -> unhealthy');
ok($h->col($ca, 'consecutive_failures') >= 3, 'after at least 3 failures in a row');
is($h->sql("SELECT last_status || ' ' || last_error FROM pgext.health_checks WHERE id = $ca"), '503 HTTP 503',
	'last_status 503, last_error HTTP 503');
is(agent_of($sa), 'unhealthy', 'a failing shallow check: the agent is unhealthy');
is(outbox_of($sa), 'agent_healthy,agent_unhealthy', 'outbox: agent_unhealthy');
like($h->sql("SELECT detail FROM pgext.outbox WHERE server_id = $sa->{id} AND kind = 'agent_unhealthy'"),
	qr/3 times.*HTTP 503/, 'its detail says how often and why');
is($h->sql(qq{SELECT count(*) FROM pgext.health_events WHERE check_id = $ca AND kind = 'check'
                AND from_state = 'healthy' AND to_state = 'unhealthy'}), 1, 'a check event healthy -> unhealthy');
is($h->sql(qq{SELECT count(*) FROM pgext.health_events WHERE server_id = $sa->{id} AND kind = 'agent'
                AND to_state = 'unhealthy'}), 1, 'an agent event -> unhealthy');

# one pass between failures never makes it healthy
$fa->mode($sa->{ip}, 'flap', path => '/health', pattern => ['ok', 'fail']);
$t0 = $h->col($ca, 'checks_total');
$h->poll("SELECT checks_total >= $t0 + 8 FROM pgext.health_checks WHERE id = $ca", 'flapping: 8 more checks');
is($h->sql("SELECT state || ' ' || (consecutive_successes <= 1) FROM pgext.health_checks WHERE id = $ca"), 'unhealthy true',
	'ok, fail, ok, ...: passes, but never 2 in a row: still unhealthy');

# two do
$fa->mode($sa->{ip}, 'ok', path => '/health');
$h->poll("SELECT state = 'healthy' FROM pgext.health_checks WHERE id = $ca", 'passing: unhealthy -> healthy');
ok($h->col($ca, 'consecutive_successes') >= 2, 'after at least 2 passes in a row');
is(agent_of($sa), 'healthy', 'the agent is healthy again');
is(outbox_of($sa), 'agent_healthy,agent_unhealthy,agent_healthy', 'outbox: agent_healthy');
ok($h->sql("SELECT count(*) = 3 FROM pgext.health_events WHERE server_id = $sa->{id} AND kind = 'agent'"),
	'three agent events in the history');

# what each failure is called
for my $case ([ 'refuse', {}, 'refused' ], [ 'hang', {}, 'timeout' ], [ 'reset', {}, 'network' ],
	[ 'fail', { status => 500 }, 'HTTP 500' ])
{
	my ($mode, $opt, $err) = @$case;
	$fa->mode($sa->{ip}, $mode, ($mode eq 'refuse' ? () : (path => '/health')), %$opt);
	my $st = $err =~ /^HTTP (\d+)/ ? "= $1" : 'IS NULL';
	$h->poll("SELECT last_error = '$err' AND last_status $st FROM pgext.health_checks WHERE id = $ca",
		"agent $mode: last_error '$err'");
	$fa->mode($sa->{ip}, 'ok', path => '/health');
}
$h->poll("SELECT state = 'healthy' AND last_error IS NULL FROM pgext.health_checks WHERE id = $ca",
	'and healthy again');

# --- the grace period, continued: once it is over, failures count
$h->poll("SELECT state = 'unhealthy' FROM pgext.health_checks WHERE id = $cg", 'after the grace period failures count');
is($h->sql(qq{SELECT (ignored_total >= 2)::text || ' ' || (failures_total - ignored_total >= 3)::text
                FROM pgext.health_checks WHERE id = $cg}), 'true true',
	'the failures in grace were ignored, 3 later ones counted');
ok($h->sql(qq{SELECT bool_and(e.at >= c.grace_until) FROM pgext.health_events e JOIN pgext.health_checks c ON c.id = e.check_id
               WHERE e.check_id = $cg AND e.to_state = 'unhealthy'}), 'it turned unhealthy after grace_until');

# --- jitter: the first checks of the 40 added at once are spread over the
# interval (not bunched at the moment they were loaded), and each next one is
# its interval later with jitter (not the same for all).
my %paths = map { ("/j$_" => 1) } 1 .. $nj;
my $agent;
$h->wait_for(sub {
	$agent = $fa->agent($sc->{ip});
	return $agent && (grep { ($agent->{paths}{$_}{count} // 0) >= 2 } keys %paths) == $nj;
}, 'two requests of each jitter check');
my @first = map { $agent->{paths}{$_}{times}[0] } sort keys %paths;
my @gap = map { $agent->{paths}{$_}{times}[1] - $agent->{paths}{$_}{times}[0] } sort keys %paths;
my $span = max(@first) - min(@first);
my %bucket;
$bucket{ int(($_ - min(@first)) / ($every_s / 10)) }++ for @first;
cmp_ok($span, '>=', $every_s / 2, "first checks spread over at least half the interval (span ${span}s of ${every_s}s)");
cmp_ok(scalar(keys %bucket), '>=', 6, 'they fall in at least 6 of its 10 tenths (not bunched)')
  or diag(join ' ', map { "$_:$bucket{$_}" } sort { $a <=> $b } keys %bucket);
cmp_ok(min(@gap), '>=', $every_s / 2, 'no check ran again before half its interval');
cmp_ok(max(@gap) - min(@gap), '>=', 0.02 * $every_s, 'the intervals carry jitter (not all equal)')
  or diag("gaps: @gap");

# --- removal: the worker stops polling a removed check
my @jids = split /\n/, $h->sql("SELECT id FROM pgext.health_checks WHERE server_id = $sc->{id} ORDER BY id");
is($h->sql('SELECT count(*) FROM (SELECT pgext.health_check_remove(id) r FROM pgext.health_checks WHERE server_id = '
		. "$sc->{id}) x WHERE r"), $nj, 'health_check_remove: true for each');
is($h->sql("SELECT pgext.health_check_remove($jids[0])"), 'f', 'false when it does not exist (any more)');
settle('the removal');
my $jbefore = jitter_requests();
more_checks(5);
my $jafter = jitter_requests();
is($jafter, $jbefore, 'the removed checks are not polled any more');

# --- configuring -> active on the first passing check of the spec's health
for my $bad ([ '{"url": "http://{ipv4}:1/health", "kind": "medium"}', qr/kind/ ],
	[ '{"url": "http://{ipv4}:1/health", "every": "1 ms"}', qr/every/ ],
	[ '{"url": "ftp://{ipv4}/health"}', qr/url/ ])
{
	my ($hs, $re) = @$bad;
	my ($rc, $out, $err) = $h->node->psql('postgres',
		qq{SELECT pgext.server_request('${\ $h->acct}', 'bad-health', '{"server_type":"cx22","image":"ubuntu-24.04","locations":["fsn1"],"health":$hs}')},
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like($err, qr/22023.*$re|$re.*22023/s, "server_request refuses health $hs (22023, names the field)");
}
is($h->sql(q{SELECT count(*) FROM pgext.servers WHERE provision_key = 'bad-health'}), 0, 'and writes nothing');

my $hspec = '{"server_type":"cx22","image":"ubuntu-24.04","locations":["fsn1"],'
  . qq{"health":{"url":"http://{ipv4}:$port/health","every":"200 ms","timeout":0.15}\}};
my ($sd, $se) = @{ $h->servers(2, spec => $hspec, wait => 0) };
$h->poll(qq{SELECT count(*) = 2 FROM pgext.servers s JOIN pgext.health_checks c ON c.server_id = s.id
              WHERE s.id IN ($sd->{id}, $se->{id}) AND s.state = 'configuring' AND c.from_spec
                AND c.ignored_total >= 1 AND c.last_error = 'refused'},
	'configuring: the spec\'s check is added and polled; no agent answers yet (refused)');
for my $s ($sd, $se) { $s->{ip} = $h->sql("SELECT ipv4 FROM pgext.servers WHERE id = $s->{id}") }
is($h->sql("SELECT url FROM pgext.health_checks WHERE server_id = $sd->{id}"), "http://$sd->{ip}:$port/health",
	'{ipv4} in the spec\'s url is the server\'s address');
is($h->sql("SELECT every || ' ' || timeout FROM pgext.health_checks WHERE server_id = $sd->{id}"),
	'00:00:00.2 00:00:00.15', 'every and timeout from the spec (text and seconds)');
is($h->sql("SELECT consecutive_failures || ' ' || state FROM pgext.health_checks WHERE server_id = $sd->{id}"), '0 unknown',
	'failures while configuring do not count');
$fa->add($sd->{ip});
$h->poll("SELECT state = 'active' FROM pgext.servers WHERE id = $sd->{id}", 'the first passing check: configuring -> active');
like($h->sql("SELECT reason FROM pgext.server_history WHERE server_id = $sd->{id} AND to_state = 'active'"),
	qr/first health check passed/, 'the history says why');
is($h->sql("SELECT count(*) FROM pgext.outbox WHERE server_id = $sd->{id} AND kind = 'server_active'"), 1,
	'outbox: server_active');
$h->poll("SELECT state = 'healthy' AND grace_until IS NOT NULL FROM pgext.health_checks WHERE server_id = $sd->{id}",
	'its check is healthy, with a grace period from the moment it became active');

# no check ever passes: the configuring timeout fails it ("cloud-init failed silently")
$h->poll("SELECT state = 'failed' FROM pgext.servers WHERE id = $se->{id}", 'no passing check: failed after the configuring timeout');
is($h->sql("SELECT agent FROM pgext.health_servers WHERE server_id = $se->{id}"), 'unknown', 'its agent is unknown');
settle('the failure');
my $ecount = $h->col($h->sql("SELECT id FROM pgext.health_checks WHERE server_id = $se->{id}"), 'checks_total');
more_checks(5);
is($h->col($h->sql("SELECT id FROM pgext.health_checks WHERE server_id = $se->{id}"), 'checks_total'), $ecount,
	'a failed server is not polled');

# --- the status views
is($h->sql(qq{SELECT concat_ws(' ', vps_state, desired_state, agent, shallow, coalesce(deep, '-'), checks)
                FROM pgext.health_status WHERE server = $sa->{id}}), 'active active healthy healthy - 1',
	'health_status: both layers of a healthy server');
is($h->sql(qq{SELECT concat_ws(' ', agent, shallow, last_error) FROM pgext.health_status WHERE server = $sb->{id}}),
	'unhealthy unhealthy HTTP 503', 'health_status: an unhealthy one, with its error');
is($h->sql(q{SELECT concat_ws(' ', healthy >= 2, unhealthy >= 1, breaker, recovery_paused, checks_per_second > 0)
               FROM pgext.health_fleet}), 't t closed f t',
	'health_fleet: counts, breaker closed, recovery not paused, checks per second');
is($h->sql(q{SELECT concat_ws(' ', checks_loaded >= 3, sent > 0, recorded > 0, record_errors = 0)
               FROM pgext.health_poller()}), 't t t t', 'health_poller: the worker\'s counters');
is($h->sql(q{SELECT count(*) FROM pgext.health_events WHERE kind = 'recovery'}), 0,
	'with health_recovery_per_minute = 0 nothing was recovered');
is(scalar $h->hz_actions('(reboot|reset)'), 0, 'and nothing was rebooted at Hetzner');

unlike(slurp_file($h->node->logfile), qr/hz-tok-/, 'no token in the server log');
done_testing();
