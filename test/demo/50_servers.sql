-- Servers: bob pays (his subscription from 30_webhooks is active), so he may
-- have a VPS.  pgext queues the work; the background worker claims it, calls
-- the Hetzner API and reports the answers.  Here psql plays that worker (the
-- reports below are simulated API responses); step 60 shows the real one.
\pset footer off
SELECT id AS bob FROM pgext.accounts WHERE external_id = 'bob' \gset
\echo '--- bob has access, so he may ask for a server (idempotent on his provision key)'
SELECT access FROM pgext.billing_access(:'bob');
SELECT pgext.server_request(:'bob', 'bob-agent-1', '{"server_type":"cx22","image":"ubuntu-24.04","locations":["fsn1","nbg1"],"user_data":"#cloud-config\npackages: [nginx]\nruncmd:\n  - systemctl enable --now nginx\n","labels":{"app":"agent"}}') AS srv \gset
SELECT pgext.server_request(:'bob', 'bob-agent-1', '{"server_type":"cx22","image":"ubuntu-24.04","locations":["fsn1","nbg1"],"user_data":"#cloud-config\npackages: [nginx]\nruncmd:\n  - systemctl enable --now nginx\n","labels":{"app":"agent"}}') = :srv AS same_server_again;
\echo '--- a typo in the cloud-config is refused before anything is queued'
\set ON_ERROR_STOP 0
SELECT pgext.server_request(:'bob', 'bob-agent-2', '{"server_type":"cx22","image":"ubuntu-24.04","locations":["fsn1"],"user_data":"#cloud-config\nruncm:\n  - echo hi\n"}');
\set ON_ERROR_STOP 1
\echo '--- the status: requested, and the queued work'
SELECT server, name, state, desired_state, why, next_action, attempts FROM pgext.server_status WHERE server = :srv;
\echo '--- the worker claims the work (SKIP LOCKED; a claim not reported within its lease is taken back)'
SELECT server, claim, action, name, location, attempts FROM pgext.server_claim('demo-worker') \gset
SELECT :server AS server, :claim AS claim, :'action' AS action, :'name' AS name, :'location' AS location;
\echo '--- simulated: Hetzner has no capacity in fsn1 (HTTP 412 resource_unavailable): the next location'
SELECT pgext.server_report(:srv, 'create', '{"http_status":412,"error":{"code":"resource_unavailable","message":"error during placement"}}', :claim);
SELECT claim, action, location FROM pgext.server_claim('demo-worker') \gset
SELECT :'action' AS action, :'location' AS location;
\echo '--- simulated: the create is accepted in nbg1; then its action finishes: active, and billing may start'
\echo '    (the spec has no health check; with one the server would wait in configuring for the first passing check)'
SELECT pgext.server_report(:srv, 'create', '{"http_status":201,"server":{"id":4242424,"name":"x","status":"initializing","public_net":{"ipv4":{"ip":"203.0.113.42"}},"datacenter":{"location":{"name":"nbg1"}}},"action":{"id":777001,"status":"running"}}', :claim);
SELECT claim, action FROM pgext.server_claim('demo-worker') \gset
SELECT pgext.server_report(:srv, 'poll_action', '{"http_status":200,"action":{"id":777001,"status":"success"}}', :claim);
SELECT server, state, state_since IS NOT NULL AS since, location, ipv4, active_since IS NOT NULL AS billing_may_start, why
  FROM pgext.server_status WHERE server = :srv;
SELECT from_state, to_state, reason, actor FROM pgext.server_history WHERE server_id = :srv ORDER BY id;
SELECT kind, server_id, until IS NOT NULL AS active_since_given, detail FROM pgext.outbox WHERE server_id = :srv ORDER BY id;
\echo '--- a direct UPDATE that skips the state machine is refused, even for the DBA'
\set ON_ERROR_STOP 0
UPDATE pgext.servers SET state = 'requested' WHERE id = :srv;
\set ON_ERROR_STOP 1
\echo '--- the policy and the clocks run in server_reconcile (the worker calls it): bob pays, so nothing changes'
SELECT pgext.server_reconcile() AS changed;
