INSERT INTO floor_events (source, event_id, type, created, livemode, payload, received_at, status)
SELECT 'stripe', j->>'id', j->>'type', d.received_at, false, j, d.received_at, 'pending'
  FROM bench_deliveries d, LATERAL (SELECT d.payload::jsonb AS j) p
 WHERE d.n = (SELECT nextval('bench_seq') % :ndeliveries + 1)
ON CONFLICT DO NOTHING;
