# Shared setup of the health TAP tests (130_health.pl, 132_health_recovery.pl):
# a node whose worker runs (health poller on), the fake Hetzner API giving
# servers loopback addresses (ipv4_prefix 127), the fake agents answering on
# those addresses, an account with access, and helpers to make active servers,
# add checks, poll and read what the fakes saw.
#   use FindBin; use lib $FindBin::Bin; use HealthTest;
#   my $h = HealthTest->new('health', conf => 'pgext.health_recovery_per_minute = 0');
#   my @s = $h->servers(2);             # [{id, ip, hid}, ...], active, agents ok
#   my $c = $h->check($s[0], '/health', every => '200 ms');
#   $h->poll(qq{SELECT state = 'healthy' FROM pgext.health_checks WHERE id = $c}, 'healthy');
package HealthTest;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();
use FakeHetzner;
use FakeAgent;
use PgextTest;

my $spec = '{"server_type":"cx22","image":"ubuntu-24.04","locations":["fsn1"]}';

# Starts the fakes and a node named $name with the worker on and settings for
# quick health tests (checks written every 20 ms, unhealthy checks probed at
# most 1 s apart, health_recover every second, no grace), plus conf => more
# postgresql.conf lines.  Stores the Hetzner token and waits until the worker
# calls the fake.  Returns the handle.
sub new
{
	my ($class, $name, %o) = @_;
	my $token = 'hz-tok-' . join('', map { sprintf '%02x', int rand 256 } 1 .. 16);
	my $self = bless { db => 'postgres' }, $class;
	$self->{hz} = FakeHetzner->start(token => $token, action_polls => 0);
	$self->{hz}->config(ipv4_prefix => '127');
	$self->{fa} = FakeAgent->start(quiet => 1);
	my $conf = join "\n",
	  "pgext.hetzner_api_url = '" . $self->{hz}->url . "'",
	  'pgext.allow_insecure_urls = on',
	  'pgext.server_limit_per_account = 1000',
	  'pgext.stripe_reconcile_interval = 0', 'pgext.stripe_events_interval = 0',
	  'pgext.server_reconcile_interval = 1',
	  'pgext.health_flush_interval = 20ms',
	  'pgext.health_unhealthy_max_interval = 1s',
	  'pgext.health_recover_interval = 1s',
	  'pgext.health_grace = 0',
	  ($o{conf} // ());
	$self->{node} = PgextTest::node($name, worker => 1, conf => $conf);
	$self->sql(qq{SELECT pgext.secret_set('hetzner:api_token', '$token')});
	$self->poll(q{SELECT refusing IS NULL FROM pgext.worker_api_status WHERE api = 'hetzner'},
		'the worker calls the fake Hetzner');
	$self->{acct} = $self->sql(qq{SELECT pgext.account_create('health-$name')});
	$self->sql(qq{SELECT pgext.access_grant('$self->{acct}', now() + interval '30 days', 'TAP')});
	return $self;
}

# The node, the fake Hetzner, the fake agents, the account.
sub node { return $_[0]{node} }
sub hz { return $_[0]{hz} }
sub fa { return $_[0]{fa} }
sub acct { return $_[0]{acct} }

# SQL on the node; the output (psql -At).
sub sql { my ($self, $sql) = @_; return $self->{node}->safe_psql($self->{db}, $sql) }

# Polls until $sql is true, as one test named $what; on failure shows $diag's
# output (SQL) or the checks.  Returns whether it became true.
sub poll
{
	my ($self, $sql, $what, $diag) = @_;
	my $ok = $self->{node}->poll_query_until($self->{db}, $sql);
	ok($ok, $what) or diag($self->sql($diag // q{
		SELECT string_agg(format('check %s server %s %s %s cf=%s cs=%s total=%s fail=%s ign=%s err=%s',
		  id, server_id, kind, state, consecutive_failures, consecutive_successes, checks_total,
		  failures_total, ignored_total, last_error), E'\n' ORDER BY id) FROM pgext.health_checks}));
	return $ok;
}

# Polls (Perl) until $cond returns true; dies after 60 s.
sub wait_for
{
	my ($self, $cond, $what) = @_;
	my $deadline = time + 60;
	until ($cond->())
	{
		die "timed out waiting for $what" if time > $deadline;
		Time::HiRes::sleep(0.05);
	}
	return 1;
}

# Requests $n servers (spec: the default without health, or $spec JSON text)
# and, unless wait => 0, waits until they are active; adds an agent (every
# path ok) at each one's address.  Returns [{id, ip, hid}, ...].
sub servers
{
	my ($self, $n, %o) = @_;
	my $sp = $o{spec} // $spec;
	my @ids;
	for (1 .. $n)
	{
		my $name = sprintf 'h%d-%d', ++$self->{seq}, $$;
		push @ids, $self->sql(qq{SELECT pgext.server_request('$self->{acct}', '$name', '$sp')});
	}
	return [ map { { id => $_ } } @ids ] if defined $o{wait} && !$o{wait};
	my $list = join ',', @ids;
	$self->poll(qq{SELECT count(*) = $n FROM pgext.servers WHERE id IN ($list) AND state = 'active'
	                  AND ipv4 IS NOT NULL AND hetzner_id IS NOT NULL},
		"$n server(s) active", q{SELECT string_agg(format('%s %s %s', id, state, last_error), E'\n') FROM pgext.servers});
	my @s;
	for my $id (@ids)
	{
		my ($ip, $hid) = split /\|/, $self->sql(qq{SELECT ipv4, hetzner_id FROM pgext.servers WHERE id = $id});
		push @s, { id => $id, ip => $ip, hid => $hid };
	}
	$self->{fa}->add(map { $_->{ip} } @s);
	return wantarray ? @s : \@s;
}

# The URL of $path at server $s's agent.
sub url { my ($self, $s, $path) = @_; return $self->{fa}->url($s->{ip}, $path // '/health') }

# Adds a check of $path (default /health) at server $s: options kind
# (shallow), every ('200 ms'), timeout ('150 ms'), set (SQL run first in the
# same session, e.g. "SET pgext.health_grace = '4s'").  Returns its id.
sub check
{
	my ($self, $s, $path, %o) = @_;
	my $url = $self->url($s, $path);
	my $kind = $o{kind} // 'shallow';
	my $every = $o{every} // '200 ms';
	my $timeout = $o{timeout} // '150 ms';
	my $set = defined $o{set} ? "$o{set}; " : '';
	return $self->sql(qq{${set}SELECT pgext.health_check_add($s->{id}, '$url', '$kind', '$every', '$timeout')});
}

# A column of a check.
sub col { my ($self, $check, $col) = @_; return $self->sql("SELECT $col FROM pgext.health_checks WHERE id = $check") }

# How often the worker ran health_recover so far.
sub recover_runs
{
	my ($self) = @_;
	return $self->sql(q{SELECT runs FROM pgext.worker_status WHERE task = 'health_recover'});
}

# Waits until the worker ran health_recover $n more times (a turn of the
# recovery loop that could have acted did act, or not).
sub recover_turns
{
	my ($self, $n, $what) = @_;
	my $r = $self->recover_runs + $n;
	return $self->poll(qq{SELECT runs >= $r AND last_ok FROM pgext.worker_status WHERE task = 'health_recover'},
		$what // "health_recover ran $n more times",
		q{SELECT string_agg(format('%s runs=%s ok=%s err=%s', task, runs, last_ok, last_error), E'\n')
		    FROM pgext.worker_status});
}

# The fake Hetzner's POSTs of server action $action (reboot, reset, ...), for
# server $s (a hash) or every server.
sub hz_actions
{
	my ($self, $action, $s) = @_;
	my $re = defined $s ? qr{^/v1/servers/$s->{hid}/actions/$action$} : qr{^/v1/servers/\d+/actions/$action$};
	return grep { $_->{method} eq 'POST' && $_->{path} =~ $re }
	  @{ $self->{hz}->state(servers => 0, actions => 0)->{calls} };
}

1;
