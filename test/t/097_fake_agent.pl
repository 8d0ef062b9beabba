# The fake agents (test/fake/agent.py) do what the health tests tell them
# before the poller is tested against them: many agents on loopback addresses
# on one port, each mode (ok, fail, hang, flap, reset, refuse) per agent and
# path, request counts and times, and SIGTERM.  No cluster is needed.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use FakeAgent;
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP ();
use Errno ();
use Time::HiRes ();
use File::Temp ();
use Test::More;

my $fa = FakeAgent->start;
my $port = $fa->port;
like($fa->url('127.0.3.7'), qr{^http://127\.0\.3\.7:\d+/health$}, 'agent URL on a loopback address');
my $http = HTTP::Tiny->new(timeout => 10, keep_alive => 0);
my $json = JSON::PP->new;

# Polls $cond (a code ref) until true; dies after 30 s.
sub wait_for
{
	my ($cond, $what) = @_;
	my $deadline = time + 30;
	until ($cond->())
	{
		die "timed out waiting for $what" if time > $deadline;
		select(undef, undef, undef, 0.02);
	}
	return 1;
}

# One GET; returns the HTTP::Tiny answer (status 599 = no HTTP answer).
sub get
{
	my ($ip, $path, %o) = @_;
	my $h = $o{timeout} ? HTTP::Tiny->new(timeout => $o{timeout}, keep_alive => 0) : $http;
	return $h->get($fa->url($ip, $path));
}

# Connects to $ip:port; returns the errno when it fails, 0 when it connects.
sub connect_errno
{
	my ($ip) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => $ip, PeerPort => $port, Proto => 'tcp', Timeout => 5);
	return 0 + $! unless $s;
	close $s;
	return 0;
}

# ok: every agent answers any path with 200 JSON; 127.0.0.1 is an agent too.
my $r = get('127.0.0.1', '/health');
is($r->{status}, 200, '127.0.0.1 answers as an agent');
is($json->decode($r->{content})->{status}, 'ok', 'ok body');
isnt(connect_errno('127.0.3.7'), 0, 'an agent not added yet: nothing listens');
is_deeply($fa->add('127.0.3.7', '127.0.3.8'), ['127.0.3.7', '127.0.3.8'], 'agents added');
$r = get('127.0.3.7', '/health');
is($r->{status}, 200, 'added agent answers 200');
is($json->decode($r->{content})->{agent}, '127.0.3.7', 'answer names the agent');
is(get('127.0.3.8', '/anything/else')->{status}, 200, 'any path is ok');
is($fa->count('127.0.3.7', '/health'), 1, 'request counted per agent and path');
is($fa->count('127.0.3.8', '/health'), 0, 'other agent: nothing for /health');
is($fa->count('127.0.3.8', '/anything/else'), 1, 'other agent counted its path');

# fail: default 503, any status; per path.
$fa->mode('127.0.3.7', 'fail', path => '/health');
is(get('127.0.3.7', '/health')->{status}, 503, 'fail: 503 by default');
is(get('127.0.3.7', '/deep')->{status}, 200, 'fail on /health leaves other paths ok');
is(get('127.0.3.8', '/health')->{status}, 200, 'fail on one agent leaves the others ok');
$fa->mode('127.0.3.7', 'fail', path => '/health', status => 500);
is(get('127.0.3.7', '/health')->{status}, 500, 'fail with status 500');
$fa->mode('127.0.3.7', 'fail', status => 404);
is(get('127.0.3.7', '/other')->{status}, 404, 'mode for every path ("*")');
is(get('127.0.3.7', '/health')->{status}, 500, 'a path with its own mode keeps it');
$fa->mode('127.0.3.7', 'ok', path => '/health');
$fa->mode('127.0.3.7', 'ok');
is(get('127.0.3.7', '/health')->{status}, 200, 'back to ok');

# flap: the pattern repeats.
$fa->mode('127.0.3.7', 'flap', path => '/health', pattern => ['ok', 'ok', { mode => 'fail', status => 502 }]);
my @seen = map { get('127.0.3.7', '/health')->{status} } 1 .. 7;
is_deeply(\@seen, [200, 200, 502, 200, 200, 502, 200], 'flap repeats its pattern');
$fa->mode('127.0.3.7', 'flap', path => '/health', pattern => ['ok', 'reset']);
@seen = map { get('127.0.3.7', '/health')->{status} } 1 .. 4;
is_deeply(\@seen, [200, 599, 200, 599], 'flap with resets');

# reset: a TCP RST, no HTTP answer.
$fa->mode('127.0.3.7', 'reset', path => '/health');
{
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.3.7', PeerPort => $port, Proto => 'tcp')
	  or die "connect: $!";
	print $s "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
	my $buf;
	my $n = sysread($s, $buf, 100);
	my $err = 0 + $!;
	ok(!$n, 'reset: no answer');
	is($err, Errno::ECONNRESET, 'reset: connection reset by peer');
	close $s;
}

# refuse: the listener is closed, connections are refused; ok reopens it.
$fa->mode('127.0.3.7', 'refuse');
is(connect_errno('127.0.3.7'), Errno::ECONNREFUSED, 'refuse: connection refused');
like(get('127.0.3.7', '/health')->{content}, qr/refused/i, 'refuse: the client sees refused');
is(get('127.0.3.8', '/health')->{status}, 200, 'refuse on one agent: the others answer');
ok(!$fa->agent('127.0.3.7')->{listening}, 'state: not listening');
my $before = $fa->count('127.0.3.7', '/health');
$fa->mode('127.0.3.7', 'ok', path => '/health');
is(connect_errno('127.0.3.7'), 0, 'back to ok: listening again');
is(get('127.0.3.7', '/health')->{status}, 200, 'back to ok: answers');
is($fa->count('127.0.3.7', '/health'), $before + 1, 'refused connections are not requests');
eval { $fa->mode('127.0.0.1', 'refuse') };
like($@, qr/400/, '127.0.0.1 (the control API) cannot refuse');

# hang: holds the connection until the client gives up; then it is let go.
$fa->mode('127.0.3.8', 'hang', path => '/health');
$r = get('127.0.3.8', '/health', timeout => 0.5);
is($r->{status}, 599, 'hang: no answer');
like($r->{content}, qr/timed out/i, 'hang: the client timed out');
wait_for(sub { $fa->agent('127.0.3.8')->{hanging} == 0 }, 'the hung connection to be let go');
pass('hang: the fake noticed the client left');
{
	# held while the client waits
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.3.8', PeerPort => $port, Proto => 'tcp')
	  or die "connect: $!";
	print $s "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
	wait_for(sub { $fa->agent('127.0.3.8')->{hanging} == 1 }, 'the connection to be held');
	pass('hang: held while the client waits');
	close $s;
	wait_for(sub { $fa->agent('127.0.3.8')->{hanging} == 0 }, 'the connection to be let go');
	pass('hang: let go when the client closes');
}
$fa->mode('127.0.3.8', 'hang', path => '/health', seconds => 0.2);
is(get('127.0.3.8', '/health')->{status}, 200, 'hang with seconds: then ok');
{
	# a mode change ends a hang
	$fa->mode('127.0.3.8', 'hang', path => '/health');
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.3.8', PeerPort => $port, Proto => 'tcp')
	  or die "connect: $!";
	print $s "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
	wait_for(sub { $fa->agent('127.0.3.8')->{hanging} == 1 }, 'the connection to be held');
	$fa->mode('127.0.3.8', 'ok', path => '/health');
	my $buf;
	my $n = sysread($s, $buf, 100);
	ok(!$n, 'a mode change closes a hung connection');
	close $s;
}

# A mode on a new address adds the agent; remove closes it.
$fa->mode('127.0.9.1', 'fail', status => 500);
is(get('127.0.9.1', '/health')->{status}, 500, 'mode on a new address adds the agent');
$fa->remove('127.0.9.1');
is(connect_errno('127.0.9.1'), Errno::ECONNREFUSED, 'removed agent: refused');

# Many agents, many requests: counts and times per agent.
my @ips = map { "127.0.10.$_" } 1 .. 50;
$fa->add(@ips);
$fa->clear_counts;
for my $round (1 .. 4)
{
	get($_, '/health') for @ips;
}
is_deeply([ map { $fa->count($_, '/health') } @ips ], [ (4) x 50 ], '50 agents x 4 requests counted');
my $t = $fa->times('127.0.10.7', '/health');
is(scalar @$t, 4, 'times of the requests kept');
ok($t->[0] <= $t->[1] && $t->[1] <= $t->[2] && $t->[2] <= $t->[3], 'times are in order');
cmp_ok(abs($t->[3] - Time::HiRes::time()), '<', 60, 'times are unix times');
$fa->config(keep => 2);
get('127.0.10.7', '/health');
is(scalar @{ $fa->times('127.0.10.7', '/health') }, 2, 'keep: only the last N times');
is($fa->count('127.0.10.7', '/health'), 5, 'counts are not limited by keep');

# Bad control calls.
for my $bad ({ ip => '10.0.0.1', mode => 'ok' }, { ip => '127.0.0.5', mode => 'sleep' },
	{ ip => '127.0.0.5', mode => 'flap' }, { ip => '127.0.0.5', mode => 'flap', pattern => ['refuse'] })
{
	my $res = $http->request('POST', "http://127.0.0.1:$port/__fake/mode",
		{ content => $json->encode($bad) });
	is($res->{status}, 400, "bad mode call refused: " . $json->canonical->encode($bad));
}

# reset: no agents, no counts.
$fa->reset;
is(connect_errno('127.0.3.8'), Errno::ECONNREFUSED, 'reset closes the agents');
is($fa->state->{requests}, 0, 'reset clears the counts');
is(get('127.0.0.1', '/health')->{status}, 200, '127.0.0.1 still answers');

unlike($fa->log_text, qr/Traceback/, 'no Python traceback in the log');
is($fa->stop, 0, 'SIGTERM: exits 0');
isnt(connect_errno('127.0.0.1'), 0, 'stopped: nothing listens');

# It exits when the process that started it is gone (a test that died).
{
	my $dir = File::Temp::tempdir(CLEANUP => 1);
	my $script = "$FindBin::Bin/../fake/agent.py";
	system('sh', '-c', qq{python3 "$script" --port 0 --port-file "$dir/port" --quiet >/dev/null 2>&1 &
		until [ -s "$dir/port" ]; do sleep 0.05; done}) == 0 or die 'could not start an orphan fake';
	open my $fh, '<', "$dir/port" or die "port file: $!";
	chomp(my $oport = <$fh>);
	close $fh;
	my $deadline = time + 30;
	my $gone;
	until ($gone = !IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $oport, Proto => 'tcp'))
	{
		last if time > $deadline;
		Time::HiRes::sleep(0.05);
	}
	ok($gone, 'its parent gone, the fake exits');
}

done_testing();
