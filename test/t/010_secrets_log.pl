# Log hygiene of the secret store.
#
# What is asserted: with PostgreSQL's default statement logging
# (log_statement = none -- the TAP framework's default is 'all' --, log_min_error_statement = error, no duration logging)
# the server log never contains a secret value, whatever pgext does with it:
# set, get, mask, rewrap, import, delete, and every error raised while a value
# is in scope -- including errors raised underneath pgext (a read-only
# transaction refusing the INSERT), whose statement text pgext hides.
#
# What is NOT promised, and asserted as such so the grep is known to work:
# a call that fails before pgext runs (permission denied) is logged by
# PostgreSQL itself with its statement, and log_statement = 'all' logs every
# literal.  Applications pass values as bind parameters; pgext warns at
# server start and at CREATE EXTENSION about settings that log them.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use PgextTest;

my $acct = '11111111-1111-4111-8111-111111111111';

my $node = PgextTest::node('secrets_log', extension => 0);

my $startup_log = slurp_file($node->logfile);
unlike($startup_log, qr/logging settings can write secret values/,
	'no logging warning with default settings');
like($startup_log, qr/loaded 2 master key version\(s\) from pgext.master_key_command; newest is 2/,
	'keys loaded at start');

$node->safe_psql('postgres', qq{
	CREATE EXTENSION pgext CASCADE;
	INSERT INTO pgext.accounts (id, external_id) VALUES ('$acct', 'tenant-log');
	CREATE ROLE app_nobody LOGIN;
});

# Every value that goes through pgext below carries this prefix.
my $canary = 'CANARY9f31';
my $log_start = -s $node->logfile;

# Runs SQL and expects success.
sub ok_sql
{
	my ($sql, $name) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', $sql);
	is($ret, 0, $name) or diag($err);
	return $out;
}

# Runs SQL and expects an error matching $re.
sub err_sql
{
	my ($sql, $re, $name, %opts) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', $sql, %opts);
	isnt($ret, 0, "$name fails");
	like($err, $re, "$name: clear error");
	unlike($err, qr/$canary/, "$name: error text carries no value");
}

# Success paths.
ok_sql(qq{SELECT pgext.secret_set('p1', '${canary}-platform-value-001')}, 'set platform secret');
ok_sql(qq{SELECT pgext.secret_set('a1', '${canary}-account-value-002', '$acct')}, 'set account secret');
ok_sql(qq{SELECT pgext.secret_set('p1', '${canary}-platform-value-003')}, 'replace a secret');
is(ok_sql(qq{SELECT pgext.secret_get('a1', '$acct')}, 'get'), "${canary}-account-value-002",
	'get returns the value');
is(ok_sql(q{SELECT pgext.secret_masked('p1')}, 'masked'), "\xe2\x80\xa6-003",
	'masked shows the last 4 characters');
ok_sql(qq{SET pgext.secret_encrypt_version = 1;
	SELECT pgext.secret_set('r1', '${canary}-rewrap-value-004')}, 'set under version 1');
is(ok_sql(q{SELECT pgext.secret_rewrap()}, 'rewrap'), '1', 'rewrap re-encrypts one row');
is(ok_sql(q{SELECT pgext.secret_get('r1')}, 'get after rewrap'), "${canary}-rewrap-value-004",
	'rewrapped value intact');
ok_sql(qq{SELECT pgext.secret_import_pgp('i1',
	pgp_sym_encrypt('${canary}-imported-value-005', '${canary}-passphrase'),
	'${canary}-passphrase', '$acct')}, 'import from pgcrypto');
ok_sql(qq{SELECT pgext.secret_set('gone', '${canary}-deleted-value-006');
	SELECT pgext.secret_delete('gone')}, 'set and delete');
ok_sql(q{SELECT pgext.secret_audit_flush()}, 'audit flush');
ok_sql(qq{SELECT pgext.secret_set('exp', '${canary}-expiring-value-007', NULL,
	clock_timestamp() + interval '1 second')}, 'set an expiring secret');

# Error paths with a value in scope.
err_sql(qq{SELECT pgext.secret_set('big', '${canary}' || repeat('x', 70000))},
	qr/secret value is 70010 bytes; the limit is 65536 bytes/, 'oversize value');
err_sql(qq{SELECT pgext.secret_set('x', '${canary}-unknown-account', '00000000-0000-0000-0000-000000000000')},
	qr/account 00000000-0000-0000-0000-000000000000 does not exist/, 'unknown account');
err_sql(qq{SELECT pgext.secret_set('x', '${canary}-past-expiry', NULL, now() - interval '1 day')},
	qr/expires_at must be a finite time in the future/, 'expiry in the past');
err_sql(qq{SELECT pgext.secret_set('', '${canary}-empty-name')},
	qr/secret name must be 1 to 255 bytes long/, 'empty name');
err_sql(qq{SELECT pgext.secret_set(NULL, '${canary}-null-name')},
	qr/secret name must not be NULL/, 'NULL name');
err_sql(qq{SET pgext.secret_encrypt_version = 3; SELECT pgext.secret_set('x', '${canary}-no-key-3')},
	qr/pgext.secret_encrypt_version is 3/, 'encrypting version not loaded');
err_sql(qq{BEGIN READ ONLY; SELECT pgext.secret_set('x', '${canary}-read-only')},
	qr/cannot execute (INSERT|SELECT FOR UPDATE) in a read-only transaction/,
	'error raised underneath pgext');
err_sql(qq{SELECT pgext.secret_import_pgp('x', pgp_sym_encrypt('${canary}-import-value', '${canary}-right'),
	'${canary}-wrong')},
	qr/could not decrypt the pgcrypto ciphertext for secret "x": Wrong key or corrupt data/,
	'import with a wrong passphrase');
err_sql(qq{SELECT pgext.secret_import_pgp('x', pgp_sym_encrypt('${canary}-import-2', 'pw'), 'pw',
	'00000000-0000-0000-0000-000000000000')},
	qr/account 00000000-0000-0000-0000-000000000000 does not exist/, 'import to an unknown account');
# Decryption failures: a ciphertext copied from another row, a damaged one.
$node->safe_psql('postgres', q{
	UPDATE pgext.secrets SET sealed = (SELECT sealed FROM pgext.secrets WHERE name = 'p1')
	 WHERE name = 'r1'});
err_sql(q{SELECT pgext.secret_get('r1')}, qr/cannot be decrypted: its ciphertext does not belong to this row/,
	'copied ciphertext');
$node->safe_psql('postgres', q{UPDATE pgext.secrets SET key_version = 1 WHERE name = 'r1'});
{
	# rewrap skips a damaged row with a WARNING that names it, never its value
	my ($ret, $out, $err) = $node->psql('postgres', q{SELECT pgext.secret_rewrap()});
	is($ret, 0, 'rewrap with a damaged row succeeds');
	is($out, '0', 'rewrap skips the damaged row');
	like($err, qr/WARNING:  secret_rewrap skipped secret "r1" of the platform \(account NULL\): its ciphertext cannot be decrypted/,
		'rewrap of a damaged row: clear warning');
	unlike($err, qr/$canary/, 'rewrap of a damaged row: warning carries no value');
}
$node->poll_query_until('postgres', q{
	SELECT expires_at < clock_timestamp() FROM pgext.secrets WHERE name = 'exp'})
  or die 'secret did not expire';
err_sql(q{SELECT pgext.secret_get('exp')}, qr/secret "exp" of the platform \(account NULL\) has expired/,
	'expired secret');

my $log = substr(slurp_file($node->logfile), $log_start);
like($log, qr/secret value is 70010 bytes/, 'errors do reach the log');
unlike($log, qr/$canary/, 'no secret value anywhere in the server log');
unlike($log, qr/STATEMENT:.*secret_set/, 'statements calling secret_set are not logged');

# Outside pgext's reach, asserted so that the grep above is known to work:
# a call PostgreSQL refuses before pgext runs is logged with its statement.
$log_start = -s $node->logfile;
my ($ret, $out, $err) = $node->psql('postgres',
	qq{SELECT pgext.secret_set('x', '${canary}-denied')}, extra_params => [ '-U', 'app_nobody' ]);
like($err, qr/permission denied for schema pgext/, 'role without grants is refused');
like(substr(slurp_file($node->logfile), $log_start), qr/STATEMENT:.*${canary}-denied/,
	'PostgreSQL logs the statement of a call refused before pgext runs (documented: use bind parameters)');

# log_statement = 'all' logs every literal: documented, warned about.
$node->append_conf('postgresql.conf', "log_statement = 'all'");
$node->reload;
$node->poll_query_until('postgres', q{SELECT current_setting('log_statement') = 'all'})
  or die 'reload did not apply';
$log_start = -s $node->logfile;
ok_sql(qq{SELECT pgext.secret_set('p2', '${canary}-logged-by-log-statement')}, 'set with log_statement = all');
like(substr(slurp_file($node->logfile), $log_start), qr/statement: .*${canary}-logged-by-log-statement/,
	'log_statement = all writes the literal to the log');
my ($risks) = ok_sql(q{SELECT array_to_string(pgext.secret_logging_risks(), ' | ')}, 'risks');
like($risks, qr/log_statement = 'all'/, 'secret_logging_risks names log_statement');

# CREATE EXTENSION warns about those settings too.
$node->safe_psql('postgres', 'CREATE DATABASE other');
($ret, $out, $err) = $node->psql('other', 'CREATE EXTENSION pgext CASCADE');
is($ret, 0, 'CREATE EXTENSION with log_statement = all');
like($err, qr/WARNING:  pgext: the logging settings can write secret values to the server log/,
	'CREATE EXTENSION warns');
like($err, qr/DETAIL:  log_statement = 'all' logs the text of every statement/, 'and names the setting');

# At server start: one WARNING naming every risky setting.
$node->append_conf('postgresql.conf', qq{
log_min_duration_statement = 0
log_parameter_max_length_on_error = 100
shared_preload_libraries = 'pgext,auto_explain'
});
$log_start = -s $node->logfile;
$node->restart;
my $restart_log = substr(slurp_file($node->logfile), $log_start);
like($restart_log, qr/WARNING:  pgext: the server's logging settings can write secret values to the server log/,
	'startup warning');
like($restart_log, qr/log_statement = 'all' logs the text of every statement/, 'names log_statement');
like($restart_log, qr/log_min_duration_statement = 0 logs the text of every statement that runs 0 ms or longer/,
	'names log_min_duration_statement');
like($restart_log, qr/log_parameter_max_length = -1 logs bind parameter values/,
	'names log_parameter_max_length');
like($restart_log, qr/log_parameter_max_length_on_error = 100 logs bind parameter values/,
	'names log_parameter_max_length_on_error');
like($restart_log, qr/auto_explain \(in shared_preload_libraries\)/, 'names auto_explain');
like($restart_log, qr/HINT:  Set log_statement to 'none' or 'ddl'/, 'says what to change');
unlike($restart_log, qr/[0-9a-f]{64}/, 'no key material in the startup log');

$node->stop;
done_testing();
