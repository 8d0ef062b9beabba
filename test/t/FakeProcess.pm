# What the Perl handles of the fake APIs (FakeHetzner.pm, FakeStripe.pm)
# share: starting the fake's Python process on a free loopback port, its log,
# its control calls that are the same in both, and stopping it.  A subclass
# defines start (calling launch) and control.
package FakeProcess;

use strict;
use warnings;
use Cwd ();
use File::Basename ();
use File::Temp ();
use HTTP::Tiny;
use IPC::Run ();
use Time::HiRes ();

my $root = Cwd::abs_path(File::Basename::dirname(__FILE__) . '/../..');

# Starts test/fake/$script with --port 0 --token $token --port-file and @args;
# waits (polling) until the port file appears; dies after 30 s.
sub launch
{
	my ($class, $name, $script, $token, @args) = @_;
	my $dir = File::Temp::tempdir("$name-XXXXXX", TMPDIR => 1, CLEANUP => 1);
	my $self = bless {
		token => $token,
		dir => $dir,
		log => "$dir/fake.log",
		http => HTTP::Tiny->new(timeout => 30, keep_alive => 0),
	}, $class;
	my @cmd = ('python3', "$root/test/fake/$script", '--port', '0',
		'--token', $token, '--port-file', "$dir/port", @args);
	$self->{h} = IPC::Run::start(\@cmd, '<', \undef, '>', "$dir/stdout", '2>', $self->{log});
	my $deadline = time + 30;
	until (-s "$dir/port")
	{
		die "$name did not start: " . $self->log_text if time > $deadline;
		Time::HiRes::sleep(0.05);
	}
	open my $fh, '<', "$dir/port" or die "port file: $!";
	chomp($self->{port} = <$fh>);
	close $fh;
	return $self;
}

# The port it listens on.
sub port { return $_[0]{port} }

# The token (key) it accepts.
sub token { return $_[0]{token} }

# Adds faults (a hash or a list of hashes; see test/fake/README.md).
sub fault { my ($self, @f) = @_; return $self->control('POST', 'faults', \@f) }

# Removes every fault.
sub clear_faults { return $_[0]->control('DELETE', 'faults') }

# Changes the fake's configuration (see test/fake/README.md).
sub config { my ($self, %c) = @_; return $self->control('POST', 'config', \%c) }

# Back to the start: nothing stored, no faults, default config.
sub reset { return $_[0]->control('POST', 'reset') }

# The fake's state; options (e.g. calls => 0) leave parts out.
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
