# Safe auto-recovery end to end: agents (test/fake/agent.py) fail, the worker
# polls them, SQL decides, and the worker sends reboots and resets to the fake
# Hetzner API.  The fleet cap (recoveries per minute), the backoff per server
# (reboot, then resets, spaced base * 2^(n-1) up to the max; an alert at the
# fifth), deep failures (degraded, never restarted), the breaker (opens with
# an alert when many servers turn unhealthy at once, holds recovery, closes
# by itself after the quiet period) and the operator's pause / resume.
# Settings are small (checks every 200 ms, backoff 1 s doubling to 2 s, a
# 2 s breaker window, 5 s quiet); a restart switches settings between the
# parts.  Every wait polls.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use PgextTest;
use HealthTest;

my $h = HealthTest->new('recovery', conf => join "\n",
	'pgext.health_recovery_per_minute = 2',
	'pgext.health_breaker_min_servers = 10',
	'pgext.health_recovery_backoff_base = 1s',
	'pgext.health_recovery_backoff_max = 2s');
my $fa = $h->fa;
my $node = $h->node;

# Server $s's health_servers column(s).
sub hs { my ($s, $cols) = @_; return $h->sql("SELECT $cols FROM pgext.health_servers WHERE server_id = $s->{id}") }

# Recovery events of server $s.
sub recoveries { my ($s) = @_; return $h->sql("SELECT count(*) FROM pgext.health_events WHERE kind = 'recovery' AND server_id = $s->{id}") }

# Alerts of the health module with code $code.
sub alerts { my ($code) = @_; return $h->sql("SELECT count(*) FROM pgext.alerts WHERE source = 'health' AND code = '$code'") }

# Waits until server $s's agent is $state.
sub agent_is
{
	my ($s, $state, $what) = @_;
	return $h->poll("SELECT agent = '$state' FROM pgext.health_servers WHERE server_id = $s->{id}",
		$what // "server $s->{id}: agent $state");
}

my @p = $h->servers(4);
my ($r, $g) = $h->servers(2);
my %check;
$check{ $_->{id} } = $h->check($_, '/health') for @p, $r, $g;
my $gdeep = $h->check($g, '/deep', kind => 'deep');
agent_is($_, 'healthy') for @p, $r, $g;

# --- the fleet cap: 4 servers fail, at most 2 recoveries a minute are queued
$fa->mode([ map { $_->{ip} } @p ], 'fail', path => '/health');
agent_is($_, 'unhealthy') for @p;
$h->poll("SELECT count(*) >= 2 FROM pgext.health_events WHERE kind = 'recovery'", 'recoveries queued');
$h->recover_turns(3);
is($h->sql("SELECT count(*) FROM pgext.health_events WHERE kind = 'recovery'"), 2,
	'health_recovery_per_minute = 2: still two after three more turns of health_recover');
is($h->sql(q{SELECT count(*) FROM pgext.health_servers WHERE agent = 'unhealthy' AND recovery_attempts = 0}), 2,
	'the two others wait (no attempt yet)');
is($h->sql('SELECT state FROM pgext.health_breaker'), 'closed', 'the breaker stayed closed (min_servers 10)');
$h->wait_for(sub { $h->hz_actions('reboot') >= 2 }, 'two reboots at the fake Hetzner');
is(scalar $h->hz_actions('reboot'), 2, 'two reboots sent to Hetzner');
is(scalar $h->hz_actions('reset'), 0, 'no reset');
$h->poll(q{SELECT count(*) = 2 FROM pgext.outbox WHERE kind = 'agent_restarting' AND detail = 'reboot (attempt 1)'},
	'outbox: agent_restarting, reboot (attempt 1), for each');
$fa->mode([ map { $_->{ip} } @p ], 'ok', path => '/health');
agent_is($_, 'healthy') for @p;
is($h->sql('SELECT count(*) FROM pgext.health_servers WHERE recovery_attempts > 0 OR next_recovery_at IS NOT NULL'), 0,
	'healthy again: attempts and next recovery cleared');

# New settings: no cap to speak of, a breaker that can open.
$node->append_conf('postgresql.conf', join "\n", 'pgext.health_recovery_per_minute = 100',
	'pgext.health_breaker_min_servers = 3', 'pgext.health_breaker_window = 2s', 'pgext.health_breaker_quiet = 5s', '');
$node->restart;
$h->poll(q{SELECT checks_loaded >= 7 FROM pgext.health_poller()}, 'the worker polls again after a restart');

# --- backoff: server R fails for good: reboot, then resets, each later than
# the one before by base * 2^(n-1) (1 s, 2 s, then capped at 2 s); an alert at
# the fifth.  Server G's deep check fails meanwhile: degraded, never restarted.
$fa->mode($g->{ip}, 'fail', path => '/deep');
$fa->mode($r->{ip}, 'fail', path => '/health');
agent_is($g, 'degraded', 'a failing deep check: the agent is degraded');
is($h->sql("SELECT string_agg(kind, ',' ORDER BY id) FROM pgext.outbox WHERE server_id = $g->{id} AND kind LIKE 'agent%'"),
	'agent_healthy,agent_degraded', 'outbox: agent_degraded');
is($h->sql("SELECT concat_ws(' ', agent, shallow, deep) FROM pgext.health_status WHERE server = $g->{id}"),
	'degraded healthy unhealthy', 'health_status: shallow healthy, deep unhealthy');
$h->poll("SELECT count(*) >= 5 FROM pgext.health_events WHERE kind = 'recovery' AND server_id = $r->{id}",
	'server R: five recovery attempts');
my @ev = map { [ split /\|/ ] } split /\n/, $h->sql(qq{
	SELECT to_state, extract(epoch FROM at), detail FROM pgext.health_events
	 WHERE kind = 'recovery' AND server_id = $r->{id} ORDER BY id LIMIT 5});
is_deeply([ map { $_->[0] } @ev ], [qw(reboot reset reset reset reset)], 'reboot first, then resets');
like($ev[$_][2], qr/^attempt @{[ $_ + 1 ]}\b/, "event " . ($_ + 1) . " says attempt " . ($_ + 1)) for 0 .. 4;
my @want = (1, 2, 2, 2);
for my $i (0 .. 3)
{
	cmp_ok($ev[ $i + 1 ][1] - $ev[$i][1], '>=', $want[$i],
		"attempt @{[ $i + 2 ]} came at least $want[$i] s after attempt @{[ $i + 1 ]}");
}
is(hs($r, q{recovery_attempts || ' ' || (next_recovery_at - last_recovery_at) || ' ' || last_recovery_action}),
	'5 00:00:02 reset', 'next_recovery_at = last + least(max, base * 2^(n-1))');
is(alerts('recovery_not_working'), 1, 'an alert when the fifth attempt did not help');
$h->wait_for(sub { $h->hz_actions('reset', $r) >= 4 }, 'four resets of R at the fake Hetzner');
is(scalar $h->hz_actions('reboot', $r), 1, 'Hetzner got one reboot of R');
is(scalar $h->hz_actions('reset', $r), 4, 'and four resets');
$h->poll(qq{SELECT count(*) = 5 FROM pgext.outbox WHERE server_id = $r->{id} AND kind = 'agent_restarting'},
	'outbox: agent_restarting for each');
is(recoveries($g), 0, 'the degraded server was never recovered');
is(scalar($h->hz_actions('reboot', $g)) + scalar($h->hz_actions('reset', $g)), 0, 'nor rebooted or reset at Hetzner');
is(hs($g, 'recovery_attempts'), 0, 'no attempts for it');

$fa->mode($r->{ip}, 'ok', path => '/health');
$fa->mode($g->{ip}, 'ok', path => '/deep');
agent_is($r, 'healthy', 'R passes again: healthy');
is(hs($r, q{recovery_attempts || ' ' || coalesce(next_recovery_at::text, 'none')}), '0 none',
	'its attempts and next recovery are cleared');
agent_is($g, 'healthy', 'G\'s deep check passes again: healthy');

# --- the breaker: three servers turn unhealthy at once; it opens with an
# alert (some may have been queued before the third turned); while it is open
# a server that turns unhealthy is not recovered; after the quiet period it
# closes by itself (an alert) and recovery goes on.
my @x = @p[0 .. 2];
my $y = $p[3];
my $yreboots = $h->hz_actions('reboot', $y);
$fa->mode([ map { $_->{ip} } @x ], 'fail', path => '/health');
$h->poll(q{SELECT state = 'open' FROM pgext.health_breaker}, 'three servers unhealthy at once: the breaker opens');
is(alerts('breaker_open'), 1, 'an alert breaker_open');
like($h->sql('SELECT reason FROM pgext.health_breaker'), qr/turned unhealthy/, 'the breaker says why');
is($h->sql(q{SELECT count(*) FROM pgext.health_events WHERE kind = 'breaker' AND to_state = 'open'}), 1, 'a breaker event');
is($h->sql('SELECT breaker FROM pgext.health_fleet'), 'open', 'health_fleet shows it open');
$fa->mode([ map { $_->{ip} } @x ], 'ok', path => '/health');
$fa->mode($y->{ip}, 'fail', path => '/health');
agent_is($y, 'unhealthy', 'another server (Y) turns unhealthy');
agent_is($_, 'healthy') for @x;
$h->poll(q{SELECT state = 'closed' FROM pgext.health_breaker}, 'after the quiet period the breaker closes by itself');
is(alerts('breaker_closed'), 1, 'an alert breaker_closed');
$h->poll("SELECT count(*) >= 1 FROM pgext.health_events WHERE kind = 'recovery' AND server_id = $y->{id}",
	'closed: Y is recovered');
my ($opened, $closed) = map { $h->sql("SELECT at FROM pgext.health_events WHERE kind = 'breaker' AND to_state = '$_'") }
  qw(open closed);
ok($h->sql(qq{SELECT count(*) = 1 FROM pgext.health_events WHERE kind = 'agent' AND server_id = $y->{id}
                AND to_state = 'unhealthy' AND at > '$opened' AND at < '$closed'}),
	'Y turned unhealthy while the breaker was open');
is($h->sql(qq{SELECT count(*) FROM pgext.health_events WHERE kind = 'recovery' AND at > '$opened' AND at < '$closed'}), 0,
	'no recovery was queued while it was open');
ok($h->sql(qq{SELECT bool_and(at >= '$closed') FROM pgext.health_events WHERE kind = 'recovery' AND server_id = $y->{id}}),
	'Y was recovered once it closed');
$h->wait_for(sub { $h->hz_actions('reboot', $y) > $yreboots }, 'a reboot of Y at the fake Hetzner');
pass('Hetzner got the reboot of Y');
is($h->sql('SELECT state FROM pgext.health_breaker'), 'closed', 'the breaker stays closed (its window is over)');
$fa->mode($y->{ip}, 'ok', path => '/health');
agent_is($y, 'healthy');

# --- the operator's pause: no recovery while paused, even with the breaker
# closed; resume lets it go on.  pgext_admin only.
my ($rc, $out, $err) = $node->psql('postgres', q{SELECT pgext.health_recovery_pause('  ')});
like($err, qr/needs a reason/, 'pause needs a reason');
$node->safe_psql('postgres', 'CREATE ROLE app_user LOGIN IN ROLE pgext_app');
($rc, $out, $err) = $node->psql('postgres', q{SELECT pgext.health_recovery_pause('x')}, extra_params => [ '-U', 'app_user' ]);
like($err, qr/permission denied/, 'pgext_app may not pause recovery');
is($h->sql(q{SELECT pgext.health_recovery_pause('Hetzner incident in fsn1')}), 't', 'health_recovery_pause: true');
is($h->sql(q{SELECT pgext.health_recovery_pause('again')}), 'f', 'again: false (already paused)');
is($h->sql(q{SELECT paused || ' ' || paused_reason FROM pgext.health_breaker}), 'true Hetzner incident in fsn1',
	'the breaker row says paused, and why');
is(alerts('recovery_paused'), 1, 'an alert recovery_paused');
is($h->sql('SELECT recovery_paused FROM pgext.health_fleet'), 't', 'health_fleet shows it');
my $z = $r;
my $zbefore = recoveries($z);
my $zreboots = $h->hz_actions('reboot', $z);
$fa->mode($z->{ip}, 'fail', path => '/health');
agent_is($z, 'unhealthy', 'server Z turns unhealthy while paused');
$h->recover_turns(2);
is(recoveries($z), $zbefore, 'paused: Z is not recovered');
is($h->sql(q{SELECT pgext.health_recovery_resume()}), 't', 'health_recovery_resume: true');
is($h->sql(q{SELECT pgext.health_recovery_resume()}), 'f', 'again: false');
is(alerts('recovery_resumed'), 1, 'an alert recovery_resumed');
is($h->sql(q{SELECT string_agg(to_state, ',' ORDER BY id) FROM pgext.health_events WHERE kind = 'pause'}), 'paused,running',
	'pause and resume are in the history');
$h->poll("SELECT count(*) > $zbefore FROM pgext.health_events WHERE kind = 'recovery' AND server_id = $z->{id}",
	'resumed: Z is recovered');
$h->wait_for(sub { $h->hz_actions('reboot', $z) > $zreboots }, 'a reboot of Z at the fake Hetzner');
pass('Hetzner got a reboot of Z (its first attempt since it was healthy: reboot, not reset)');
$fa->mode($z->{ip}, 'ok', path => '/health');
agent_is($z, 'healthy');

unlike(slurp_file($node->logfile), qr/hz-tok-/, 'no token in the server log');
done_testing();
