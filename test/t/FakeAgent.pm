# The fake agents' health endpoints (test/fake/agent.py) for TAP tests: one
# process, many agents, each a loopback address (127.x.y.z) on the same port.
#   use FindBin; use lib $FindBin::Bin; use FakeAgent;
#   my $fa = FakeAgent->start;
#   $fa->add('127.0.3.7');                        # listens on 127.0.3.7:PORT
#   $fa->url('127.0.3.7', '/health');             # http://127.0.3.7:PORT/health
#   $fa->mode('127.0.3.7', 'fail', path => '/health', status => 500);
#   $fa->mode('127.0.3.7', 'flap', pattern => ['ok', 'fail']);
#   $fa->mode('127.0.3.7', 'refuse');             # connections refused
#   $fa->count('127.0.3.7', '/health');           # requests so far
#   $fa->times('127.0.3.7', '/health');           # unix times of the last ones
#   $fa->stop;
# Core Perl only (HTTP::Tiny, JSON::PP) plus IPC::Run.
package FakeAgent;

use strict;
use warnings;
use parent -norequire, 'FakeProcess';
use FakeProcess ();
use HTTP::Tiny;
use JSON::PP ();

my $json = JSON::PP->new->canonical->allow_nonref;

# Starts the fake.  Options: keep (request times kept per agent and path,
# default 1000), quiet (no log line per request).  Waits (polling) until its
# port file appears; dies after 30 s.
sub start
{
	my ($class, %o) = @_;
	return $class->launch('fake-agent', 'agent.py', 'none',
		(defined $o{keep} ? ('--keep', $o{keep}) : ()),
		($o{quiet} ? ('--quiet') : ()));
}

# The URL of $path (default /health) at agent $ip (default 127.0.0.1).
sub url
{
	my ($self, $ip, $path) = @_;
	return sprintf('http://%s:%d%s', $ip // '127.0.0.1', $self->{port}, $path // '/health');
}

# A control call (/__fake/$what, on 127.0.0.1); returns the decoded answer.
sub control
{
	my ($self, $method, $what, $body) = @_;
	my $r = $self->{http}->request($method, "http://127.0.0.1:$self->{port}/__fake/$what",
		defined $body ? { content => $json->encode($body) } : {});
	die "fake-agent control $method $what: $r->{status} $r->{content}" unless $r->{success};
	return $json->decode($r->{content});
}

# Adds agents (listening, every path ok) at these addresses.
sub add { my ($self, @ips) = @_; return $self->control('POST', 'agents', { ips => \@ips })->{agents} }

# Forgets an agent and closes its listener.
sub remove { my ($self, $ip) = @_; return $self->control('DELETE', "agents/$ip") }

# Sets the mode of agent $ip (an address or a list of them) for path (option
# path, default '*' = every path without a mode of its own): ok, fail (status),
# hang (seconds), flap (pattern), reset, refuse.  Adds the agent when new.
sub mode
{
	my ($self, $ip, $mode, %o) = @_;
	my %spec = (%o, mode => $mode);
	if (ref $ip) { $spec{ips} = $ip } else { $spec{ip} = $ip }
	return $self->control('POST', 'mode', \%spec);
}

# Clears the request counts and times (modes and agents stay).
sub clear_counts { return $_[0]->control('DELETE', 'counts') }

# The state of one agent ({listening, refused, hanging, modes, paths{path:
# {count, times}}}) or undef when it has none.
sub agent
{
	my ($self, $ip, %o) = @_;
	return $self->state(ip => $ip, %o)->{agents}{$ip};
}

# Requests agent $ip got for $path (default /health).
sub count
{
	my ($self, $ip, $path) = @_;
	my $a = $self->agent($ip, times => 0) or return 0;
	my $p = $a->{paths}{ $path // '/health' } or return 0;
	return $p->{count};
}

# The unix times (fractional) of the last requests of agent $ip for $path
# (default /health), oldest first (a list reference).
sub times
{
	my ($self, $ip, $path) = @_;
	my $a = $self->agent($ip) or return [];
	my $p = $a->{paths}{ $path // '/health' } or return [];
	return $p->{times};
}

1;
