SELECT bench_ingest_plpgsql(d.payload, d.signature, d.received_at)
  FROM bench_deliveries d WHERE d.n = (SELECT nextval('bench_seq') % :ndeliveries + 1);
