SELECT (pgext.webhook_ingest('stripe', d.payload, d.signature, d.received_at)).status
  FROM bench_deliveries d WHERE d.n = (SELECT nextval('bench_seq') % :ndeliveries + 1);
