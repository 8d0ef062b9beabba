# The fake Hetzner API (test/fake/hetzner.py) behaves like the real one
# (../shared/api-notes.md) before the worker is tested against it: servers,
# pagination, label selectors, actions, power, delete, errors, rate limits,
# every fault kind, and no token in its log.  No cluster is needed.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use FakeHetzner;
use IO::Socket::INET;
use Test::More;

my $token = 'tok-' . join('', map { int(rand(10)) } 1 .. 16) . '-secret';
my $fake = FakeHetzner->start(token => $token, action_polls => 2);
like($fake->url, qr{^http://127\.0\.0\.1:\d+/v1$}, 'fake listens on loopback');

my %create = (name => 'pgext-s1', server_type => 'cx22', image => 'debian-12',
	location => 'fsn1', labels => { 'managed-by' => 'pgext', account => '7' });

# Create.
my $r = $fake->api('POST', '/servers', \%create);
is($r->{status}, 201, 'create answers 201');
my $srv = $r->{json}{server};
is($srv->{status}, 'initializing', 'new server is initializing');
ok($srv->{id} && $srv->{public_net}{ipv4}{ip}, 'server has id and ipv4');
is($srv->{labels}{'managed-by'}, 'pgext', 'labels stored');
is($srv->{datacenter}{location}{name}, 'fsn1', 'location');
is($srv->{server_type}{name}, 'cx22', 'server type');
is($r->{json}{action}{command}, 'create_server', 'create action');
is($r->{json}{action}{status}, 'running', 'create action running');
is_deeply($r->{json}{next_actions}, [], 'next_actions');
ok(exists $r->{json}{root_password} && !defined $r->{json}{root_password}, 'root_password null');
my $aid = $r->{json}{action}{id};

# Rate-limit headers on every response, counting down.
is($r->{headers}{'ratelimit-limit'}, 3600, 'RateLimit-Limit');
my $rem1 = $r->{headers}{'ratelimit-remaining'};
ok($r->{headers}{'ratelimit-reset'} >= time - 1, 'RateLimit-Reset is unix time');
like($r->{headers}{'x-correlation-id'}, qr/^[0-9a-f]{32}$/, 'x-correlation-id');

# Uniqueness.
$r = $fake->api('POST', '/servers', \%create);
is($r->{status}, 409, 'same name: 409');
is($r->{json}{error}{code}, 'uniqueness_error', 'uniqueness_error');
ok(exists $r->{json}{error}{message} && exists $r->{json}{error}{details}, 'error shape');
cmp_ok($r->{headers}{'ratelimit-remaining'}, '<', $rem1, 'budget counts down');

# Validation.
$r = $fake->api('POST', '/servers', { %create, name => 'x2', datacenter => 'fsn1-dc14' });
is($r->{json}{error}{code}, 'invalid_input', 'datacenter refused');
is($r->{status}, 400, 'invalid_input is 400');
$r = $fake->api('POST', '/servers', { %create, name => 'x3', user_data => 'x' x 32769 });
is($r->{json}{error}{details}{fields}[0]{name}, 'user_data', 'user_data over 32768 refused');
$r = $fake->api('POST', '/servers', { %create, name => 'x4', user_data => 'x' x 32768 });
is($r->{status}, 201, 'user_data of 32768 accepted');
$r = $fake->api('POST', '/servers', '{"name": "x5",');
is($r->{json}{error}{code}, 'json_error', 'malformed request body: json_error');

# Actions complete after N polls, then change the server.
$r = $fake->api('GET', "/actions/$aid");
is($r->{json}{action}{status}, 'running', 'poll 1: running');
is($fake->api('GET', "/servers/$srv->{id}")->{json}{server}{status}, 'initializing', 'still initializing');
$r = $fake->api('GET', "/actions?id=$aid&id=999");
is(scalar @{ $r->{json}{actions} }, 1, 'batch poll returns known actions');
is($r->{json}{actions}[0]{status}, 'success', 'poll 2: success');
is($r->{json}{actions}[0]{progress}, 100, 'progress 100');
is($fake->api('GET', "/servers/$srv->{id}")->{json}{server}{status}, 'running', 'server running');
is($fake->api('GET', '/actions/424242')->{status}, 404, 'unknown action 404');

# Name filter.
$r = $fake->api('GET', '/servers?name=pgext-s1');
is(scalar @{ $r->{json}{servers} }, 1, 'name filter finds the server');
is($r->{json}{servers}[0]{id}, $srv->{id}, 'name filter: same id');
is(scalar @{ $fake->api('GET', '/servers?name=nope')->{json}{servers} }, 0, 'name filter: none');

# Power off / on.
$r = $fake->api('POST', "/servers/$srv->{id}/actions/poweroff");
is($r->{status}, 201, 'poweroff 201');
is($r->{json}{action}{command}, 'stop_server', 'stop_server action');
my $off = $r->{json}{action}{id};
$fake->api('GET', "/actions/$off") for 1 .. 2;
is($fake->api('GET', "/servers/$srv->{id}")->{json}{server}{status}, 'off', 'server off');
$r = $fake->api('POST', "/servers/$srv->{id}/actions/poweron");
$fake->api('GET', "/actions/$r->{json}{action}{id}") for 1 .. 2;
is($fake->api('GET', "/servers/$srv->{id}")->{json}{server}{status}, 'running', 'server on again');
is($fake->api('POST', "/servers/$srv->{id}/actions/explode")->{status}, 404, 'unknown verb 404');

# Delete.
$r = $fake->api('DELETE', "/servers/$srv->{id}");
is($r->{status}, 200, 'delete 200');
is($r->{json}{action}{command}, 'delete_server', 'delete_server action');
is($fake->api('GET', "/servers/$srv->{id}")->{json}{server}{status}, 'deleting', 'deleting');
$fake->api('GET', "/actions/$r->{json}{action}{id}") for 1 .. 2;
$r = $fake->api('GET', "/servers/$srv->{id}");
is($r->{status}, 404, 'deleted server: 404');
is($r->{json}{error}{code}, 'not_found', 'not_found');

# Pagination and label selectors over seeded servers.
$fake->reset;
$fake->seed(count => 120, labels => { 'managed-by' => 'pgext', tier => 'a' });
$fake->seed(count => 30, name_prefix => 'other-', labels => { tier => 'b' });
$fake->seed(count => 5, name_prefix => 'bare-');
my ($pages, $seen, $page) = (0, 0, 1);
while (defined $page)
{
	$r = $fake->api('GET', "/servers?label_selector=managed-by=pgext&page=$page&per_page=50");
	$pages++;
	$seen += @{ $r->{json}{servers} };
	$page = $r->{json}{meta}{pagination}{next_page};
}
is($pages, 3, '120 servers at per_page 50: 3 pages');
is($seen, 120, 'all 120 seen');
my $pg = $r->{json}{meta}{pagination};
is_deeply($pg, { page => 3, per_page => 50, previous_page => 2, next_page => undef,
	last_page => 3, total_entries => 120 }, 'meta.pagination of the last page');
is($fake->api('GET', '/servers?per_page=500')->{json}{meta}{pagination}{per_page}, 50, 'per_page capped at 50');
my $count = sub {
	my ($sel) = @_;
	my $resp = $fake->api('GET', "/servers?label_selector=$sel&per_page=1");
	return $resp->{json}{meta}{pagination}{total_entries};
};
is($count->('tier=b'), 30, 'k=v');
is($count->('tier!=a'), 35, 'k!=v (missing label counts as different)');
is($count->('tier'), 150, 'k');
is($count->('!tier'), 5, '!k');
is($count->('tier%20in%20(a,b)'), 150, 'k in (a,b)');
is($count->('managed-by=pgext,tier=b'), 0, 'comma is AND');
is($count->('managed-by,tier%20in%20(a)'), 120, 'AND with in');

# Rate limit: a small budget runs out; 429 with Retry-After; control calls free.
$fake->reset;
$fake->config(rate_limit => 5, refill_per_second => 0.001);
my @rem;
for (1 .. 5)
{
	$r = $fake->api('GET', '/servers');
	push @rem, $r->{headers}{'ratelimit-remaining'};
}
is_deeply(\@rem, [4, 3, 2, 1, 0], 'remaining counts down 4..0');
$r = $fake->api('GET', '/servers');
is($r->{status}, 429, 'budget exhausted: 429');
is($r->{json}{error}{code}, 'rate_limit_exceeded', 'rate_limit_exceeded');
cmp_ok($r->{headers}{'retry-after'}, '>=', 1, 'Retry-After present');
is($r->{headers}{'ratelimit-remaining'}, 0, 'remaining 0 on 429');
$fake->config(rate_limit => 3600, refill_per_second => 1);

# Auth.
$r = $fake->api('GET', '/servers', undef, token => 'wrong');
is($r->{status}, 401, 'wrong token: 401');
is($r->{json}{error}{code}, 'unauthorized', 'unauthorized');
is($fake->api('GET', '/servers', undef, token => '')->{status}, 401, 'no token: 401');

# Faults.
$fake->reset;
$fake->fault({ kind => 'rate_limit', count => 2, retry_after => 7 });
$r = $fake->api('GET', '/servers');
is($r->{status}, 429, '429 storm: first');
is($r->{headers}{'retry-after'}, 7, '429 storm: Retry-After');
is($fake->api('GET', '/servers')->{status}, 429, '429 storm: second');
is($fake->api('GET', '/servers')->{status}, 200, '429 storm over after count');

$fake->fault({ kind => 'server_error', count => 1 }, { kind => 'unavailable', count => 1 });
$r = $fake->api('GET', '/servers');
is($r->{status}, 500, 'server_error 500');
is($r->{json}{error}{code}, 'server_error', 'server_error code');
$r = $fake->api('GET', '/servers');
is($r->{status}, 503, 'unavailable 503');
is($fake->api('GET', '/servers')->{status}, 200, '5xx over after count');

$fake->fault({ kind => 'server_error', path => '^/v1/actions' });
is($fake->api('GET', '/actions?id=1')->{status}, 500, '5xx by path pattern');
is($fake->api('GET', '/servers')->{status}, 200, 'other paths unaffected');
$fake->clear_faults;

$fake->fault({ kind => 'resource_unavailable', location => 'fsn1' });
$r = $fake->api('POST', '/servers', \%create);
is($r->{status}, 412, 'full location: 412');
is($r->{json}{error}{code}, 'resource_unavailable', 'resource_unavailable');
is($r->{json}{error}{message}, 'error during placement', 'error during placement');
$r = $fake->api('POST', '/servers', { %create, location => 'nbg1' });
is($r->{status}, 201, 'next location works');
$fake->clear_faults;
$fake->fault({ kind => 'placement_error', location => 'hel1', count => 1 });
$r = $fake->api('POST', '/servers', { %create, name => 'p2', location => 'hel1' });
is($r->{json}{error}{code}, 'placement_error', 'placement_error');
$fake->fault({ kind => 'uniqueness_error', method => 'POST', path => '^/v1/servers$', count => 1 });
$r = $fake->api('POST', '/servers', { %create, name => 'fresh' });
is($r->{status}, 409, 'injected uniqueness_error');

$fake->fault({ kind => 'malformed', count => 1 });
$r = $fake->api('GET', '/servers');
is($r->{status}, 200, 'malformed: 200');
ok(!defined $r->{json}, 'malformed: body does not parse');
$fake->fault({ kind => 'malformed', commit => 1, count => 1, method => 'POST' });
$r = $fake->api('POST', '/servers', { %create, name => 'garbled' });
ok(!defined $r->{json}, 'malformed after commit: body does not parse');
is(scalar @{ $fake->api('GET', '/servers?name=garbled')->{json}{servers} }, 1,
	'malformed after commit: the server exists');

$fake->fault({ kind => 'reset', count => 1 });
$r = $fake->api('GET', '/servers');
is($r->{status}, 599, 'reset: connection closed without response');
$fake->fault({ kind => 'reset', commit => 1, count => 1, method => 'POST' });
$r = $fake->api('POST', '/servers', { %create, name => 'lost' });
is($r->{status}, 599, 'reset after commit: no response');
is(scalar @{ $fake->api('GET', '/servers?name=lost')->{json}{servers} }, 1,
	'reset after commit: the server exists (adopt by name)');

$fake->fault({ kind => 'slow', seconds => 3, count => 1 });
my $quick = HTTP::Tiny->new(timeout => 1);
$r = $quick->get($fake->url . '/servers', { headers => { authorization => "Bearer $token" } });
is($r->{status}, 599, 'slow: client times out');

$fake->config(action_polls => 3);
$fake->fault({ kind => 'action_error', count => 1, method => 'POST', path => '/actions/poweroff' });
my $sid = $fake->seed(count => 1, name_prefix => 'ae-')->[0];
$r = $fake->api('POST', "/servers/$sid/actions/poweroff");
my $a2 = $r->{json}{action}{id};
my @st = map { $fake->api('GET', "/actions/$a2")->{json}{action}{status} } 1 .. 3;
is_deeply(\@st, [qw(running running error)], 'action takes 3 polls, then error');

# State for assertions: calls without the token, counters.
my $state = $fake->state(servers => 0);
ok(scalar @{ $state->{calls} } > 0, 'calls logged');
ok(!grep({ exists $_->{headers}{authorization} } @{ $state->{calls} }), 'no Authorization in calls');
cmp_ok($state->{counters}{by_endpoint}{'POST /v1/servers'}, '>=', 5, 'counters by endpoint');
ok($state->{counters}{faults}{reset} == 2, 'fault counters');

# Seeding 10,000 is quick, and listing them takes 200 pages.
$fake->reset;
$fake->seed(count => 10000, labels => { 'managed-by' => 'pgext' });
is($fake->state(servers => 0, calls => 0)->{server_count}, 10000, 'seeded 10,000');
$r = $fake->api('GET', '/servers?label_selector=managed-by=pgext&per_page=50&page=200');
is($r->{json}{meta}{pagination}{last_page}, 200, '10,000 at 50 per page: last_page 200');
is($r->{json}{meta}{pagination}{next_page}, undef, 'page 200 is the last');

# ipv4_prefix 127: servers get loopback addresses (for test/fake/agent.py),
# never 127.0.x.y; the default stays 10.x; reset restores it.
$fake->reset;
is($fake->api('GET', '/servers/' . $fake->seed(count => 1)->[0])->{json}{server}{public_net}{ipv4}{ip},
	'10.0.0.1', 'default ipv4: 10.x from the server number');
$fake->config(ipv4_prefix => '127');
my @lo = map { $fake->api('GET', "/servers/$_")->{json}{server}{public_net}{ipv4}{ip} }
  @{ $fake->seed(count => 2) };
is_deeply(\@lo, ['127.1.0.2', '127.1.0.3'], 'ipv4_prefix 127: loopback addresses from the server number');
$r = $fake->api('POST', '/servers', { %create, name => 'lo-1' });
like($r->{json}{server}{public_net}{ipv4}{ip}, qr/^127\.[1-9]\d*\.\d+\.\d+$/, 'created server: loopback ipv4');
eval { $fake->config(ipv4_prefix => '127.0') };
like($@, qr/400/, 'ipv4_prefix must be one octet');
$fake->reset;
like($fake->api('GET', '/servers/' . $fake->seed(count => 1)->[0])->{json}{server}{public_net}{ipv4}{ip},
	qr/^10\./, 'reset: back to 10.x');

# SIGTERM stops it; the token never reached the log.
is($fake->stop, 0, 'SIGTERM: exits 0');
my $log = $fake->log_text;
like($log, qr{GET /v1/servers -> 200}, 'one log line per request');
unlike($log, qr/\Q$token\E/, 'token not in the log');

done_testing();
