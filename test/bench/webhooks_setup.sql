-- Fixtures for test/bench/webhooks.sh: :ndeliveries signed ~1 KB Stripe
-- invoice.paid events; every 10th delivery repeats an earlier event id.
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE EXTENSION IF NOT EXISTS pgext;
SELECT pgext.secret_set('webhook:stripe', 'whsec_bench_0123456789abcdef0123456789abcdef');

CREATE SEQUENCE bench_seq;
CREATE TABLE bench_deliveries (n int PRIMARY KEY, payload text NOT NULL, signature text NOT NULL,
                               received_at timestamptz NOT NULL);
INSERT INTO bench_deliveries
SELECT n, payload, 't=' || t || ',v1=' ||
         encode(hmac(t || '.' || payload, 'whsec_bench_0123456789abcdef0123456789abcdef', 'sha256'), 'hex'),
       to_timestamp(t + 2)
  FROM (SELECT n, 1767225600 + n / 100 AS t,
               format('{"id":"evt_%s","object":"event","api_version":"2025-03-31.basil","created":%s,'
                      '"data":{"object":{"id":"in_%s","object":"invoice","amount_due":2000,"amount_paid":2000,'
                      '"amount_remaining":0,"billing_reason":"subscription_cycle","collection_method":"charge_automatically",'
                      '"currency":"usd","customer":"cus_%s","customer_email":"user%s@example.com","customer_name":"Bench User",'
                      '"lines":{"object":"list","data":[{"id":"il_%s","object":"line_item","amount":2000,"currency":"usd",'
                      '"description":"1 x Pro (at $20.00 / month)","period":{"end":1769904000,"start":1767225600},'
                      '"pricing":{"price_details":{"price":"price_pro","product":"prod_pro"},"type":"price_details",'
                      '"unit_amount_decimal":"2000"},"quantity":1}],"has_more":false,"url":"/v1/invoices/in_%s/lines"},'
                      '"parent":{"subscription_details":{"subscription":"sub_%s"},"type":"subscription_details"},'
                      '"period_end":1767225600,"period_start":1764547200,"status":"paid","subtotal":2000,"total":2000}},'
                      '"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"invoice.paid"}',
                      CASE WHEN n % 10 = 0 THEN n - 5 ELSE n END, 1767225600 + n / 100, n, n % 5000, n % 5000, n, n, n % 5000)
                 AS payload
          FROM generate_series(1, :ndeliveries) n) s;
ANALYZE bench_deliveries;

-- The baseline: what a careful app would write in plpgsql with pgcrypto,
-- storing the same columns into a table shaped like pgext.webhook_events
-- (same indexes), so only the code path differs.
CREATE TABLE bench_events (LIKE pgext.webhook_events INCLUDING ALL);
-- The floor: the same insert with no verification at all (what storing costs).
CREATE TABLE floor_events (LIKE pgext.webhook_events INCLUDING ALL);

CREATE FUNCTION bench_ingest_plpgsql(payload text, signature text, received_at timestamptz)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  t bigint;
  v1 text[] := '{}';
  part text;
  secret text;
  expected text;
  ev jsonb;
BEGIN
  FOREACH part IN ARRAY string_to_array(signature, ',') LOOP
    IF split_part(part, '=', 1) = 't' THEN
      t := split_part(part, '=', 2)::bigint;
    ELSIF split_part(part, '=', 1) = 'v1' THEN
      v1 := v1 || split_part(part, '=', 2);
    END IF;
  END LOOP;
  IF t IS NULL OR cardinality(v1) = 0 THEN
    RETURN 'bad_signature';
  END IF;
  secret := pgext.secret_get('webhook:stripe');
  expected := encode(hmac(t || '.' || payload, secret, 'sha256'), 'hex');
  IF NOT expected = ANY (v1) THEN
    RETURN 'bad_signature';
  END IF;
  IF abs(extract(epoch FROM received_at) - t) > 300 THEN
    RETURN 'stale';
  END IF;
  BEGIN
    ev := payload::jsonb;
  EXCEPTION WHEN others THEN
    RETURN 'malformed';
  END;
  IF ev->>'id' IS NULL OR ev->>'type' IS NULL THEN
    RETURN 'malformed';
  END IF;
  IF (ev->>'livemode')::boolean IS DISTINCT FROM false THEN
    RETURN 'livemode_mismatch';
  END IF;
  INSERT INTO bench_events (source, event_id, type, object_id, created, livemode, payload, received_at, status)
  VALUES ('stripe', ev->>'id', ev->>'type', ev#>>'{data,object,id}', to_timestamp((ev->>'created')::bigint),
          false, ev, received_at, 'pending')
  ON CONFLICT DO NOTHING;
  RETURN CASE WHEN FOUND THEN 'accepted' ELSE 'duplicate' END;
END
$$;
