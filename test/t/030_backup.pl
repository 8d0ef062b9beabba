# Backups: pg_dump and restore keep everything pgext holds.
#
# State is built through the public functions (accounts, grants with and
# without expiry, deductions, reservations held/committed/released,
# allocations, tenant and platform secrets, Stripe and generic webhook events
# in every status, prices, subscriptions, purchases, outbox rows), dumped in
# plain and custom format, and restored into a fresh database of the same
# cluster (where the pgext roles already exist and have members) and into a
# fresh cluster started with the same master key command.  Each restored copy
# holds the same rows and sequence positions, passes credit_audit() and
# credit_verify(), decrypts the same secrets, answers a redelivered webhook
# with 'duplicate', and takes new calls of every kind without id collisions.
# A restore into a cluster whose key command lacks the keys keeps credits and
# webhook dedup working; only secret reads fail, with the clear PX004 error
# naming the missing key version.
#
# What could get in the way of a restore, and is covered by "the same rows":
# data loaded with COPY into tables with foreign keys between them (pg_dump
# orders configuration tables by their keys), under the ledger's append-only
# triggers (COPY only inserts), into GENERATED ALWAYS identity columns (COPY
# writes them), and through the outbox's AFTER INSERT NOTIFY trigger (it
# fires per restored row; nobody listens on a new database).  Removing the
# pg_extension_config_dump line of an identity sequence makes this test fail.
use strict;
use warnings;
use Digest::SHA qw(hmac_sha256_hex);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use PgextTest;

my $whsec = 'whsec_BACKUPCANARY_0123456789abcdef';
my $n8n_key = 'n8n-BACKUPCANARY-signing-key';
my $tmp = PostgreSQL::Test::Utils::tempdir;
my $T0 = time() - 86400;    # created times of the Stripe events
my $P1 = $T0 - 86400;       # the billing period [P1, P2)
my $P2 = $P1 + 30 * 86400;

# ---- webhook deliveries ------------------------------------------------------

# Stripe events by id: [type, created, object json]; signed at delivery time.
my %stripe_events;

# A Stripe delivery of a known event, signed now (as Stripe signs each retry).
sub stripe_delivery
{
	my ($id) = @_;
	my ($type, $created, $obj) = @{ $stripe_events{$id} };
	my $body = PgextTest::stripe_event($id, $type, $created, $obj);
	return ($body, PgextTest::stripe_signature($whsec, time(), $body));
}

# SQL delivering a Stripe event (registered on first use).
sub stripe_sql
{
	my ($id, $type, $created, $obj) = @_;
	$stripe_events{$id} = [ $type, $created, $obj ] if defined $type;
	my ($body, $sig) = stripe_delivery($id);
	return "SELECT status FROM pgext.webhook_ingest('stripe', \$b\$$body\$b\$, '$sig')";
}

# SQL delivering a generic (n8n, plain hex HMAC) event.
sub n8n_sql
{
	my ($id) = @_;
	my $body = qq({"id":"$id","type":"workflow.finished","result":{"ok":true}});
	return "SELECT status FROM pgext.webhook_ingest('n8n', \$b\$$body\$b\$, '"
	  . hmac_sha256_hex($body, $n8n_key) . "')";
}

sub sub_obj
{
	my ($sub, $cus, $status, $cape) = @_;
	return qq({"id":"$sub","object":"subscription","customer":"$cus","status":"$status",)
	  . qq("cancel_at_period_end":$cape,"items":{"object":"list","data":[{"id":"si_$sub","object":"subscription_item",)
	  . qq("price":{"id":"price_pro","object":"price"},"quantity":1,"current_period_start":$P1,"current_period_end":$P2}]}});
}

sub invoice_obj
{
	my ($inv, $cus, $sub) = @_;
	return qq({"id":"$inv","object":"invoice","customer":"$cus","billing_reason":"subscription_cycle",)
	  . qq("parent":{"type":"subscription_details","subscription_details":{"subscription":"$sub"}},)
	  . qq("lines":{"object":"list","data":[{"id":"il_$inv","object":"line_item","period":{"start":$P1,"end":$P2},)
	  . qq("quantity":1,"pricing":{"type":"price_details","price_details":{"price":"price_pro","product":"prod_x"}},)
	  . qq("parent":{"type":"subscription_item_details","subscription_item_details":{"subscription":"$sub","proration":false}}}]}});
}

sub checkout_obj
{
	my ($cs, $acct, $cus, $price, $mode, $sub) = @_;
	my $extra = $sub ? qq(,"subscription":"$sub") : qq(,"metadata":{"price_id":"$price"});
	return qq({"id":"$cs","object":"checkout.session","mode":"$mode","payment_status":"paid",)
	  . qq("client_reference_id":"$acct","customer":"$cus"$extra});
}

# ---- the source --------------------------------------------------------------

my $db = 'shop';
my $src = PgextTest::node('backup_src', database => $db);
$src->safe_psql($db, qq{
	CREATE ROLE backup_app LOGIN;
	GRANT pgext_app TO backup_app;
	SELECT pgext.secret_set('webhook:stripe', '$whsec');
	SELECT pgext.secret_set('webhook:n8n', '$n8n_key');
	SELECT pgext.secret_set('hetzner:api_token', 'hz-BACKUPCANARY-platform-token');
	SELECT pgext.webhook_source_set('n8n', 'webhook:n8n');
	SELECT pgext.stripe_price_set('price_pro', 'subscription', 1000, 500);
	SELECT pgext.stripe_price_set('price_life', 'lifetime', 5000);
	SELECT pgext.stripe_price_set('price_pack', 'credit_pack', 250);
});

# Credits: 30 accounts with grants (with and without expiry), deductions,
# allocations and reservations in every state, plus an unlimited account.
$src->safe_psql($db, q{
	SELECT count(pgext.account_create('user-' || pg_catalog.lpad(i::text, 2, '0')))
	  FROM generate_series(1, 30) i;
	SELECT pgext.account_create('unlimited-1', 'unlimited');
	CREATE TEMP TABLE u AS SELECT id, external_id FROM pgext.accounts WHERE external_id LIKE 'user-%';
	SELECT count(pgext.credit_grant(id, 1000, 'welcome')) FROM u;
	SELECT count(pgext.credit_grant(id, 300, 'promo', 'promo', now() + interval '30 days')) FROM u;
	SELECT count(pgext.credit_allocate(id, 500, 'period-1', 200, now() + interval '60 days')) FROM u;
	SELECT count(pgext.credit_deduct(id, 150, 'usage-1', 'tokens')) FROM u;
	SELECT count(pgext.credit_deduct(id, 7)) FROM u;
	SELECT count(pgext.credit_commit((pgext.credit_reserve(id, 50, 'r-commit')).id, 30)) FROM u;
	SELECT count(pgext.credit_release((pgext.credit_reserve(id, 40, 'r-release')).id)) FROM u;
	SELECT count(pgext.credit_reserve(id, 20, 'r-held-a', '1 day')) FROM u;
	SELECT count(pgext.credit_reserve(id, 25, 'r-held-b', '1 day')) FROM u;
	SELECT pgext.credit_deduct(a, 99, 'unl-1') FROM pgext.account_create('unlimited-1', 'unlimited') a;
	SELECT count(pgext.secret_set('openai:api_key', 'sk-BACKUPCANARY-' || external_id, id)) FROM u
	 WHERE external_id <= 'user-05';
	SELECT pgext.secret_set('smtp:password', 'smtp-BACKUPCANARY-expiring', id, now() + interval '7 days')
	  FROM u WHERE external_id = 'user-01';
	SELECT count(pgext.account_create(x)) FROM (VALUES ('acme'), ('lifer'), ('packer')) v(x);
});

# Stripe: applied, superseded, ignored, dead and pending events; a
# subscription, a lifetime and a credit pack purchase, an outbox row.
my @applied = (
	stripe_sql('evt_b01', 'checkout.session.completed', $T0,
		checkout_obj('cs_b1', 'acme', 'cus_acme', 'price_pro', 'subscription', 'sub_acme')),
	stripe_sql('evt_b02', 'customer.subscription.created', $T0 + 1, sub_obj('sub_acme', 'cus_acme', 'active', 'false')),
	stripe_sql('evt_b03', 'invoice.paid', $T0 + 2, invoice_obj('in_b1', 'cus_acme', 'sub_acme')),
	stripe_sql('evt_b04', 'checkout.session.completed', $T0 + 3,
		checkout_obj('cs_b2', 'lifer', 'cus_lifer', 'price_life', 'payment')),
	stripe_sql('evt_b05', 'checkout.session.completed', $T0 + 4,
		checkout_obj('cs_b3', 'packer', 'cus_packer', 'price_pack', 'payment')),
	stripe_sql('evt_b06', 'customer.created', $T0 + 5, '{"id":"cus_other","object":"customer"}'),
	stripe_sql('evt_b08', 'customer.subscription.updated', $T0 + 20, sub_obj('sub_acme', 'cus_acme', 'active', 'true')),
	stripe_sql('evt_b09', 'invoice.payment_failed', $T0 + 30, invoice_obj('in_b2', 'cus_acme', 'sub_acme')));
is($src->safe_psql($db, join(";\n", @applied)), join("\n", ('accepted') x @applied), 'Stripe deliveries accepted');
$src->safe_psql($db, 'SELECT * FROM pgext.webhook_apply()');
# an older update arriving after a newer one is superseded
is($src->safe_psql($db, stripe_sql('evt_b07', 'customer.subscription.updated', $T0 + 10,
	sub_obj('sub_acme', 'cus_acme', 'past_due', 'false'))), 'accepted', 'older update accepted');
# an invoice for a customer no account is linked to: dead after one attempt
is($src->safe_psql($db, stripe_sql('evt_b10', 'invoice.paid', $T0 + 40, invoice_obj('in_b3', 'cus_ghost', 'sub_ghost'))),
	'accepted', 'unlinked invoice accepted');
$src->safe_psql($db, 'SET pgext.webhook_max_attempts = 1; SELECT * FROM pgext.webhook_apply()');
# left pending: applied only after the restore
is($src->safe_psql($db, stripe_sql('evt_b11', 'checkout.session.completed', $T0 + 50,
	checkout_obj('cs_b4', 'packer', 'cus_packer', 'price_pack', 'payment'))), 'accepted', 'pending checkout accepted');
# a forged delivery is rejected
my ($forged_body) = stripe_delivery('evt_b11');
is($src->safe_psql($db, "SELECT status FROM pgext.webhook_ingest('stripe', \$b\$$forged_body\$b\$, 't="
	  . time() . ",v1=" . ('0' x 64) . "')"),
	'bad_signature', 'forged delivery rejected');

# Generic source: one event claimed, two received.
is($src->safe_psql($db, join(";\n", map { n8n_sql($_) } qw(run_1 run_2 run_3))), "accepted\naccepted\naccepted",
	'generic deliveries accepted');
is($src->safe_psql($db, q{SELECT event_id FROM pgext.webhook_claim('n8n', 1)}), 'run_1', 'one generic event claimed');

is($src->safe_psql($db, q{
	SELECT string_agg(event_id || ':' || status, ',' ORDER BY event_id) FROM pgext.webhook_events}),
	'evt_b01:applied,evt_b02:applied,evt_b03:applied,evt_b04:applied,evt_b05:applied,evt_b06:ignored,'
	  . 'evt_b07:superseded,evt_b08:applied,evt_b09:applied,evt_b10:dead,evt_b11:pending,'
	  . 'run_1:claimed,run_2:received,run_3:received',
	'source: webhook events in every status');
is($src->safe_psql($db, q{
	SELECT (SELECT count(*) FROM pgext.stripe_subscriptions) || '/' || (SELECT count(*) FROM pgext.stripe_purchases)
	       || '/' || (SELECT count(*) > 0 FROM pgext.outbox) || '/' || (SELECT count(*) FROM pgext.webhook_rejections)
	       || '/' || (SELECT count(*) FROM pgext.credit_reservations WHERE status = 'held')}),
	'1/2/true/1/60', 'source: subscription, purchases, outbox, rejection, held reservations');

# Use counts reach pgext.secret_audit.
$src->safe_psql($db, q{
	SELECT pgext.secret_get('hetzner:api_token') IS NOT NULL;
	SELECT pgext.secret_audit_flush() > 0});

# What a restored copy must hold: every row of every table (digest), the
# sequence positions, balances per account, the secrets' plaintext (digest).
my @tables = qw(accounts credit_lots credit_reservations credit_ledger secrets secret_audit
  webhook_sources webhook_events webhook_rejections stripe_prices stripe_subscriptions
  stripe_purchases stripe_object_versions outbox);
my $rows_sql = join("\nUNION ALL ",
	map { "SELECT '$_', count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM pgext.$_ t" }
	  @tables);
my $seq_sql = q{SELECT string_agg(sequencename || '=' || last_value, ',' ORDER BY sequencename)
	FROM pg_sequences WHERE schemaname = 'pgext'};
my $balances_sql = q{SELECT string_agg(external_id || '=' || balance || '/' || lot_credits || '/'
	|| pgext.credit_balance(id), ',' ORDER BY external_id) FROM pgext.accounts};
my $secrets_sql = q{SELECT count(*) || ':' || md5(string_agg(coalesce(a.external_id, '-') || '/' || s.name
	|| '=' || pgext.secret_get(s.name, s.account_id), '|' ORDER BY a.external_id NULLS FIRST, s.name))
	FROM pgext.secrets s LEFT JOIN pgext.accounts a ON a.id = s.account_id};
my $max_ids_sql = q{SELECT (SELECT max(id) FROM pgext.credit_ledger) || ',' || (SELECT max(id) FROM pgext.credit_lots)
	|| ',' || (SELECT max(id) FROM pgext.credit_reservations) || ',' || (SELECT max(id) FROM pgext.outbox)
	|| ',' || (SELECT max(id) FROM pgext.webhook_rejections) || ',' || (SELECT max(id) FROM pgext.secret_audit)};

my %want = (
	rows => $src->safe_psql($db, $rows_sql),
	seqs => $src->safe_psql($db, $seq_sql),
	balances => $src->safe_psql($db, $balances_sql),
	secrets => $src->safe_psql($db, $secrets_sql));
my ($max_ledger, $max_lot, $max_res, $max_outbox, $max_rej, $max_audit) =
  split(/,/, $src->safe_psql($db, $max_ids_sql));
is(join(',', grep { (split /\|/)[1] == 0 } split(/\n/, $want{rows})), '', 'source: every table holds rows');
is($src->safe_psql($db, 'SELECT count(*) FROM pgext.credit_audit()') . '/'
	  . $src->safe_psql($db, 'SELECT count(*) FROM pgext.credit_verify()'), '0/0', 'source: audit and verify clean');

# ---- dump --------------------------------------------------------------------

my $plain = "$tmp/shop.sql";
my $custom = "$tmp/shop.dump";
$src->command_ok([ 'pg_dump', '-d', $db, '-f', $plain ], 'pg_dump plain format');
$src->command_ok([ 'pg_dump', '-d', $db, '-Fc', '-f', $custom ], 'pg_dump custom format');
my $dump_text = slurp_file($plain);
like($dump_text, qr/COPY pgext\.credit_ledger /, 'the dump holds the ledger data');
like($dump_text, qr/setval\('pgext\.credit_ledger_id_seq'/, 'and the identity sequence positions');
unlike($dump_text, qr/BACKUPCANARY/, 'the dump holds no secret in plaintext (only ciphertext)');
unlike($dump_text, qr/000102030405060708090a0b0c0d0e0f|202122232425262728292a2b2c2d2e2f/,
	'and no master key');

# ---- restore -----------------------------------------------------------------

# Restore a dump into a new database of a node.
sub restore
{
	my ($node, $newdb, $format) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $newdb");
	if ($format eq 'plain')
	{
		$node->command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $newdb, '-f', $plain ],
			"$newdb: plain dump restored with psql");
	}
	else
	{
		$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $newdb, $custom ],
			"$newdb: custom dump restored with pg_restore");
	}
}

# The restored copy holds what the source held and stays consistent.
sub check_same
{
	my ($node, $rdb, $label) = @_;
	is($node->safe_psql($rdb, $rows_sql), $want{rows}, "$label: every table holds the same rows");
	is($node->safe_psql($rdb, $seq_sql), $want{seqs}, "$label: identity sequences continue where they were");
	is($node->safe_psql($rdb, $balances_sql), $want{balances}, "$label: balances equal per account");
	is($node->safe_psql($rdb, 'SELECT count(*) FROM pgext.credit_audit()'), '0', "$label: credit_audit() empty");
	is($node->safe_psql($rdb, 'SELECT count(*) FROM pgext.credit_verify()'), '0', "$label: credit_verify() empty");
}

# Redeliveries of recorded events (one per status) are duplicates.
sub check_dedup
{
	my ($node, $rdb, $label) = @_;
	my @again = map { stripe_sql($_) } qw(evt_b03 evt_b06 evt_b07 evt_b10 evt_b11);
	push @again, map { n8n_sql($_) } qw(run_1 run_2);
	is($node->safe_psql($rdb, join(";\n", @again)), join("\n", ('duplicate') x @again),
		"$label: redelivered webhooks (applied, ignored, superseded, dead, pending, claimed, received) are duplicates");
}

# New calls of every kind work, and their ids follow the restored ones.
sub check_new_calls
{
	my ($node, $rdb, $label) = @_;
	my $u = q{(SELECT id FROM pgext.accounts WHERE external_id = 'user-03')};
	is($node->safe_psql($rdb, qq{
		SELECT (pgext.credit_grant($u, 100, 'after-restore')).id > $max_ledger;
		SELECT (pgext.credit_grant($u, 60, 'after-restore-exp', 'promo', now() + interval '9 days')).status;
		SELECT (SELECT max(id) FROM pgext.credit_lots) > $max_lot;
		SELECT (pgext.credit_deduct($u, 10, 'after-restore-d')).status;
		SELECT (pgext.credit_allocate($u, 500, 'period-2', 200)).status;
		SELECT (pgext.credit_reserve($u, 5, 'after-restore-r')).id > $max_res;
		SELECT pgext.credit_balance(a.id) FROM pgext.accounts a WHERE external_id = 'user-03';
		SELECT (pgext.account_create('after-restore') IS NOT NULL)}),
		"t\ngranted\nt\ndeducted\nallocated\nt\n1913\nt",
		"$label: new grant, expiring grant, deduct, allocate, reserve and account; new ids follow the restored ones");
	is($node->safe_psql($rdb, q{
		SELECT string_agg(DISTINCT (pgext.credit_commit(id)).status, ',')
		  FROM pgext.credit_reservations WHERE idempotency_key = 'r-held-a';
		SELECT string_agg(DISTINCT (pgext.credit_release(id)).status, ',')
		  FROM pgext.credit_reservations WHERE idempotency_key = 'r-held-b'}),
		"committed\nreleased", "$label: restored holds can be committed and released");
	is($node->safe_psql($rdb, q{
		SELECT (SELECT count(*) FROM pgext.credit_audit()) || '/' || (SELECT count(*) FROM pgext.credit_verify())}),
		'0/0', "$label: still consistent after the new calls");
}

# New secrets and webhooks work.
sub check_new_secrets_and_webhooks
{
	my ($node, $rdb, $label) = @_;
	is($node->safe_psql($rdb, q{
		SELECT pgext.secret_set('openai:api_key', 'sk-after-restore-0123456789',
		                        (SELECT id FROM pgext.accounts WHERE external_id = 'user-09')) IS NOT NULL;
		SELECT pgext.secret_get('openai:api_key', (SELECT id FROM pgext.accounts WHERE external_id = 'user-09'))
		       = 'sk-after-restore-0123456789'}),
		"t\nt", "$label: a new secret is stored and read");
	is($node->safe_psql($rdb, join(";\n",
		stripe_sql('evt_b12', 'invoice.payment_failed', $T0 + 60, invoice_obj('in_b4', 'cus_acme', 'sub_acme')),
		n8n_sql('run_4'))), "accepted\naccepted", "$label: new webhooks accepted");
	is($node->safe_psql($rdb, q{
		SELECT applied FROM pgext.webhook_apply();
		SELECT string_agg(event_id || ':' || status, ',' ORDER BY event_id) FROM pgext.webhook_events
		 WHERE event_id IN ('evt_b11', 'evt_b12');
		SELECT pgext.credit_balance(id) FROM pgext.accounts WHERE external_id = 'packer';}
		  . "SELECT max(id) > $max_outbox FROM pgext.outbox"),
		"2\nevt_b11:applied,evt_b12:applied\n500\nt",
		"$label: the restored pending event and the new one are applied; outbox ids follow the restored ones");
	is($node->safe_psql($rdb, "SELECT status FROM pgext.webhook_ingest('n8n', '{}', 'bad');\n"
		  . "SELECT max(id) > $max_rej FROM pgext.webhook_rejections"),
		"bad_signature\nt", "$label: a new rejection is recorded after the restored ones");
	is($node->safe_psql($rdb, "SELECT pgext.secret_audit_flush() > 0;\n"
		  . "SELECT max(id) > $max_audit FROM pgext.secret_audit"),
		"t\nt", "$label: secret audit ids follow the restored ones");
}

# 1. A fresh database of the same cluster: the pgext roles exist already and
#    have members; the app's login role works on the restored copy.
for my $format ('plain', 'custom')
{
	my $rdb = "restored_$format";
	restore($src, $rdb, $format);
	check_same($src, $rdb, "same cluster, $format");
	is($src->safe_psql($rdb, $secrets_sql), $want{secrets}, "same cluster, $format: secrets decrypt to the same values");
	is($src->safe_psql($rdb, q{SELECT pgext.secret_get('openai:api_key',
		(SELECT id FROM pgext.accounts WHERE external_id = 'user-02')) = 'sk-BACKUPCANARY-user-02'}),
		't', "same cluster, $format: a tenant secret reads back");
	check_dedup($src, $rdb, "same cluster, $format");
	check_new_calls($src, $rdb, "same cluster, $format");
	check_new_secrets_and_webhooks($src, $rdb, "same cluster, $format");
	is($src->safe_psql($rdb, q{
		SET ROLE backup_app;
		SELECT (pgext.credit_deduct(id, 1, 'by-app')).status FROM pgext.account_create('user-04') id}),
		'deducted', "same cluster, $format: the app's login role (member of pgext_app) works");
}

# The source itself is untouched by all this.
is($src->safe_psql($db, $rows_sql), $want{rows}, 'the source still holds the same rows');

# 2. A fresh cluster started with the same master key command.
my $other = PgextTest::node('backup_other', extension => 0);
for my $format ('plain', 'custom')
{
	my $rdb = "shop_$format";
	restore($other, $rdb, $format);
	check_same($other, $rdb, "new cluster, $format");
	is($other->safe_psql($rdb, $secrets_sql), $want{secrets}, "new cluster, $format: secrets decrypt to the same values");
	check_dedup($other, $rdb, "new cluster, $format");
	check_new_calls($other, $rdb, "new cluster, $format");
	check_new_secrets_and_webhooks($other, $rdb, "new cluster, $format");
}
$other->stop;

# 3. A cluster whose key command lacks the keys (it prints only version 7).
my $wrong_keys = PgextTest::shell_script("$tmp/other_keys.sh", "echo '7:" . ('5a' x 32) . "'\n");
my $nokeys = PgextTest::node('backup_nokeys', keys => $wrong_keys, extension => 0);
my $rdb = 'shop';
restore($nokeys, $rdb, 'custom');
check_same($nokeys, $rdb, 'without the keys');
my ($ret, $out, $err) = $nokeys->psql($rdb, q{\set VERBOSITY verbose
	SELECT pgext.secret_get('openai:api_key', (SELECT id FROM pgext.accounts WHERE external_id = 'user-02'))});
isnt($ret, 0, 'without the keys: a secret read fails');
like($err, qr/ERROR:  PX004: secret "openai:api_key" of account [0-9a-f-]+ is encrypted with master key version 2, which pgext.master_key_command did not provide/,
	'without the keys: the error names the missing key version (PX004)');
unlike($err, qr/BACKUPCANARY/, 'without the keys: and shows no value');
# Stripe deliveries cannot be verified without the signing secret: a clear
# error (Stripe retries later), never an accepted duplicate.
($ret, $out, $err) = $nokeys->psql($rdb, "\\set VERBOSITY verbose\n" . stripe_sql('evt_b03'));
like($err, qr/ERROR:  PX004: secret "webhook:stripe" of the platform \(account NULL\) is encrypted with master key version 2/,
	'without the keys: webhook verification names the missing key version');
check_new_calls($nokeys, $rdb, 'without the keys');
# Storing the signing secrets again (under key version 7) restores intake; the
# dedup records survived the restore.
$nokeys->safe_psql($rdb, qq{
	SELECT pgext.secret_set('webhook:stripe', '$whsec');
	SELECT pgext.secret_set('webhook:n8n', '$n8n_key')});
check_dedup($nokeys, $rdb, 'without the keys, signing secrets set again');
is($nokeys->safe_psql($rdb, q{SELECT applied FROM pgext.webhook_apply()}), '1',
	'without the keys: the restored pending event is applied');
$nokeys->stop;

my $log = slurp_file($src->logfile) . slurp_file($other->logfile) . slurp_file($nokeys->logfile);
unlike($log, qr/BACKUPCANARY/, 'no secret value in any server log');

$src->stop;
done_testing();
