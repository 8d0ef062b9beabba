# Webhooks across crashes, and their log hygiene.
#
# Crash: an accepted delivery whose transaction committed survives an
# immediate shutdown and is applied after restart; one whose transaction was
# still open is gone, so Stripe's retry is 'accepted' and processed (the dedup
# record and the event commit together).
#
# Log: with PostgreSQL's default statement logging, nothing pgext does with a
# webhook (accepted, forged, stale, malformed, unknown source, missing secret,
# failed application) writes the signing secret, a signature or the payload
# to the server log.  Signatures are computed here with Digest::SHA,
# independently of pgext (PgextTest::stripe_signature).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use PgextTest;

my $secret = 'whsec_TAPCANARY_7c1d2e3f4a5b6c7d';
my $t = 1767225600;

my $node = PgextTest::node('webhooks');
$node->safe_psql('postgres', qq{
	SELECT pgext.secret_set('webhook:stripe', '$secret');
	SELECT pgext.stripe_price_set('price_tap', 'credit_pack', 10);
	SELECT pgext.account_create('tap-acct');
});

# A signed delivery: (payload, header).
sub delivery
{
	my ($id, $type, $obj) = @_;
	my $body = PgextTest::stripe_event($id, $type, $t, $obj);
	return ($body, PgextTest::stripe_signature($secret, $t, $body));
}

# webhook_ingest's status for a delivery (received when it was signed).
sub ingest
{
	my ($body, $sig, $psql) = @_;
	my $sql = "SELECT status FROM pgext.webhook_ingest('stripe', \$b\$$body\$b\$, '$sig', to_timestamp($t))";
	return $psql ? $psql->query_safe($sql) : $node->safe_psql('postgres', $sql);
}

my $checkout = '{"id":"cs_tap","object":"checkout.session","mode":"payment","payment_status":"paid",'
  . '"client_reference_id":"tap-acct","customer":"cus_tap","metadata":{"price_id":"price_tap"}}';
my ($b1, $s1) = delivery('evt_tap_committed', 'checkout.session.completed', $checkout);
my ($b2, $s2) = delivery('evt_tap_open', 'customer.created', '{"id":"cus_tap2","object":"customer"}');

is(ingest($b1, $s1), 'accepted', 'first delivery accepted');

# A second session accepts another delivery but has not committed when the server dies.
my $open = $node->background_psql('postgres');
$open->query_safe('BEGIN');
is(ingest($b2, $s2, $open), 'accepted', 'delivery accepted inside an open transaction');

$node->stop('immediate');
$open->quit;
$node->start;

is($node->safe_psql('postgres',
	"SELECT string_agg(event_id || ':' || status, ',') FROM pgext.webhook_events"),
	'evt_tap_committed:pending', 'after the crash: the committed event is pending, the open one is gone');
is(ingest($b2, $s2), 'accepted', "Stripe's retry of the lost delivery is accepted");
is(ingest($b1, $s1), 'duplicate', 'the committed one stays a duplicate');
is($node->safe_psql('postgres', q{SELECT applied || '/' || ignored FROM pgext.webhook_apply()}), '1/1',
	'both processed: the checkout applied, the customer.created ignored');
is($node->safe_psql('postgres',
	"SELECT pgext.credit_balance(id) FROM pgext.accounts WHERE external_id = 'tap-acct'"),
	'10', 'the checkout granted its credits once');

# Log hygiene: every outcome, then grep.
my $log_start = -s $node->logfile;
my ($b3, $s3) = delivery('evt_tap_log', 'invoice.paid', '{"id":"in_tap","object":"invoice","customer":"cus_nobody"}');
is(ingest($b3, $s3), 'accepted', 'accepted');
(my $forged = $b3) =~ s/cus_nobody/cus_forged/;
is(ingest($forged, $s3), 'bad_signature', 'forged');
is($node->safe_psql('postgres',
	"SELECT status FROM pgext.webhook_ingest('stripe', \$b\$$b3\$b\$, '$s3', to_timestamp($t + 1000))"),
	'stale', 'stale');
is(ingest('not json', PgextTest::stripe_signature($secret, $t, 'not json')), 'malformed', 'malformed');
is($node->safe_psql('postgres', 'SELECT failed FROM pgext.webhook_apply()'), '1',
	'an application failure is recorded, not raised');
my ($ret, $out, $err) = $node->psql('postgres',
	"SELECT pgext.webhook_ingest('nope', \$b\$$b3\$b\$, '$s3')");
like($err, qr/unknown webhook source "nope"/, 'unknown source is an error');
$node->safe_psql('postgres', q{SELECT pgext.secret_delete('webhook:stripe')});
($ret, $out, $err) = $node->psql('postgres',
	"SELECT pgext.webhook_ingest('stripe', \$b\$$b3\$b\$, '$s3')");
like($err, qr/webhook signing secret "webhook:stripe" is not set/, 'missing secret is an error');

my $log = substr(slurp_file($node->logfile), $log_start);
like($log, qr/unknown webhook source/, 'the errors did reach the log (the grep below is meaningful)');
unlike($log, qr/TAPCANARY/, 'no signing secret in the log');
my $sig3 = substr($s3, index($s3, 'v1=') + 3, 16);
unlike($log, qr/$sig3/, 'no signature in the log');
unlike($log, qr/cus_nobody|in_tap/, 'no payload in the log');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pgext.webhook_rejections r WHERE r::text ~ '$sig3|TAPCANARY|cus_'"),
	'0', 'rejections hold no signature, secret or payload');

$node->stop;
done_testing();
