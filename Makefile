# pgext — PGXS build.  `make && make install`, then tests run against a
# server started with shared_preload_libraries = 'pgext' (see test/run.sh).

MODULE_big = pgext
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c src/*/*.c)))

EXTENSION = pgext
# The install script of the current version (default_version in pgext.control)
# is assembled from one file per capability, in dependency order (the same
# names as src/); it is a build product, not edited by hand.  Released
# versions are committed and frozen: sql/pgext--1.0.sql (never edited; its
# SHA-256 is checked by test/t/040_upgrade.pl) and the upgrade script
# sql/pgext--1.0--1.1.sql, which must make a 1.0 install equal to a fresh 1.1
# (040_upgrade compares the two schemas).
INSTALL_PARTS = core accounts accounts_scope outbox credits secrets billing webhooks servers_spec servers hetzner stripe_sync worker health rate_limit data_rights tenant closing
DATA_built = sql/pgext--1.1.sql
DATA = $(filter-out $(DATA_built),$(sort $(wildcard sql/pgext--*.sql)))


PG_CPPFLAGS = -I$(srcdir)/src
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers
SHLIB_LINK = -lcrypto -lcurl -lyaml

# pg_regress: every sql/<name>.sql that is not an install/upgrade script.
REGRESS = $(sort $(basename $(notdir $(filter-out sql/pgext--%,$(wildcard sql/*.sql)))))
REGRESS_OPTS = --load-extension=pgcrypto --load-extension=pgext

# isolation: specs in test/specs, expected output in test/expected.
ISOLATION = $(sort $(basename $(notdir $(wildcard test/specs/*.spec))))
ISOLATION_OPTS = --inputdir=test --load-extension=pgcrypto --load-extension=pgext

# TAP: test/t/*.pl (PostgreSQL::Test::Cluster); must run as a non-root user.
TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# After PGXS, so that `make` still builds everything by default.
sql/pgext--1.1.sql: $(foreach p,$(INSTALL_PARTS),sql/install/$(p).sql) Makefile
	cat $(foreach p,$(INSTALL_PARTS),sql/install/$(p).sql) > $@
