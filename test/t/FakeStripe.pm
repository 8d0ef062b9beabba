# The fake Stripe API (test/fake/stripe.py) for TAP tests: start it on a free
# loopback port, call it, add subscriptions / events / customers, move its
# clock, switch faults, read its state, stop it.
#   use FindBin; use lib $FindBin::Bin; use FakeStripe;
#   my $fake = FakeStripe->start(token => 'sk_test_x');
#   $fake->url;                          # http://127.0.0.1:PORT (pgext.stripe_api_url)
#   my $sub = $fake->subscription(customer => 'cus_1', status => 'active', price => 'price_a');
#   $fake->fault({kind => 'rate_limit', count => 2});
#   my $st = $fake->state;               # subscriptions, events, customers, calls, counters
#   $fake->stop;
# Core Perl only (HTTP::Tiny, JSON::PP) plus IPC::Run.
package FakeStripe;

use strict;
use warnings;
use parent -norequire, 'FakeProcess';
use FakeProcess ();
use HTTP::Tiny;
use JSON::PP ();

my $json = JSON::PP->new->canonical->allow_nonref;

# Starts the fake.  Options: token (default 'sk_test_fake'), livemode (objects
# and events say livemode true).  Waits (polling) until its port file appears;
# dies after 30 s.
sub start
{
	my ($class, %o) = @_;
	return $class->launch('fake-stripe', 'stripe.py', $o{token} // 'sk_test_fake',
		($o{livemode} ? ('--livemode') : ()));
}

# The base URL (what pgext.stripe_api_url would be set to; paths start with /v1).
sub url { return "http://127.0.0.1:$_[0]{port}" }

# One API call: $method, $path from /v1 on (e.g. '/v1/subscriptions?limit=3'),
# options token => (undef: the fake's own; '': no Authorization header),
# headers => {...}.  Returns {status, headers, content, json} (json undef when
# the body does not parse).
sub api
{
	my ($self, $method, $path, %o) = @_;
	my $token = exists $o{token} ? $o{token} : $self->{token};
	my %h = (headers => { %{ $o{headers} // {} } });
	$h{headers}{authorization} = "Bearer $token" if defined $token && $token ne '';
	my $r = $self->{http}->request($method, $self->url . $path, \%h);
	$r->{json} = eval { $json->decode($r->{content}) } if length($r->{content} // '');
	return $r;
}

# Follows starting_after from $path (a list URL) until has_more is false.
# Returns (all objects, number of pages); dies on a non-200 page.
sub list_all
{
	my ($self, $path) = @_;
	my (@all, $pages);
	my $after;
	while (1)
	{
		my $sep = $path =~ /\?/ ? '&' : '?';
		my $r = $self->api('GET', $path . (defined $after ? "${sep}starting_after=$after" : ''));
		die "fake-stripe list $path: $r->{status} $r->{content}" unless $r->{status} == 200;
		$pages++;
		push @all, @{ $r->{json}{data} };
		last unless $r->{json}{has_more};
		$after = $r->{json}{data}[-1]{id};
	}
	return (\@all, $pages);
}

# A control call (/__fake/$what); returns the decoded answer.
sub control { my ($self, @a) = @_; return ($self->control_response(@a))[0] }

# A control call; returns the decoded answer and the HTTP::Tiny response.
# Dies unless it succeeded.
sub control_response
{
	my ($self, $method, $what, $body) = @_;
	my $r = $self->{http}->request($method, "http://127.0.0.1:$self->{port}/__fake/$what",
		defined $body ? { content => $json->encode($body) } : {});
	die "fake-stripe control $method $what: $r->{status} $r->{content}" unless $r->{success};
	return ($json->decode($r->{content}), $r);
}

# Creates or changes a subscription (id, customer, status, price,
# current_period_start/end, cancel_at_period_end, cancel_at, created, metadata,
# event => 0 for no event or a type name).  Returns the object; in list
# context also the id of the event recorded ('' when none).
sub subscription
{
	my ($self, %s) = @_;
	$s{event} = $s{event} ? JSON::PP::true : JSON::PP::false
	  if exists $s{event} && $s{event} =~ /^[01]?$/;
	my ($out, $r) = $self->control_response('POST', 'subscriptions', \%s);
	return wantarray ? ($out, $r->{headers}{'fake-event-id'}) : $out;
}

# Creates many subscriptions at once (a list of hashes as for subscription).
sub subscriptions { my ($self, @s) = @_; return $self->control('POST', 'subscriptions', \@s) }

# Adds a raw event (fields left out get defaults: id, created = now, ...).
sub event { my ($self, %e) = @_; return $self->control('POST', 'events', \%e) }

# Creates or changes a customer (id, email, name, metadata, deleted => 1).
sub customer
{
	my ($self, %c) = @_;
	$c{deleted} = JSON::PP::true if $c{deleted};
	return $self->control('POST', 'customers', \%c);
}

# Sets the fake's clock: a unix time (frozen there), or undef for real time.
sub clock { my ($self, $now) = @_; return $self->control('POST', 'clock', { now => $now })->{now} }

# Moves the clock forward by $seconds (freezing it).
sub advance { my ($self, $s) = @_; return $self->control('POST', 'clock', { advance => $s })->{now} }

1;
