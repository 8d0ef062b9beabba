\set k random(1, :nkeys)
SELECT true AS allowed, 99 AS remaining, 0 AS retry_after_ms, 'bench:' || :k AS key;
