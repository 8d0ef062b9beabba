# Failover: a streaming standby's worker calls nothing external while in
# recovery; promoted after its primary died in the middle of a create, it
# finishes that create without making a second server (the name is the
# idempotency key: the claim of the old epoch is taken back and rescued
# through a lookup by name).  Every wait polls.
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

my $token = 'hz-standby-' . join('', map { sprintf '%02x', int rand 256 } 1 .. 16);
my $fake = FakeHetzner->start(token => $token, action_polls => 1);

my $primary = PgextTest::node('primary', worker => 1, conf => join "\n",
	"pgext.hetzner_api_url = '" . $fake->url . "'",
	'pgext.allow_insecure_urls = on',
	'wal_level = replica', 'max_wal_senders = 4', 'hot_standby = on');
$primary->safe_psql('postgres', qq{SELECT pgext.secret_set('hetzner:api_token', '$token')});
ok($primary->poll_query_until('postgres',
	q{SELECT refusing IS NULL FROM pgext.worker_api_status WHERE api = 'hetzner'}), 'the primary calls Hetzner');

$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;
ok($standby->poll_query_until('postgres',
	q{SELECT bool_and(refusing = 'in recovery (a standby acts only after promotion)') FROM pgext.worker_status}),
	'the standby\'s worker refuses to act while in recovery');

# The primary begins a create that the fake answers slowly; it dies meanwhile.
$fake->fault({ kind => 'slow', seconds => 3, method => 'POST', path => '^/v1/servers$', count => 1 });
my $acct = $primary->safe_psql('postgres', q{SELECT pgext.account_create('standby-alice')});
$primary->safe_psql('postgres', qq{SELECT pgext.access_grant('$acct', now() + interval '30 days', 'TAP')});
my $srv = $primary->safe_psql('postgres', qq{SELECT pgext.server_request('$acct', 'failover-1',
	'{"server_type":"cx22","image":"ubuntu-24.04","locations":["fsn1","nbg1"]}')});
ok($primary->poll_query_until('postgres',
	q{SELECT in_flight = 1 FROM pgext.worker_api_status WHERE api = 'hetzner'}), 'the primary\'s create is in flight');
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', qq{SELECT claimed_action FROM pgext.servers WHERE id = $srv}), 'create',
	'the standby has the durable intent: the claimed create');
is($standby->safe_psql('postgres', q{SELECT sent FROM pgext.worker_api_status WHERE api = 'hetzner'}), '0',
	'the standby has called nothing');
my $name = $standby->safe_psql('postgres', qq{SELECT name FROM pgext.servers WHERE id = $srv});
$primary->stop('immediate');

$standby->promote;
ok($standby->poll_query_until('postgres', qq{SELECT state = 'active' FROM pgext.servers WHERE id = $srv}),
	'promoted, the standby finishes the create its old primary began')
  or diag($standby->safe_psql('postgres', q{SELECT * FROM pgext.server_status}));
# the old primary's slow create may still be sleeping at the fake: wait for its answer
for (1 .. 400) { last if grep { ($_->{fault} // '') eq 'slow' } @{ $fake->state(servers => 0, actions => 0)->{calls} }; Time::HiRes::sleep(0.05) }
my $found = $fake->api('GET', "/servers?name=$name")->{json}{servers};
is(scalar @$found, 1, 'exactly one server by that name at Hetzner: no duplicate');
is($standby->safe_psql('postgres', qq{SELECT hetzner_id FROM pgext.servers WHERE id = $srv}), $found->[0]{id},
	'the row holds that server');
ok($standby->safe_psql('postgres', qq{SELECT count(*) > 0 FROM pgext.api_calls WHERE server_id = $srv AND path LIKE '/servers?name=%'}),
	'the new primary looked the name up before anything else');
$standby->stop;
$fake->stop;
done_testing();
