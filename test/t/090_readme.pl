# The README's SQL examples run as written.
#
# Every ```sql fenced block of README.md is executed, in document order, in
# ONE psql session (psql -X -A -t -q -v ON_ERROR_STOP=1, so psql variables set
# with \gset or \set carry over from block to block) against a fresh database
# of a cluster with pgext preloaded, test/keys.sh as pgext.master_key_command
# and `CREATE EXTENSION pgext CASCADE` already run.  Fences in any other
# language (```text, ```sh, ```python, no language...) are not run.
#
# The convention:
#  - Role: `<!-- as: ROLE -->` on the line right before a block's opening fence
#    runs that block after `SET ROLE ROLE`; without it the block runs as the
#    superuser that created the extension (the DBA).  Each block starts with
#    RESET ROLE, so a role never leaks into the next block.
#  - Assertion: a line ending in `-- → TEXT` asserts that what this line
#    printed is exactly TEXT.  "Printed" is psql's unaligned tuples-only
#    output: columns separated by `|`, NULL as an empty string, several rows
#    joined by ` ; `, and `(no rows)` when nothing was printed (a void result
#    prints one empty row).  A statement spread over several lines prints
#    when its last line (the one with the `;`) runs, so put the assertion
#    there.  Lines without `-- →` may print anything.
#  - Nothing may follow a backslash command on its line: psql takes the rest
#    as arguments (`\gset -- comment` fails), so comments go on their own line.
#  - Every block ends with a complete statement (`;` or a backslash command).
#
# Each assertion is one TAP test named after its README line.  A statement
# that raises an error stops the run (ON_ERROR_STOP) and fails with the
# README line and the error; assertions after it fail as "not reached".
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use PgextTest;

# README.md sits in the (staged) repository root.  Everything is compared as
# UTF-8 bytes: README.md, this file (no `use utf8`: the arrow below is its
# UTF-8 bytes) and psql's output.
my $readme = PgextTest::root() . '/README.md';
open(my $fh, '<:raw', $readme) or die "$readme: $!";
my @lines = <$fh>;
close($fh);
chomp(@lines);

# Parse: the script to run, and for each script line the README line it came from.
my @script;       # script lines
my @origin;       # $origin[script line index] = README line number (or undef)
my @asserts;      # { line => n, want => text, sql => text }
my @problems;     # convention errors found while parsing
my ($in_fence, $fence_lang, $block_role) = (0, '', undef);
my $blocks = 0;
my $last_stmt_line;    # README line number of the last non-comment line in a block
my @stmt;              # the lines of the statement being read (for test names)

# Append one line to the script, remembering where it came from.
sub emit
{
	my ($text, $readme_line) = @_;
	push @script, $text;
	push @origin, $readme_line;
}

for my $i (0 .. $#lines)
{
	my $n = $i + 1;
	my $line = $lines[$i];
	if ($line =~ /^\s*```\s*(\S*)/)
	{
		if (!$in_fence)
		{
			($in_fence, $fence_lang) = (1, $1);
			next unless $fence_lang eq 'sql';
			$blocks++;
			$block_role = undef;
			if ($i > 0 && $lines[$i - 1] =~ /^<!--\s*as:\s*(\S+)\s*-->\s*$/)
			{
				$block_role = $1;
				push @problems, "README.md:$i: role marker '$block_role' is not a role name"
				  unless $block_role =~ /^[a-z_][a-z0-9_]*$/;
			}
			emit('RESET ROLE;', undef);
			emit("SET ROLE $block_role;", $i) if defined $block_role;
			$last_stmt_line = undef;
			@stmt = ();
		}
		else
		{
			push @problems,
			  "README.md:$last_stmt_line: the block ends inside a statement (no ';' or backslash command)"
			  if $fence_lang eq 'sql' && @stmt;
			($in_fence, $fence_lang) = (0, '');
		}
		next;
	}
	if (!$in_fence && $line =~ /^<!--\s*as:/
		&& !($i + 1 <= $#lines && $lines[ $i + 1 ] =~ /^```sql\s*$/))
	{
		push @problems, "README.md:$n: role marker not directly before a ```sql fence";
	}
	next unless $in_fence && $fence_lang eq 'sql';

	emit($line, $n);
	emit("\\echo '\@\@README.md:$n\@\@'", undef);
	(my $code = $line) =~ s/\s*--.*$//;
	$code =~ s/^\s+//;
	if ($code ne '')
	{
		$last_stmt_line = $n;
		push @stmt, $code;
	}
	if ($line =~ /--\s*→\s?(.*?)\s*$/)
	{
		push @asserts, { line => $n, want => $1, sql => join(' ', @stmt) };
	}
	@stmt = () if $code =~ /;$/ || $code =~ /^\\/ || $code =~ /\\g\w*(\s+\S+)?$/;
	if ($line =~ /^\s*\\.*\s--/ || $line =~ /\\g\w*\b.*--/)
	{
		push @problems, "README.md:$n: a comment after a backslash command is taken as its arguments";
	}
}
push @problems, "README.md: unterminated fence" if $in_fence;

ok($blocks > 0 && @asserts > 0,
	"README.md has ```sql blocks ($blocks) with -- → assertions (" . scalar(@asserts) . ")");
is(join("\n", @problems), '', 'README.md follows the SQL block convention');

# log_statement = none (PgextTest's default) matters here: the examples pass
# secret values as literals.
my $node = PgextTest::node('readme', initdb => [ '--encoding=UTF8', '--locale=C' ], database => 'readme');

$ENV{PGCLIENTENCODING} = 'UTF8';
my ($out, $err) = ('', '');
my $ret = $node->psql('readme', join("\n", @script) . "\n",
	stdout => \$out, stderr => \$err, on_error_stop => 1);

# Split stdout at the markers: what README line n printed is everything
# between the marker of the line before it and its own marker.
my %printed;
my @pending;
for my $o (split /\n/, $out, -1)
{
	if ($o =~ /^\@\@README\.md:(\d+)\@\@$/)
	{
		$printed{$1} = [@pending];
		@pending = ();
	}
	else { push @pending, $o; }
}

# Where psql stopped, as a README line.
my $stopped;
if ($ret != 0)
{
	my $where = 'unknown line';
	if ($err =~ /^psql:<stdin>:(\d+): (?:ERROR|FATAL|error):\s*(.*)$/m)
	{
		my $src = $origin[ $1 - 1 ];
		$where = defined $src ? "README.md:$src: $2" : "RESET ROLE before a block: $2";
		$stopped = $src;
	}
	fail("README SQL ran to the end: stopped at $where");
	diag("psql exit code $ret; stderr:\n$err");
}
else
{
	pass('README SQL ran to the end');
}

for my $a (@asserts)
{
	my $name = "README.md:$a->{line}: $a->{sql}";
	if (!exists $printed{ $a->{line} })
	{
		fail("$name (not reached"
			  . (defined $stopped ? ": psql stopped at README.md:$stopped" : '') . ')');
		next;
	}
	my @rows = @{ $printed{ $a->{line} } };
	my $got = @rows ? join(' ; ', @rows) : '(no rows)';
	is($got, $a->{want}, $name);
}

$node->stop;
done_testing();
