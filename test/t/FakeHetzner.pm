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
use Cwd ();
use File::Basename ();
use File::Temp ();
use HTTP::Tiny;
use IPC::Run ();
use JSON::PP ();
use Time::HiRes ();

my $root = Cwd::abs_path(File::Basename::dirname(__FILE__) . '/../..');
my $json = JSON::PP->new->canonical->allow_nonref;

# Starts the fake.  Options: token (default 'test-token'), rate_limit,
# refill (per second), action_polls (GETs before an action completes).
# Waits (polling) until its port file appears; dies after 30 s.
sub start
{
	my ($class, %o) = @_;
	my $dir = File::Temp::tempdir('fake-hetzner-XXXXXX', TMPDIR => 1, CLEANUP => 1);
	my $self = bless {
		token => $o{token} // 'test-token',
		dir => $dir,
		log => "$dir/fake.log",
		http => HTTP::Tiny->new(timeout => 30, keep_alive => 0),
	}, $class;
	my @cmd = ('python3', "$root/test/fake/hetzner.py", '--port', '0',
		'--token', $self->{token}, '--port-file', "$dir/port");
	push @cmd, '--rate-limit', $o{rate_limit} if defined $o{rate_limit};
	push @cmd, '--refill', $o{refill} if defined $o{refill};
	push @cmd, '--action-polls', $o{action_polls} if defined $o{action_polls};
	$self->{h} = IPC::Run::start(\@cmd, '<', \undef, '>', "$dir/stdout", '2>', $self->{log});
	my $deadline = time + 30;
	until (-s "$dir/port")
	{
		die "fake-hetzner did not start: " . $self->log_text if time > $deadline;
		Time::HiRes::sleep(0.05);
	}
	open my $fh, '<', "$dir/port" or die "port file: $!";
	chomp($self->{port} = <$fh>);
	close $fh;
	return $self;
}

# The port it listens on.
sub port { return $_[0]{port} }

# The base URL of the API (what pgext.hetzner_api_url would be set to).
sub url { return "http://127.0.0.1:$_[0]{port}/v1" }

# The token it accepts.
sub token { return $_[0]{token} }

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

# Adds faults (a hash or a list of hashes; see test/fake/README.md).
sub fault { my ($self, @f) = @_; return $self->control('POST', 'faults', \@f) }

# Removes every fault.
sub clear_faults { return $_[0]->control('DELETE', 'faults') }

# Changes rate_limit / refill_per_second / action_polls / budget.
sub config { my ($self, %c) = @_; return $self->control('POST', 'config', \%c) }

# Back to the start: no servers, no faults, full budget, default config.
sub reset { return $_[0]->control('POST', 'reset') }

# Seeds servers: count, labels, name_prefix, status, location.  Returns ids.
sub seed { my ($self, %s) = @_; return $self->control('POST', 'seed', \%s)->{ids} }

# Changes a server behind the API's back (e.g. status => 'off').
sub set_server { my ($self, $id, %f) = @_; return $self->control('POST', "servers/$id", \%f) }

# Makes a server vanish without an action.
sub vanish { my ($self, $id) = @_; return $self->control('DELETE', "servers/$id") }

# The fake's state; options servers/actions/calls => 0 leave those out.
sub state
{
	my ($self, %o) = @_;
	my $q = join '&', map { "$_=$o{$_}" } sort keys %o;
	return $self->control('GET', 'state' . ($q ? "?$q" : ''));
}

# What the fake wrote to stderr so far.
sub log_text
{
	my ($self) = @_;
	open my $fh, '<', $self->{log} or return '';
	local $/;
	my $t = <$fh>;
	close $fh;
	return $t // '';
}

# Stops it with SIGTERM and waits; returns its exit code.
sub stop
{
	my ($self) = @_;
	return undef unless $self->{h};
	$self->{h}->signal('TERM');
	$self->{h}->finish;
	my $rc = $self->{h}->full_result(0) >> 8;
	delete $self->{h};
	return $rc;
}

# Stops it when the object goes away.
sub DESTROY
{
	my ($self) = @_;
	if ($self->{h}) { eval { $self->{h}->kill_kill; }; }
}

1;
