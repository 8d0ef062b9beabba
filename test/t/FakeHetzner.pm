# The fake Hetzner Cloud API (test/fake/hetzner.py) for TAP tests: start it on
# a free loopback port, call it, switch faults, read its state, stop it.
#   use FindBin; use lib $FindBin::Bin; use FakeHetzner;
#   my $fake = FakeHetzner->start(token => 'tok');
#   $fake->url;                          # http://127.0.0.1:PORT/v1
#   $fake->fault({kind => 'server_error', count => 2});
#   my $st = $fake->state;               # servers, actions, calls, counters
#   $fake->stop;
# Core Perl only (HTTP::Tiny, JSON::PP) plus IPC::Run.
package FakeHetzner;

use strict;
use warnings;
use parent -norequire, 'FakeProcess';
use FakeProcess ();
use HTTP::Tiny;
use JSON::PP ();

my $json = JSON::PP->new->canonical->allow_nonref;

# Starts the fake.  Options: token (default 'test-token'), rate_limit,
# refill (per second), action_polls (GETs before an action completes).
# Waits (polling) until its port file appears; dies after 30 s.
sub start
{
	my ($class, %o) = @_;
	return $class->launch('fake-hetzner', 'hetzner.py', $o{token} // 'test-token',
		(defined $o{rate_limit} ? ('--rate-limit', $o{rate_limit}) : ()),
		(defined $o{refill} ? ('--refill', $o{refill}) : ()),
		(defined $o{action_polls} ? ('--action-polls', $o{action_polls}) : ()));
}

# The base URL of the API (what pgext.hetzner_api_url would be set to).
sub url { return "http://127.0.0.1:$_[0]{port}/v1" }

# One API call: $method, $path below /v1 (e.g. '/servers?page=2'), optional
# body (a Perl structure or a raw string), options token => (undef: the fake's
# own; '' : no Authorization header).  Returns {status, headers, content, json}
# (json undef when the body does not parse).
sub api
{
	my ($self, $method, $path, $body, %o) = @_;
	my $token = exists $o{token} ? $o{token} : $self->{token};
	my %h = (headers => {});
	$h{headers}{authorization} = "Bearer $token" if defined $token && $token ne '';
	if (defined $body)
	{
		$h{content} = ref $body ? $json->encode($body) : $body;
		$h{headers}{'content-type'} = 'application/json';
	}
	my $r = $self->{http}->request($method, $self->url . $path, \%h);
	$r->{json} = eval { $json->decode($r->{content}) } if length($r->{content} // '');
	return $r;
}

# A control call (/__fake/$what); returns the decoded answer.
sub control
{
	my ($self, $method, $what, $body) = @_;
	my $r = $self->{http}->request($method, "http://127.0.0.1:$self->{port}/__fake/$what",
		defined $body ? { content => $json->encode($body) } : {});
	die "fake-hetzner control $method $what: $r->{status} $r->{content}" unless $r->{success};
	return $json->decode($r->{content});
}

# Seeds servers: count, labels, name_prefix, status, location.  Returns ids.
sub seed { my ($self, %s) = @_; return $self->control('POST', 'seed', \%s)->{ids} }

# Changes a server behind the API's back (e.g. status => 'off').
sub set_server { my ($self, $id, %f) = @_; return $self->control('POST', "servers/$id", \%f) }

# Makes a server vanish without an action.
sub vanish { my ($self, $id) = @_; return $self->control('DELETE', "servers/$id") }

1;
