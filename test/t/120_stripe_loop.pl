# The whole loop on the fakes (test/fake/stripe.py, test/fake/hetzner.py):
# signup -> checkout webhook -> subscription active -> server requested ->
# created on Hetzner (first location full) -> active -> invoice payment fails
# -> grace -> grace expires -> paused (powered off) -> payment succeeds ->
# resumed -> subscription canceled -> deleted after the delay.  Then Stripe
# sync: a customer.subscription.deleted that never arrived is recovered from
# /v1/events and its server deleted; a subscription canceled only at Stripe is
# corrected by reconciliation and its server follows; an event older than a
# reconciliation snapshot does not overwrite it; an unmatched customer is
# recorded; on-demand sync right after checkout; the key never leaks.
# Time-dependent steps use settings (seconds), and every wait polls.
use strict;
use warnings;
use JSON::PP ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use PgextTest;
use FakeHetzner;
use FakeStripe;

my $json = JSON::PP->new->canonical;
my $hz_token = 'hz-loop-' . join('', map { sprintf '%02x', int rand 256 } 1 .. 12);
my $sk = 'sk_test_loop' . join('', map { sprintf '%02x', int rand 256 } 1 .. 12);
my $whsec = 'whsec_loop_' . join('', map { sprintf '%02x', int rand 256 } 1 .. 12);
my $hz = FakeHetzner->start(token => $hz_token, action_polls => 1);
my $st = FakeStripe->start(token => $sk);

my $node = PgextTest::node('loop', worker => 1, conf => join "\n",
	"pgext.hetzner_api_url = '" . $hz->url . "'",
	"pgext.stripe_api_url = '" . $st->url . "'",
	'pgext.allow_insecure_urls = on',
	'pgext.grace_period = 3',
	'pgext.server_delete_after = 3600',
	'pgext.billing_expire_grace_interval = 1',
	'pgext.access_expire_interval = 1',
	'pgext.server_reconcile_interval = 1',
	'pgext.stripe_reconcile_interval = 0',
	'pgext.stripe_events_interval = 0',
	'pgext.hetzner_reconcile_interval = 0');
my $db = 'postgres';
$node->safe_psql($db, qq{
	SELECT pgext.secret_set('webhook:stripe', '$whsec');
	SELECT pgext.secret_set('hetzner:api_token', '$hz_token');
	SELECT pgext.secret_set('stripe:api_key', '$sk');
	SELECT pgext.stripe_price_set('price_pro', 'subscription', 1000, 500);
});

# One value.
sub q1 { return $node->safe_psql($db, $_[0]) }

# Poll until true.
sub until_true
{
	my ($sql, $what) = @_;
	ok($node->poll_query_until($db, $sql), $what) or diag(q1(
		q{SELECT string_agg(format('%s %s %s %s', server, state, next_action, why), E'\n') FROM pgext.server_status}));
}

# Deliver an event object (a Perl hash) as a signed webhook; returns the status.
sub deliver
{
	my ($ev) = @_;
	my $body = $json->encode($ev);
	my $t = time;
	my $sig = PgextTest::stripe_signature($whsec, $t, $body);
	return q1("SELECT status FROM pgext.webhook_ingest('stripe', \$b\$$body\$b\$, '$sig')");
}

# The fake Stripe's event by id.
sub fake_event { return $st->api('GET', "/v1/events/$_[0]")->{json} }

# A raw event added at the fake (so /v1/events has it) and returned.
sub raw_event
{
	my ($type, $obj) = @_;
	my $r = $st->event(type => $type, data => { object => $obj });
	return fake_event($r->{id});
}

# Access kind now.
sub access { return q1("SELECT access FROM pgext.billing_access('$_[0]')") }

until_true(q{SELECT bool_and(refusing IS NULL) FROM pgext.worker_api_status}, 'the worker calls both APIs');

# --- signup, checkout, subscription
my $acct = q1(q{SELECT pgext.account_create('loop-alice')});
my $now = time;
my $checkout = raw_event('checkout.session.completed', { id => 'cs_loop', object => 'checkout.session',
	mode => 'subscription', payment_status => 'paid', client_reference_id => 'loop-alice',
	customer => 'cus_loop', subscription => 'sub_loop' });
is(deliver($checkout), 'accepted', 'the checkout webhook is accepted');
my ($sub, $ev_created) = $st->subscription(id => 'sub_loop', customer => 'cus_loop', status => 'active',
	price => 'price_pro', current_period_end => $now + 30 * 86400);
is(deliver(fake_event($ev_created)), 'accepted', 'customer.subscription.created is accepted');
until_true(qq{SELECT access = 'active' FROM pgext.billing_access('$acct')}, 'the subscription gives access (applied by the woken worker)');

# --- on-demand sync right after checkout (the webhook could be behind)
my $req = q1(qq{SELECT pgext.stripe_sync_account('$acct')});
is(q1(qq{SELECT pgext.stripe_sync_wait($req, '20 seconds')}), 'done', 'an on-demand sync answers within the wait');

# --- a server, first location full (fsn1 then stays cold for cx22 for ~10 minutes)
$hz->fault({ kind => 'resource_unavailable', location => 'fsn1' });
my $srv = q1(qq{SELECT pgext.server_request('$acct', 'loop-1',
	'{"server_type":"cx22","image":"ubuntu-24.04","locations":["fsn1","nbg1"]}')});
until_true(qq{SELECT state = 'active' AND location = 'nbg1' FROM pgext.servers WHERE id = $srv},
	'the server is created in the second location and becomes active');
my $hid = q1(qq{SELECT hetzner_id FROM pgext.servers WHERE id = $srv});
$hz->clear_faults;

# --- payment fails -> grace -> grace expires -> paused (powered off)
is(deliver(raw_event('invoice.payment_failed', { id => 'in_loop_2', object => 'invoice', customer => 'cus_loop',
	subscription => 'sub_loop' })), 'accepted', 'invoice.payment_failed accepted');
my (undef, $ev_pd) = $st->subscription(id => 'sub_loop', status => 'past_due', event => 'customer.subscription.updated');
is(deliver(fake_event($ev_pd)), 'accepted', 'the subscription goes past_due');
until_true(qq{SELECT access IN ('grace', 'none') FROM pgext.billing_access('$acct')}, 'grace after the failed payment');
until_true(qq{SELECT state = 'paused' FROM pgext.servers WHERE id = $srv}, 'grace expired: the server is paused');
ok($hz->api('GET', "/servers/$hid")->{json}{server}{status} =~ /off|stopping/, 'and powered off at Hetzner');

# --- payment succeeds -> resumed
is(deliver(raw_event('invoice.paid', { id => 'in_loop_3', object => 'invoice', customer => 'cus_loop',
	subscription => 'sub_loop', lines => { object => 'list', data => [ { id => 'il_loop', price => { id => 'price_pro' },
	subscription => 'sub_loop', period => { start => $now, end => $now + 30 * 86400 } } ] } })), 'accepted', 'invoice.paid accepted');
my (undef, $ev_ok) = $st->subscription(id => 'sub_loop', status => 'active', event => 'customer.subscription.updated');
is(deliver(fake_event($ev_ok)), 'accepted', 'the subscription is active again');
until_true(qq{SELECT state = 'active' FROM pgext.servers WHERE id = $srv}, 'the server is resumed');
ok($hz->api('GET', "/servers/$hid")->{json}{server}{status} =~ /running|starting/, 'and running at Hetzner');

# --- canceled, but the webhook never arrives: recovered from /v1/events
$node->append_conf('postgresql.conf', 'pgext.server_delete_after = 1');
$node->reload;
my (undef, $ev_del) = $st->subscription(id => 'sub_loop', status => 'canceled');
ok($ev_del, 'the subscription is canceled at Stripe (its webhook is lost)');
is(access($acct), 'active', 'pgext does not know yet');
q1(q{SELECT pgext.worker_run_now('stripe_events')});
until_true(qq{SELECT count(*) = 1 FROM pgext.webhook_events WHERE event_id = '$ev_del'},
	'the missed customer.subscription.deleted is fetched from /v1/events');
until_true(qq{SELECT access = 'none' FROM pgext.billing_access('$acct')}, 'and applied: access ends');
until_true(qq{SELECT state = 'deleted' FROM pgext.servers WHERE id = $srv}, 'its server is deleted after the delay');
my $g = $hz->api('GET', "/servers/$hid");
ok($g->{status} == 404 || $g->{json}{server}{status} eq 'deleting', 'and gone at Hetzner');

# --- canceled only at Stripe, no event at all: reconciliation corrects it and the server follows
my $bob = q1(q{SELECT pgext.account_create('loop-bob')});
q1(qq{SELECT pgext.account_set_stripe_customer('$bob', 'cus_bob')});
my (undef, $ev_b) = $st->subscription(id => 'sub_bob', customer => 'cus_bob', status => 'active',
	price => 'price_pro', current_period_end => $now + 30 * 86400);
is(deliver(fake_event($ev_b)), 'accepted', 'bob subscribes');
until_true(qq{SELECT access = 'active' FROM pgext.billing_access('$bob')}, 'bob has access');
my $bsrv = q1(qq{SELECT pgext.server_request('$bob', 'loop-bob-1',
	'{"server_type":"cx22","image":"ubuntu-24.04","locations":["hel1"]}')});
until_true(qq{SELECT state = 'active' FROM pgext.servers WHERE id = $bsrv}, 'bob\'s server is active');
$st->subscription(id => 'sub_bob', status => 'canceled', event => 0);
# a stranger's subscription: no account has that customer
$st->subscription(id => 'sub_stranger', customer => 'cus_stranger', status => 'active', price => 'price_pro',
	current_period_end => $now + 30 * 86400, event => 0);
# and Stripe answers the first list call with a 429: the run retries after Retry-After
$st->fault({ kind => 'rate_limit', retry_after => 1, path => '^/v1/subscriptions$', count => 1 });
q1(q{SELECT pgext.worker_run_now('stripe_reconcile')});
until_true(qq{SELECT access = 'none' FROM pgext.billing_access('$bob')}, 'reconciliation ends bob\'s access');
until_true(qq{SELECT state IN ('deleting', 'deleted') FROM pgext.servers WHERE id = $bsrv}, 'and his server follows');
until_true(q{SELECT count(*) = 1 FROM pgext.stripe_unmatched WHERE customer_id = 'cus_stranger'},
	'an unmatched customer is recorded for operators');
ok(q1(q{SELECT count(*) = 1 FROM pgext.api_calls WHERE api = 'stripe' AND http_status = 429}),
	'the 429 is recorded and was ridden out');

# --- an event older than the snapshot arrives later: it does not overwrite it
my $old = $json->decode($json->encode(fake_event($ev_b)));
$old->{id} = 'evt_loop_old';
$old->{created} = time - 600;
$old->{type} = 'customer.subscription.updated';
$old->{data}{object}{status} = 'active';
is(deliver($old), 'accepted', 'an old "active" event for bob arrives late');
until_true(q{SELECT status IN ('superseded', 'applied') FROM pgext.webhook_events WHERE event_id = 'evt_loop_old'},
	'it is processed');
is(q1(q{SELECT status FROM pgext.webhook_events WHERE event_id = 'evt_loop_old'}), 'superseded',
	'as superseded by the newer snapshot');
is(access($bob), 'none', 'bob stays without access');

# --- Stripe reads are paced: 20 on-demand syncs at 5 requests per second take
# at least (20 - 5) / 5 = 3 s (a lower bound: a slow machine only adds time)
$node->safe_psql($db, 'ALTER SYSTEM SET pgext.stripe_requests_per_second = 5');
$node->safe_psql($db, 'ALTER SYSTEM SET pgext.stripe_concurrency = 20');
$node->reload;
until_true(q{SELECT current_setting('pgext.stripe_requests_per_second') = '5'}, 'the pace is set');
# (the worker reads it on the reload; a wake-up makes sure it looked)
q1(q{SELECT pgext.worker_wake()});
my $before_sync = q1(q{SELECT coalesce(max(id), 0) FROM pgext.api_calls});
q1(q{BEGIN;
      SELECT pgext.account_set_stripe_customer(pgext.account_create('pace-' || g), 'cus_pace_' || g)
        FROM generate_series(1, 20) g;
      SELECT count(pgext.stripe_sync_account(a.id)) FROM pgext.accounts a WHERE a.external_id LIKE 'pace-%';
      COMMIT});
until_true(qq{SELECT count(*) = 20 FROM pgext.api_calls WHERE id > $before_sync AND api = 'stripe' AND path LIKE '%customer=cus_pace_%'},
	'20 on-demand syncs answered');
my $span = q1(qq{SELECT extract(epoch FROM max(at) - min(at)) FROM pgext.api_calls
	WHERE id > $before_sync AND api = 'stripe' AND path LIKE '%customer=cus_pace_%'});
ok($span >= 2.9, "paced at pgext.stripe_requests_per_second = 5: 20 calls took $span s (at least 3 s)");

# --- the key never leaks
unlike(slurp_file($node->logfile), qr/\Q$sk\E/, 'the Stripe key is not in the server log');
is(q1(qq{SELECT count(*) FROM pgext.api_calls c WHERE c::text LIKE '%$sk%'}), 0, 'nor in api_calls');
ok(q1(q{SELECT count(*) > 0 FROM pgext.api_calls WHERE api = 'stripe' AND request_id LIKE 'req_%'}),
	'Stripe calls are recorded with Stripe\'s request id');

$node->stop;
$st->stop;
$hz->stop;
done_testing();
