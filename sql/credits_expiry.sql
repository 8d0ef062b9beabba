-- Credits: expiry (never spendable once past, even before the sweep), the sweep,
-- reservation ttl, and expiry of lots a reservation drew from.
-- Tests move time by moving expires_at into the past (the tables are not append-only).
SELECT pgext.account_create('exp-a') AS a \gset
SELECT status FROM pgext.credit_grant(:'a', 10, 'pool');
SELECT status FROM pgext.credit_grant(:'a', 7, 'trial', 'trial', now() + interval '1 hour');
SELECT pgext.credit_balance(:'a');
-- time passes: the trial lot expires, not yet swept
UPDATE pgext.credit_lots SET expires_at = now() - interval '1 minute' WHERE account_id = :'a';
SELECT pgext.credit_balance(:'a');
SELECT balance, lot_credits FROM pgext.accounts WHERE id = :'a';
-- expired credits are not spendable: 11 is more than the 10 left
SELECT ok, status, balance FROM pgext.credit_deduct(:'a', 11, 'x1');
SELECT ok, status, balance FROM pgext.credit_deduct(:'a', 4, 'x2');
SELECT remaining FROM pgext.credit_lots WHERE account_id = :'a';
-- the grant reports the spendable balance, not the unswept total
SELECT ok, status, balance FROM pgext.credit_grant(:'a', 1, 'pool-2');
-- the sweep records the expiry
SELECT * FROM pgext.credit_sweep();
SELECT * FROM pgext.credit_sweep();
SELECT op, amount, delta, balance_after, reason FROM pgext.credit_ledger
 WHERE account_id = :'a' ORDER BY id;
SELECT balance, lot_credits FROM pgext.accounts WHERE id = :'a';
SELECT pgext.credit_balance(:'a');

-- reservations past their ttl: cannot be committed; release and sweep give them back
SELECT pgext.account_create('exp-r') AS r \gset
SELECT status FROM pgext.credit_grant(:'r', 50, 'seed');
SELECT id AS r1 FROM pgext.credit_reserve(:'r', 20, 'r1', '1 minute') \gset
SELECT id AS r2 FROM pgext.credit_reserve(:'r', 10, 'r2', '1 minute') \gset
SELECT id AS r3 FROM pgext.credit_reserve(:'r', 5, 'r3', '1 hour') \gset
UPDATE pgext.credit_reservations SET expires_at = now() - interval '1 second' WHERE id IN (:r1, :r2);
\set VERBOSITY sqlstate
SELECT pgext.credit_commit(:r1);
\set VERBOSITY default
SELECT ok, status, balance FROM pgext.credit_release(:r2);
SELECT * FROM pgext.credit_sweep();
SELECT id = :r1 AS is_r1, status FROM pgext.credit_reservations WHERE account_id = :'r' ORDER BY id;
SELECT pgext.credit_release(:r1);
SELECT ok, status FROM pgext.credit_release(:r1);
SELECT pgext.credit_balance(:'r');
SELECT ok, status, balance FROM pgext.credit_commit(:r3);

-- a reservation drew from an expiring lot that expires while held:
-- released credits go back to the lot and expire with it at once (an 'expire'
-- entry in the same transaction), so there is nothing left for the sweep
SELECT pgext.account_create('exp-h') AS h \gset
SELECT status FROM pgext.credit_grant(:'h', 5, 'h-pool');
SELECT status FROM pgext.credit_grant(:'h', 8, 'h-promo', 'promo', now() + interval '1 hour');
SELECT id AS hr FROM pgext.credit_reserve(:'h', 10, 'h-res') \gset
SELECT pool_part, lot_parts FROM pgext.credit_reservations WHERE id = :hr;
UPDATE pgext.credit_lots SET expires_at = now() - interval '1 second' WHERE account_id = :'h';
SELECT ok, status, balance FROM pgext.credit_release(:hr);
SELECT remaining FROM pgext.credit_lots WHERE account_id = :'h';
SELECT pgext.credit_balance(:'h');
SELECT * FROM pgext.credit_sweep(1);
SELECT pgext.credit_balance(:'h'), balance, lot_credits FROM pgext.accounts WHERE id = :'h';

-- allocation with expires_at, and a rollover cap only counts unexpired allocation credits
SELECT pgext.account_create('exp-p') AS p \gset
SELECT status FROM pgext.credit_allocate(:'p', 100, 'm1', NULL, now() + interval '40 days');
SELECT status FROM pgext.credit_allocate(:'p', 100, 'm2', 50);
SELECT op, amount, delta, balance_after FROM pgext.credit_ledger WHERE account_id = :'p' ORDER BY id;
SELECT period_key, remaining, expires_at IS NOT NULL AS expires FROM pgext.credit_lots
 WHERE account_id = :'p' ORDER BY id;
-- m1 expires (unswept): the next cap counts only m2's 100, forfeits 90 of it, leaves m1 to the sweep
UPDATE pgext.credit_lots SET expires_at = now() - interval '1 second' WHERE period_key = 'm1';
SELECT ok, status, balance FROM pgext.credit_allocate(:'p', 100, 'm3', 10);
SELECT period_key, remaining FROM pgext.credit_lots WHERE account_id = :'p' ORDER BY id;
SELECT * FROM pgext.credit_sweep();
SELECT pgext.credit_balance(:'p');

-- the sweep and holds on lots that have expired: a hold released by the sweep
-- (or by credit_release/credit_commit) gives credits back to an expired lot;
-- that lot's expiry is recorded at once, so after one sweep the recorded
-- balance is exactly what credit_balance reports (no dead credits on paper)
SELECT pgext.account_create('exp-s') AS s \gset
SELECT status FROM pgext.credit_grant(:'s', 1250, 's-pool');
SELECT status FROM pgext.credit_grant(:'s', 12, 's-promo', 'promo', now() + interval '1 hour');
SELECT status FROM pgext.credit_grant(:'s', 3, 's-trial', 'trial', now() + interval '30 minutes');
-- s1 holds the whole trial lot (it expires first); s2 holds 7 of the promo lot (5 stay in it)
SELECT id AS s1 FROM pgext.credit_reserve(:'s', 3, 's-res-1', '1 minute') \gset
SELECT id AS s2 FROM pgext.credit_reserve(:'s', 7, 's-res-2', '1 minute') \gset
SELECT id = :s1 AS is_s1, lot_parts, pool_part FROM pgext.credit_reservations WHERE account_id = :'s' ORDER BY id;
SELECT balance, lot_credits, pgext.credit_balance(:'s') FROM pgext.accounts WHERE id = :'s';
-- both lots and both holds pass their time
UPDATE pgext.credit_lots SET expires_at = now() - interval '1 second' WHERE account_id = :'s';
UPDATE pgext.credit_reservations SET expires_at = now() - interval '1 second' WHERE account_id = :'s';
SELECT * FROM pgext.credit_sweep();
SELECT balance, lot_credits, pgext.credit_balance(:'s'),
       balance = pgext.credit_balance(:'s') AS exact
  FROM pgext.accounts WHERE id = :'s';
SELECT remaining FROM pgext.credit_lots WHERE account_id = :'s' ORDER BY id;
SELECT op, amount, delta, balance_after, lot_id IS NOT NULL AS has_lot, reason FROM pgext.credit_ledger
 WHERE account_id = :'s' ORDER BY id;
-- nothing left for a second sweep
SELECT * FROM pgext.credit_sweep();
SELECT balance = pgext.credit_balance(:'s') AS exact FROM pgext.accounts WHERE id = :'s';

-- outside the sweep: a partial commit of a hold whose lot expired meanwhile
-- spends what was held (the hold was taken in time); the rest goes back to
-- the expired lot and expires with it, in the same transaction
SELECT pgext.account_create('exp-c') AS c \gset
SELECT status FROM pgext.credit_grant(:'c', 20, 'c-pool');
SELECT status FROM pgext.credit_grant(:'c', 10, 'c-promo', 'promo', now() + interval '1 hour');
SELECT id AS cr FROM pgext.credit_reserve(:'c', 10, 'c-res') \gset
UPDATE pgext.credit_lots SET expires_at = now() - interval '1 second' WHERE account_id = :'c';
SELECT ok, status, balance FROM pgext.credit_commit(:cr, 4);
SELECT ok, status, balance FROM pgext.credit_commit(:cr, 4);
SELECT balance, lot_credits, pgext.credit_balance(:'c') FROM pgext.accounts WHERE id = :'c';
SELECT op, amount, delta, balance_after, reason FROM pgext.credit_ledger
 WHERE account_id = :'c' ORDER BY id;
SELECT * FROM pgext.credit_sweep();

SELECT * FROM pgext.credit_audit();
SELECT * FROM pgext.credit_verify();
