# Shared setup of the TAP tests: a cluster with pgext, its test master keys,
# and signed Stripe deliveries.  Each test loads it with
#   use FindBin; use lib $FindBin::Bin; use PgextTest;
# (PGXS runs prove from the repository root with -I for the root only.)
package PgextTest;

use strict;
use warnings;
use Cwd ();
use Digest::SHA ();
use File::Basename ();
use PostgreSQL::Test::Cluster;

# The repository root (the staged copy the tests run in): two levels above this file.
my $root = Cwd::abs_path(File::Basename::dirname(__FILE__) . '/../..');

# The repository root.
sub root
{
	return $root;
}

# The test master key command (versions 1 and 2).
sub keys_path
{
	return "$root/test/keys.sh";
}

# A new cluster, by default started, with pgext in shared_preload_libraries,
# test/keys.sh as pgext.master_key_command, log_statement = none (the TAP
# framework's default is 'all', which would log secret literals) and
# CREATE EXTENSION pgext CASCADE run in database "postgres".  Options:
#   preload   => 0      pgext not preloaded, no pgext.* settings
#   keys      => PATH   another master key command; undef: the setting is not written
#   conf      => TEXT   more postgresql.conf lines
#   initdb    => [ARGS] extra initdb arguments
#   database  => NAME   create this database and the extension in it instead
#   start     => 0      leave the cluster stopped (and the extension not created)
#   extension => 0      do not create the extension
#   worker    => 1      let the background worker run its tasks (default: off,
#                       pgext.worker_enabled = off, so tests drive every task)
sub node
{
	my ($name, %opts) = @_;
	my %o = (preload => 1, keys => keys_path(), start => 1, extension => 1, %opts);
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init($o{initdb} ? (extra => $o{initdb}) : ());
	my $conf = '';
	if ($o{preload})
	{
		$conf .= "shared_preload_libraries = 'pgext'\n";
		$conf .= "pgext.master_key_command = '$o{keys}'\n" if defined $o{keys};
		$conf .= "pgext.worker_enabled = off\n" unless $o{worker};
	}
	$conf .= "log_statement = none\n";
	$conf .= "$o{conf}\n" if defined $o{conf};
	$node->append_conf('postgresql.conf', $conf);
	return $node unless $o{start};
	$node->start;
	return $node unless $o{extension};
	my $db = $o{database} // 'postgres';
	$node->safe_psql('postgres', qq{CREATE DATABASE "$db"}) if $db ne 'postgres';
	$node->safe_psql($db, 'CREATE EXTENSION pgext CASCADE');
	return $node;
}

# The JSON of a Stripe event (test mode) carrying the object $obj (JSON text).
sub stripe_event
{
	my ($id, $type, $created, $obj) = @_;
	return qq({"id":"$id","object":"event","type":"$type","created":$created,"livemode":false,"data":{"object":$obj}});
}

# The Stripe-Signature header for $body signed at unix time $t with $secret,
# computed here with Digest::SHA, independently of pgext.
sub stripe_signature
{
	my ($secret, $t, $body) = @_;
	return "t=$t,v1=" . Digest::SHA::hmac_sha256_hex("$t.$body", $secret);
}

# Writes an executable /bin/sh script (a key command) with $body; returns $path.
sub shell_script
{
	my ($path, $body) = @_;
	open(my $fh, '>', $path) or die "$path: $!";
	print $fh "#!/bin/sh\n$body";
	close($fh) or die "$path: $!";
	chmod(0700, $path) or die "chmod $path: $!";
	return $path;
}

1;
