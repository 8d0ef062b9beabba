# The fake Stripe API (test/fake/stripe.py) behaves like the real one before
# the worker is tested against it: key checks and Stripe's error shape, the
# Request-Id header, object shapes, subscription filters (status default vs
# all, customer), cursor pagination (starting_after / ending_before /
# has_more) over 250 subscriptions, events by type(s) and created range,
# newest first, only the last 30 days, every fault kind, the control API, no
# key in its log, and it exits on SIGTERM and when its parent dies.  No
# cluster is needed.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use FakeStripe;
use File::Temp ();
use HTTP::Tiny;
use IPC::Run ();
use JSON::PP ();
use List::Util ();
use Test::More;
use Time::HiRes ();

my $token = 'sk_test_' . join('', map { ('a' .. 'z', 0 .. 9)[rand 36] } 1 .. 24);
my $fake = FakeStripe->start(token => $token);
like($fake->url, qr{^http://127\.0\.0\.1:\d+$}, 'fake listens on loopback');
my $t0 = 1_790_000_000;
is($fake->clock($t0), $t0, 'clock set');

# Auth: Stripe's error shape; the wrong key is never echoed in full.
my $r = $fake->api('GET', '/v1/subscriptions', token => 'sk_test_wrongwrongwrong');
is($r->{status}, 401, 'wrong key: 401');
is($r->{json}{error}{type}, 'invalid_request_error', 'wrong key: invalid_request_error');
is($r->{json}{error}{code}, 'api_key_invalid', 'wrong key: api_key_invalid');
like($r->{json}{error}{message}, qr/^Invalid API Key provided: \*+rong$/, 'wrong key: only its tail shown');
like($r->{headers}{'request-id'}, qr/^req_[A-Za-z0-9]{14}$/, 'Request-Id on a 401');
$r = $fake->api('GET', '/v1/subscriptions', token => '');
is($r->{status}, 401, 'no key: 401');
like($r->{json}{error}{message}, qr/did not provide an API key/, 'no key: said so');
is($fake->api('GET', '/v1/subscriptions', token => "$token ")->{status}, 401, 'key must match exactly');

# A subscription from the control API, and its event.
my ($sub, $evid) = $fake->subscription(customer => 'cus_A', status => 'active',
	price => 'price_basic', current_period_end => $t0 + 1000, metadata => { account => 'a1' });
like($sub->{id}, qr/^sub_[A-Za-z0-9]+$/, 'subscription id');
is($sub->{object}, 'subscription', 'object');
is($sub->{customer}, 'cus_A', 'customer');
is($sub->{status}, 'active', 'status');
ok(JSON::PP::is_bool($sub->{cancel_at_period_end}) && !$sub->{cancel_at_period_end}, 'cancel_at_period_end false');
is($sub->{current_period_end}, $t0 + 1000, 'current_period_end on the subscription');
is($sub->{current_period_start}, $t0 + 1000 - 30 * 86400, 'current_period_start defaults to a month before');
my $item = $sub->{items}{data}[0];
is($item->{price}{id}, 'price_basic', 'items.data[0].price.id');
is($item->{current_period_end}, $t0 + 1000, 'current_period_end on the item');
is($item->{current_period_start}, $sub->{current_period_start}, 'current_period_start on the item');
is($sub->{created}, $t0, 'created = the fake clock');
ok(JSON::PP::is_bool($sub->{livemode}) && !$sub->{livemode}, 'livemode false');
is($sub->{metadata}{account}, 'a1', 'metadata');
like($evid, qr/^evt_/, 'the control call names its event');

$r = $fake->api('GET', "/v1/subscriptions/$sub->{id}");
is($r->{status}, 200, 'retrieve: 200');
is_deeply($r->{json}, $sub, 'retrieve: the same object');
like($r->{headers}{'request-id'}, qr/^req_[A-Za-z0-9]{14}$/, 'Request-Id on a 200');
ok($r->{headers}{'stripe-version'}, 'Stripe-Version header');
my $rid = $r->{headers}{'request-id'};
isnt($fake->api('GET', "/v1/subscriptions/$sub->{id}")->{headers}{'request-id'}, $rid,
	'a new Request-Id per request');
$r = $fake->api('GET', '/v1/subscriptions/sub_nope');
is($r->{status}, 404, 'unknown subscription: 404');
is($r->{json}{error}{code}, 'resource_missing', 'resource_missing');
is($r->{json}{error}{message}, "No such subscription: 'sub_nope'", 'No such subscription');
is($r->{json}{error}{param}, 'id', 'param id');

# The event the control call recorded.
$r = $fake->api('GET', "/v1/events/$evid");
is($r->{status}, 200, 'event retrieve: 200');
my $ev = $r->{json};
is($ev->{object}, 'event', 'event object');
is($ev->{type}, 'customer.subscription.created', 'event type');
is($ev->{created}, $t0, 'event created');
is_deeply($ev->{data}{object}, $sub, 'event data.object is the subscription');
ok(exists $ev->{api_version} && exists $ev->{pending_webhooks} && exists $ev->{request}{id}
	&& exists $ev->{request}{idempotency_key}, 'api_version, pending_webhooks, request');
ok(JSON::PP::is_bool($ev->{livemode}) && !$ev->{livemode}, 'event livemode false');

# Customers: made with the subscription, or by the control API; deleted ones.
$r = $fake->api('GET', '/v1/customers/cus_A');
is($r->{json}{object}, 'customer', 'customer made with its subscription');
is($r->{json}{id}, 'cus_A', 'customer id');
my $c = $fake->customer(id => 'cus_B', email => 'b@example.com', metadata => { account => 'b1' });
$r = $fake->api('GET', '/v1/customers/cus_B');
is($r->{json}{email}, 'b@example.com', 'customer email');
is($r->{json}{metadata}{account}, 'b1', 'customer metadata');
$fake->customer(id => 'cus_B', deleted => 1);
$r = $fake->api('GET', '/v1/customers/cus_B');
is_deeply($r->{json}, { id => 'cus_B', object => 'customer', deleted => JSON::PP::true }, 'deleted customer');
is($fake->api('GET', '/v1/customers/cus_nope')->{status}, 404, 'unknown customer: 404');

# Changes: updated (with previous_attributes), deleted on cancel, none when asked.
$fake->advance(10);
my ($upd, $ev2) = $fake->subscription(id => $sub->{id}, status => 'past_due');
is($upd->{customer}, 'cus_A', 'a change keeps the fields left out');
is($upd->{items}{data}[0]{price}{id}, 'price_basic', 'a change keeps the price');
$ev = $fake->api('GET', "/v1/events/$ev2")->{json};
is($ev->{type}, 'customer.subscription.updated', 'change: customer.subscription.updated');
is($ev->{data}{previous_attributes}{status}, 'active', 'previous_attributes');
$fake->advance(10);
my ($ce) = $fake->subscription(id => $sub->{id}, cancel_at_period_end => 1, status => 'active');
is($ce->{cancel_at}, $t0 + 1000, 'cancel_at_period_end sets cancel_at to the period end');
$fake->advance(10);
my ($can, $ev3) = $fake->subscription(id => $sub->{id}, status => 'canceled');
is($fake->api('GET', "/v1/events/$ev3")->{json}{type}, 'customer.subscription.deleted', 'cancel: customer.subscription.deleted');
is($can->{ended_at}, $t0 + 30, 'ended_at = now');
is($can->{canceled_at}, $t0 + 30, 'canceled_at = now');
my (undef, $none) = $fake->subscription(customer => 'cus_C', status => 'active', event => 0);
is($none, '', 'event => 0: no event recorded');
my (undef, $typed) = $fake->subscription(customer => 'cus_C', status => 'paused',
	event => 'customer.subscription.paused');
is($fake->api('GET', "/v1/events/$typed")->{json}{type}, 'customer.subscription.paused', 'event type named by the call');
$r = $fake->control('POST', 'events', { type => 'invoice.paid', data => { object => { id => 'in_1', object => 'invoice' } } });
like($r->{id}, qr/^evt_/, 'raw event gets an id');
is($r->{created}, $t0 + 30, 'raw event created = now');
is($r->{object}, 'event', 'raw event object');

# Status filter: default hides canceled, all shows it; customer filter.
my $ids = sub { [map { $_->{id} } @{ $_[0]{json}{data} }] };
$r = $fake->api('GET', '/v1/subscriptions');
is($r->{json}{object}, 'list', 'list object');
is($r->{json}{url}, '/v1/subscriptions', 'list url');
ok(JSON::PP::is_bool($r->{json}{has_more}), 'has_more is a boolean');
ok(!grep({ $_ eq $sub->{id} } @{ $ids->($r) }), 'default: the canceled one is missing');
is(scalar @{ $r->{json}{data} }, 2, 'default: the other two');
$r = $fake->api('GET', '/v1/subscriptions?status=all');
is(scalar @{ $r->{json}{data} }, 3, 'status=all: all three');
is($fake->api('GET', '/v1/subscriptions?status=canceled')->{json}{data}[0]{id}, $sub->{id}, 'status=canceled');
is(scalar @{ $fake->api('GET', '/v1/subscriptions?status=ended')->{json}{data} }, 1, 'status=ended');
is(scalar @{ $fake->api('GET', '/v1/subscriptions?status=paused')->{json}{data} }, 1, 'status=paused');
$r = $fake->api('GET', '/v1/subscriptions?status=bogus');
is($r->{status}, 400, 'bad status: 400');
is($r->{json}{error}{param}, 'status', 'bad status: param');
$r = $fake->api('GET', '/v1/subscriptions?customer=cus_A&status=all');
is_deeply($ids->($r), [$sub->{id}], 'customer filter');
is(scalar @{ $fake->api('GET', '/v1/subscriptions?customer=cus_A')->{json}{data} }, 0,
	'customer filter without status=all misses the canceled one');
is(scalar @{ $fake->api('GET', '/v1/subscriptions?customer=cus_C&limit=100')->{json}{data} }, 2, 'customer cus_C');
$r = $fake->api('GET', '/v1/subscriptions?expnd=1');
is($r->{status}, 400, 'unknown parameter: 400');
is($r->{json}{error}{code}, 'parameter_unknown', 'parameter_unknown');
$r = $fake->api('GET', '/v1/invoices');
is($r->{status}, 404, 'unknown URL: 404');
like($r->{json}{error}{message}, qr/^Unrecognized request URL \(GET: \/v1\/invoices\)/, 'Unrecognized request URL');
is($fake->api('POST', '/v1/subscriptions')->{status}, 404, 'POST is not modelled: 404');

# Pagination over 250 subscriptions, one second apart, in shuffled order.
$fake->reset;
$fake->clock($t0);
my @order = List::Util::shuffle(0 .. 249);
$fake->subscriptions(map { { id => sprintf('sub_p%03d', $_), customer => 'cus_P',
	status => ($_ % 5 == 0 ? 'canceled' : 'active'), created => $t0 - 1000 + $_ } } @order);
my ($all, $pages) = $fake->list_all('/v1/subscriptions?status=all&limit=100');
is($pages, 3, '250 at limit 100: 3 pages');
is(scalar @$all, 250, 'all 250 seen');
my %uniq = map { $_->{id} => 1 } @$all;
is(scalar keys %uniq, 250, 'no duplicates');
is_deeply([map { $_->{id} } @$all], [map { sprintf 'sub_p%03d', 249 - $_ } 0 .. 249],
	'newest first by created');
$r = $fake->api('GET', '/v1/subscriptions?status=all&limit=100');
ok($r->{json}{has_more}, 'page 1: has_more');
$r = $fake->api('GET', '/v1/subscriptions?status=all&limit=100&starting_after=sub_p150');
is($r->{json}{data}[0]{id}, 'sub_p149', 'page 2 starts right after the cursor');
ok($r->{json}{has_more}, 'page 2: has_more');
$r = $fake->api('GET', '/v1/subscriptions?status=all&limit=100&starting_after=sub_p050');
is(scalar @{ $r->{json}{data} }, 50, 'last page: the rest');
ok(!$r->{json}{has_more}, 'last page: has_more false');
($all, $pages) = $fake->list_all('/v1/subscriptions?limit=100');
is(scalar @$all, 200, 'default status: 200 of 250 (50 canceled)');
is($pages, 2, 'default status: 2 pages');
is(scalar @{ $fake->api('GET', '/v1/subscriptions?status=all')->{json}{data} }, 10, 'default limit 10');
$r = $fake->api('GET', '/v1/subscriptions?status=all&limit=101');
is($r->{status}, 400, 'limit 101: 400');
is($r->{json}{error}{param}, 'limit', 'limit 101: param limit');
is($fake->api('GET', '/v1/subscriptions?limit=0')->{status}, 400, 'limit 0: 400');
is($fake->api('GET', '/v1/subscriptions?limit=x')->{json}{error}{code}, 'parameter_invalid_integer', 'limit x: invalid integer');
$r = $fake->api('GET', '/v1/subscriptions?status=all&limit=3&ending_before=sub_p100');
is_deeply($ids->($r), [qw(sub_p103 sub_p102 sub_p101)], 'ending_before: the page just newer, newest first');
ok($r->{json}{has_more}, 'ending_before: has_more');
is($fake->api('GET', '/v1/subscriptions?starting_after=sub_p001&ending_before=sub_p002')->{status}, 400,
	'starting_after and ending_before together: 400');
$fake->control('DELETE', 'subscriptions/sub_p249');
is($fake->api('GET', '/v1/subscriptions/sub_p249')->{status}, 404, 'control DELETE: the subscription vanished');
is($fake->api('GET', '/v1/subscriptions?status=all&limit=1')->{json}{data}[0]{id}, 'sub_p248', 'and is gone from the list');
$r = $fake->api('GET', '/v1/subscriptions?status=all&starting_after=sub_gone');
is($r->{status}, 400, 'unknown cursor: 400');
is($r->{json}{error}{code}, 'resource_missing', 'unknown cursor: resource_missing');
is($r->{json}{error}{param}, 'starting_after', 'unknown cursor: param');
$r = $fake->api('GET', '/v1/subscriptions?limit=2&starting_after=sub_p245');
is_deeply($ids->($r), [qw(sub_p244 sub_p243)], 'a canceled cursor still positions a default-status page');
is(scalar @{ $fake->api('GET', '/v1/subscriptions?status=all&limit=100&created[gte]=' . ($t0 - 1000 + 239))->{json}{data} },
	10, 'subscriptions by created[gte]');

# Events: types[], type with *, created ranges, order, the 30-day window.
$fake->reset;
$fake->clock($t0);
my @evs;
for my $i (0 .. 39)
{
	my $type = (qw(customer.subscription.created customer.subscription.updated
		customer.subscription.deleted invoice.paid))[$i % 4];
	push @evs, $fake->event(type => $type, created => $t0 - 40 * 86400 + $i * 86400);
}
$r = $fake->api('GET', '/v1/events?limit=100');
is(scalar @{ $r->{json}{data} }, 30, 'only the last 30 days (30 of 40 daily events)');
is($r->{json}{data}[0]{created}, $t0 - 86400, 'newest first');
is($r->{json}{url}, '/v1/events', 'events list url');
is($fake->api('GET', "/v1/events/$evs[0]{id}")->{status}, 404, 'an event older than 30 days: 404');
is($fake->api('GET', "/v1/events/$evs[39]{id}")->{status}, 200, 'a recent event: 200');
$r = $fake->api('GET', '/v1/events?limit=100&types[]=customer.subscription.deleted&types[]=invoice.paid');
my @types = map { $_->{type} } @{ $r->{json}{data} };
is(scalar(grep { $_ ne 'customer.subscription.deleted' && $_ ne 'invoice.paid' } @types), 0, 'types[]: only those');
is(scalar @types, 16, 'types[]: 16 of them in 30 days');
$r = $fake->api('GET', '/v1/events?limit=100&types%5B0%5D=invoice.paid&types%5B1%5D=customer.subscription.updated');
is(scalar @{ $r->{json}{data} }, 15, 'types[0], types[1] too');
$r = $fake->api('GET', '/v1/events?limit=100&type=customer.subscription.*');
is(scalar @{ $r->{json}{data} }, 22, 'type with a wildcard');
$r = $fake->api('GET', '/v1/events?limit=100&type=invoice.paid');
is(scalar @{ $r->{json}{data} }, 8, 'type');
$r = $fake->api('GET', '/v1/events?type=invoice.paid&types[]=invoice.paid');
is($r->{status}, 400, 'type and types[] together: 400');
my $since = $t0 - 5 * 86400;
$r = $fake->api('GET', "/v1/events?limit=100&created[gte]=$since");
is_deeply([map { $_->{created} } @{ $r->{json}{data} }], [map { $t0 - $_ * 86400 } 1 .. 5],
	'created[gte]: inclusive, newest first');
is(scalar @{ $fake->api('GET', "/v1/events?limit=100&created[gt]=$since")->{json}{data} }, 4, 'created[gt]');
is(scalar @{ $fake->api('GET', "/v1/events?limit=100&created[lt]=$since")->{json}{data} }, 25, 'created[lt] (within 30 days)');
is(scalar @{ $fake->api('GET', "/v1/events?limit=100&created[lte]=$since")->{json}{data} }, 26, 'created[lte]');
is(scalar @{ $fake->api('GET', "/v1/events?limit=100&created=$since")->{json}{data} }, 1, 'created=');
is($fake->api('GET', '/v1/events?created[gte]=soon')->{json}{error}{code}, 'parameter_invalid_integer', 'created[gte] not an integer');
$r = $fake->api('GET', "/v1/events?limit=2&types[]=invoice.paid&created[gte]=" . ($t0 - 20 * 86400));
ok($r->{json}{has_more}, 'events: has_more');
my ($evall, $evpages) = $fake->list_all("/v1/events?limit=2&types[]=invoice.paid&created[gte]=" . ($t0 - 20 * 86400));
is(scalar @$evall, 5, 'events: starting_after pages through (5 invoice.paid in 20 days)');
is($evpages, 3, 'events: 3 pages of 2');
$fake->advance(5 * 86400);
is(scalar @{ $fake->api('GET', '/v1/events?limit=100')->{json}{data} }, 25, 'the window moves with the clock');

# Faults.
$fake->reset;
$fake->subscription(customer => 'cus_F', status => 'active');
$fake->fault({ kind => 'rate_limit', count => 2, retry_after => 7 });
$r = $fake->api('GET', '/v1/subscriptions');
is($r->{status}, 429, 'rate_limit: 429');
is($r->{json}{error}{type}, 'rate_limit_error', 'rate_limit: rate_limit_error');
is($r->{headers}{'retry-after'}, 7, 'rate_limit: Retry-After');
like($r->{headers}{'request-id'}, qr/^req_/, 'Request-Id on a fault');
is($fake->api('GET', '/v1/subscriptions')->{status}, 429, 'rate_limit: second');
is($fake->api('GET', '/v1/subscriptions')->{status}, 200, 'rate_limit over after count');
$fake->fault({ kind => 'rate_limit', count => 1, retry_after => undef });
$r = $fake->api('GET', '/v1/subscriptions');
ok($r->{status} == 429 && !exists $r->{headers}{'retry-after'}, 'rate_limit without Retry-After');

$fake->fault({ kind => 'server_error', count => 1 }, { kind => 'unavailable', count => 1 });
$r = $fake->api('GET', '/v1/subscriptions');
is($r->{status}, 500, 'server_error: 500');
is($r->{json}{error}{type}, 'api_error', 'server_error: api_error');
is($fake->api('GET', '/v1/subscriptions')->{status}, 503, 'unavailable: 503');
is($fake->api('GET', '/v1/subscriptions')->{status}, 200, '5xx over after count');

$fake->fault({ kind => 'server_error', path => '^/v1/events' });
is($fake->api('GET', '/v1/events')->{status}, 500, 'fault by path');
is($fake->api('GET', '/v1/subscriptions')->{status}, 200, 'other paths unaffected');
$fake->clear_faults;
$fake->fault({ kind => 'server_error', query => 'starting_after=', count => 1 });
is($fake->api('GET', '/v1/subscriptions')->{status}, 200, 'fault by query: first page unaffected');
my $sid = $fake->state->{subscriptions}[0]{id};
is($fake->api('GET', "/v1/subscriptions?starting_after=$sid")->{status}, 500, 'fault by query: the next page fails');
$fake->fault({ kind => 'server_error', method => 'POST', count => 1 });
is($fake->api('GET', '/v1/subscriptions')->{status}, 200, 'fault by method: GET unaffected');
$fake->clear_faults;

$fake->fault({ kind => 'error', status => 402, type => 'card_error', code => 'card_declined',
	message => 'Your card was declined.', param => 'card', should_retry => 0, count => 1 });
$r = $fake->api('GET', '/v1/subscriptions');
is($r->{status}, 402, 'override: status');
is_deeply([@{ $r->{json}{error} }{qw(type code message param)}],
	['card_error', 'card_declined', 'Your card was declined.', 'card'], 'override: type, code, message, param');
is($r->{headers}{'stripe-should-retry'}, 'false', 'Stripe-Should-Retry');
$fake->fault({ kind => 'lock_timeout', count => 1 }, { kind => 'permission_error', count => 1 });
$r = $fake->api('GET', '/v1/subscriptions');
is($r->{status} . ' ' . $r->{json}{error}{code}, '429 lock_timeout', 'lock_timeout: 429');
$r = $fake->api('GET', '/v1/subscriptions');
is($r->{status}, 403, 'permission_error: 403');
$fake->fault({ kind => 'weird_thing', count => 1 });
$r = $fake->api('GET', '/v1/subscriptions');
is($r->{status} . ' ' . $r->{json}{error}{type} . ' ' . $r->{json}{error}{code}, '500 api_error weird_thing',
	'any other kind: 500 api_error with that code');

$fake->fault({ kind => 'malformed', count => 1 });
$r = $fake->api('GET', '/v1/subscriptions');
is($r->{status}, 200, 'malformed: 200');
ok(!defined $r->{json}, 'malformed: body does not parse');
$fake->fault({ kind => 'malformed', status => 502, count => 1 });
is($fake->api('GET', '/v1/subscriptions')->{status}, 502, 'malformed with a status');

$fake->fault({ kind => 'reset', count => 1 });
$r = $fake->api('GET', '/v1/subscriptions');
is($r->{status}, 599, 'reset: connection closed without response');

$fake->fault({ kind => 'slow', seconds => 3, count => 1 });
my $quick = HTTP::Tiny->new(timeout => 1);
$r = $quick->get($fake->url . '/v1/subscriptions', { headers => { authorization => "Bearer $token" } });
is($r->{status}, 599, 'slow: client times out');
$fake->fault({ kind => 'slow', seconds => 0.2, count => 1 });
is($fake->api('GET', '/v1/subscriptions')->{status}, 200, 'slow: then answers');

# A real per-second rate limit (config), and config switches.
$fake->config(rate_limit => 3);
my @st = map { $fake->api('GET', '/v1/subscriptions')->{status} } 1 .. 4;
is_deeply(\@st, [200, 200, 200, 429], 'rate_limit 3/s: the fourth in a second gets 429');
$fake->config(rate_limit => 0, period_on_subscription => JSON::PP::false, livemode => JSON::PP::true);
my $basil = $fake->subscription(customer => 'cus_F', status => 'trialing');
ok(!exists $basil->{current_period_end} && $basil->{items}{data}[0]{current_period_end},
	'period_on_subscription off: the period only on the items');
ok($basil->{livemode}, 'livemode on');
like($fake->api('GET', '/v1/subscriptions/nope')->{json}{error}{request_log_url},
	qr{dashboard\.stripe\.com/logs/req_}, 'live request_log_url');

# State: calls without the key, counters.
my $state = $fake->state(subscriptions => 0, events => 0, customers => 0);
ok(scalar @{ $state->{calls} } > 0, 'calls logged');
ok(!grep({ exists $_->{headers}{authorization} } @{ $state->{calls} }), 'no Authorization in calls');
my ($q) = grep { $_->{query} =~ /starting_after/ } @{ $state->{calls} };
is($q->{path}, '/v1/subscriptions', 'call path without the query');
is($q->{status}, 500, 'call status');
is($q->{fault}, 'server_error', 'call fault');
like($q->{request_id}, qr/^req_/, 'call request_id');
ok($q->{at} > 0, 'call at');
cmp_ok($state->{counters}{by_endpoint}{'GET /v1/subscriptions'}, '>=', 20, 'counters by endpoint');
ok($state->{counters}{by_endpoint}{'GET /v1/subscriptions/{id}'}, 'ids folded in counters');
is($state->{counters}{faults}{reset}, 1, 'fault counters');
ok(!exists $state->{subscriptions}, 'state leaves out what was asked');
my $full = $fake->state;
is(scalar @{ $full->{subscriptions} }, 2, 'state: subscriptions');
ok(scalar @{ $full->{events} } >= 2 && scalar @{ $full->{customers} } == 1, 'state: events, customers');
$fake->reset;
$state = $fake->state;
ok(!@{ $state->{subscriptions} } && !@{ $state->{events} } && !@{ $state->{calls} } && !@{ $state->{faults} },
	'reset empties everything');
ok(!$state->{frozen} && abs($state->{now} - time) < 5, 'reset: the real clock again');
my $bad = HTTP::Tiny->new->request('POST', $fake->url . '/__fake/subscriptions', { content => '{"status":"active"}' });
is($bad->{status}, 400, 'control: a new subscription needs a customer');
$bad = HTTP::Tiny->new->request('POST', $fake->url . '/__fake/subscriptions',
	{ content => '{"customer":"cus_x","status":"done"}' });
is($bad->{status}, 400, 'control: an unknown status is refused');

# SIGTERM stops it; the key and query strings never reached the log.
is($fake->stop, 0, 'SIGTERM: exits 0');
my $log = $fake->log_text;
like($log, qr{GET /v1/subscriptions -> 200}, 'one log line per request');
like($log, qr{GET /v1/subscriptions -> 500 \(fault server_error\)}, 'log names the fault');
unlike($log, qr/\Q$token\E/, 'key not in the log');
unlike($log, qr/starting_after|customer=/, 'no query strings in the log');

# It exits when the process that started it dies.
my $dir = File::Temp::tempdir(CLEANUP => 1);
my $script = "$FindBin::Bin/../fake/stripe.py";
IPC::Run::run(['sh', '-c', "python3 '$script' --port 0 --port-file '$dir/port' --token x 2>/dev/null & echo \$! > '$dir/pid'; "
	. "i=0; while [ ! -s '$dir/port' ] && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i+1)); done"]);
open my $pf, '<', "$dir/pid" or die "pid file: $!";
chomp(my $orphan = <$pf>);
close $pf;
ok(-s "$dir/port", 'orphan-to-be started');
my $gone = 0;
for (1 .. 100)
{
	# gone, or a zombie nobody reaps (its parent is gone)
	my $stat = -e "/proc/$orphan/stat" ? do { local (@ARGV, $/) = ("/proc/$orphan/stat"); <> } : '';
	if (!kill(0, $orphan) || $stat =~ /^\d+ \(.*\) Z/) { $gone = 1; last }
	Time::HiRes::sleep(0.1);
}
ok($gone, 'it exits when its parent is gone');
kill 'TERM', $orphan unless $gone;

done_testing();
