\set n random(1, :naccounts)
\set k random(1, 9223372036854775806)
SELECT pgext.credit_deduct(('00000000-0000-0000-0000-' || lpad(:n::text, 12, '0'))::uuid, 1, 'k' || :k);
