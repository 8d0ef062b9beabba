# Master key pages: excluded from core dumps and locked in RAM in every
# process that holds them.  fork() keeps MADV_DONTDUMP (a flag of the
# mapping) but drops memory locks, so a backend must lock the root key page
# again on its first use of the keyring.  Read from /proc/<pid>/smaps:
# "dd" = do not dump, "lo" = locked.  Linux only.
use strict;
use warnings;
use Cwd;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

plan skip_all => 'needs Linux /proc/<pid>/smaps' unless -r '/proc/self/smaps';

my $keys = getcwd() . '/test/keys.sh';
my $node = PostgreSQL::Test::Cluster->new('secrets_memory');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pgext'
pgext.master_key_command = '$keys'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pgext CASCADE');
$node->safe_psql('postgres', q{SELECT pgext.secret_set('k', 'value-of-the-memory-test')});

# VmFlags of every anonymous ("ac", accountable) mapping in an smaps text that
# is excluded from core dumps ("dd"); the kernel's own special mappings ([vvar]
# and the like: "io", "pf") are "dd" too and are not counted.
sub dontdump_flags
{
	my ($smaps) = @_;
	my @flags;
	for my $line (split /\n/, $smaps)
	{
		next unless $line =~ /^VmFlags:\s*(.*)$/;
		my %f = map { $_ => 1 } split ' ', $1;
		push @flags, \%f if $f{dd} && $f{ac};
	}
	return @flags;
}

# The memlock limit the server runs under (soft, bytes; -1 = unlimited).
# Read by the backend itself: a pid read first and looked up afterwards may
# already belong to an exited process.
my $limits = $node->safe_psql('postgres', q{SELECT pg_read_file('/proc/self/limits')});
my ($memlock) = $limits =~ /^Max locked memory\s+(\S+)/m;
$memlock = -1 if !defined $memlock || $memlock eq 'unlimited';
# root keys (1 page) + account key cache (about 380 kB) + salt cache (about
# 220 kB), with room to spare
my $enough = $memlock < 0 || $memlock >= 1024 * 1024;
note "RLIMIT_MEMLOCK: $memlock";

# The postmaster holds the root keys: one do-not-dump mapping at least.
my ($pm_pid) = split /\n/, slurp_file($node->data_dir . '/postmaster.pid');
my @pm = dontdump_flags(slurp_file("/proc/$pm_pid/smaps"));
note "postmaster: " . join(" | ", map { join(" ", sort keys %$_) } @pm);
ok(@pm >= 1, 'postmaster: the key page is excluded from core dumps');

# A fresh backend inherits the page (still "dd") but not its lock; after a
# secret read it has locked it again, and its account key cache too.
my ($before, $after) = split /\n====\n/, $node->safe_psql('postgres', q{
	SELECT pg_read_file('/proc/self/smaps')
	UNION ALL SELECT '===='
	UNION ALL SELECT pg_read_file('/proc/self/smaps')
	  FROM (SELECT pgext.secret_get('k')) s});
my @fresh = dontdump_flags($before);
my @used = dontdump_flags($after);
note "backend: " . join(" | ", map { join(" ", sort keys %$_) } @used);
is(scalar(@fresh), scalar(@pm), 'a fresh backend inherits the do-not-dump key page');
ok(!grep({ $_->{lo} } @fresh), 'fork() dropped the lock (why backends lock again)');
is(scalar(@used), scalar(@pm) + 1, 'after a read: the root keys and the account key cache');

# An account's secret (format 0x02) also maps the salt cache (salts.c), about
# 220 kB more do-not-dump memory, locked like the rest (the kernel may merge
# it with the account key cache's mapping: sizes are compared, not counts).
sub dontdump_kb
{
	my ($smaps) = @_;
	my ($kb, $size) = (0, 0);
	for my $line (split /\n/, $smaps)
	{
		$size = $1 if $line =~ /^Size:\s*(\d+) kB/;
		next unless $line =~ /^VmFlags:\s*(.*)$/;
		my %f = map { $_ => 1 } split ' ', $1;
		$kb += $size if $f{dd} && $f{ac};
	}
	return $kb;
}
$node->safe_psql('postgres', q{
	INSERT INTO pgext.accounts (id, external_id) VALUES ('5a170000-0000-4000-8000-0000000000aa', 'memory-test');
	SELECT pgext.secret_set('k', 'value-of-the-account', '5a170000-0000-4000-8000-0000000000aa')});
my $salted_smaps = $node->safe_psql('postgres', q{
	SELECT pg_read_file('/proc/self/smaps')
	  FROM (SELECT pgext.secret_get('k', '5a170000-0000-4000-8000-0000000000aa')) s});
my @salted = dontdump_flags($salted_smaps);
note "backend, account secret: " . join(" | ", map { join(" ", sort keys %$_) } @salted);
cmp_ok(dontdump_kb($salted_smaps), '>=', dontdump_kb($after) + 200,
	'after an account read: the salt cache too');
push @used, @salted;

if ($enough)
{
	ok(!grep({ !$_->{lo} } @pm), 'postmaster: key pages locked in RAM');
	ok(!grep({ !$_->{lo} } @used), 'backend: every key page locked in RAM after first use');
	unlike(slurp_file($node->logfile), qr/could not lock master key memory|memlock limit is too low/,
		'no memlock warning in the server log');
}
else
{
	like(slurp_file($node->logfile), qr/memlock limit is too low to lock master keys/,
		'a memlock limit too low is reported once at start');
	ok(1, 'locks not checked: RLIMIT_MEMLOCK is below 1 MB');
	ok(1, 'locks not checked: RLIMIT_MEMLOCK is below 1 MB');
}

# The root key page is read-only after loading (so locking it copies nothing).
my @ro = grep { !$_->{wr} } @used;
ok(@ro >= 1, 'the root key page is read-only');

done_testing();
