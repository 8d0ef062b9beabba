-- Server specs: pgext.server_spec_check(jsonb) and the cloud-init user_data
-- rules (pgext.server_user_data_check(bytea) for raw bytes).  Stateless:
-- nothing here reads or writes a table.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;

-- a valid spec with the given user_data (NULL: a spec without user_data)
CREATE FUNCTION pg_temp.ud(u text) RETURNS boolean LANGUAGE sql AS $$
  SELECT pgext.server_spec_check(pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
    'server_type', 'cx22', 'image', 'ubuntu-24.04', 'locations', pg_catalog.jsonb_build_array('fsn1'),
    'user_data', u))) IS NOT NULL
$$;
-- a valid spec with one field replaced or added
CREATE FUNCTION pg_temp.sp(k text, v jsonb) RETURNS jsonb LANGUAGE sql AS $$
  SELECT pgext.server_spec_check('{"server_type": "cx22", "image": "ubuntu-24.04", "locations": ["fsn1"]}'::jsonb
                                 || pg_catalog.jsonb_build_object(k, v))
$$;

-- Accepted: the spec comes back unchanged
SELECT pgext.server_spec_check('{"server_type": "cx22", "image": "ubuntu-24.04", "locations": ["fsn1"]}');
SELECT pgext.server_spec_check($j${
  "server_type": "cpx31", "image": "debian-12", "locations": ["fsn1", "nbg1", "hel1"],
  "user_data": "#cloud-config\npackages:\n  - nginx\nruncmd:\n  - [systemctl, enable, --now, nginx]\n",
  "labels": {"app": "agent", "tier": "", "example.com/role": "web", "example.com/managed-by": "me"},
  "health": {"url": "http://{ipv4}:8080/health", "interval": "30s"},
  "ssh_keys": ["deploy", 4711]}$j$);
-- null for an optional field is the same as leaving it out; health may be a list
SELECT pgext.server_spec_check('{"server_type": "cx22", "image": "12345", "locations": ["fsn1"], "user_data": null, "labels": null, "health": null, "ssh_keys": null}') IS NOT NULL AS ok;
SELECT pg_temp.sp('health', '[{"url": "http://{ipv4}/a"}, {"url": "http://{ipv4}/b"}]') IS NOT NULL AS ok;

-- The spec itself
SELECT pgext.server_spec_check(NULL);
SELECT pgext.server_spec_check('[]');
SELECT pgext.server_spec_check('"cx22"');
SELECT pgext.server_spec_check('{"image": "ubuntu-24.04", "locations": ["fsn1"]}');
SELECT pgext.server_spec_check('{"server_type": "cx22", "locations": ["fsn1"]}');
SELECT pgext.server_spec_check('{"server_type": "cx22", "image": "ubuntu-24.04"}');
SELECT pg_temp.sp('datacenter', '"fsn1-dc14"');
SELECT pg_temp.sp('location', '"fsn1"');
SELECT pg_temp.sp('name', '"my-server"');
-- server_type, image, locations: non-empty, lowercase [a-z0-9._-], at most 63
SELECT pg_temp.sp('server_type', '""');
SELECT pg_temp.sp('server_type', '"CX22"');
SELECT pg_temp.sp('server_type', '22');
SELECT pg_temp.sp('server_type', pg_catalog.to_jsonb(pg_catalog.repeat('c', 64)));
SELECT pg_temp.sp('server_type', pg_catalog.to_jsonb(pg_catalog.repeat('c', 63))) IS NOT NULL AS ok;
SELECT pg_temp.sp('image', '"ubuntu 24.04"');
SELECT pg_temp.sp('image', '"-debian"');
SELECT pg_temp.sp('locations', '"fsn1"');
SELECT pg_temp.sp('locations', '[]');
SELECT pg_temp.sp('locations', '["fsn1", "nbg1", "fsn1"]');
SELECT pg_temp.sp('locations', '["fsn1", 2]');
SELECT pg_temp.sp('locations', '["fsn1", "nbg1/dc3"]');
SELECT pg_temp.sp('locations', (SELECT pg_catalog.jsonb_agg('l' || i) FROM pg_catalog.generate_series(1, 11) i));
SELECT pg_temp.sp('locations', (SELECT pg_catalog.jsonb_agg('l' || i) FROM pg_catalog.generate_series(1, 10) i)) IS NOT NULL AS ok;

-- Labels (Hetzner's rules; pgext's own keys reserved)
SELECT pg_temp.sp('labels', '["app"]');
SELECT pg_temp.sp('labels', '{"app": 1}');
SELECT pg_temp.sp('labels', '{"": "x"}');
SELECT pg_temp.sp('labels', '{"-app": "x"}');
SELECT pg_temp.sp('labels', '{"app!": "x"}');
SELECT pg_temp.sp('labels', pg_catalog.jsonb_build_object(pg_catalog.repeat('k', 64), 'x'));
SELECT pg_temp.sp('labels', pg_catalog.jsonb_build_object(pg_catalog.repeat('k', 63), pg_catalog.repeat('v', 63))) IS NOT NULL AS ok;
SELECT pg_temp.sp('labels', pg_catalog.jsonb_build_object('app', pg_catalog.repeat('v', 64)));
SELECT pg_temp.sp('labels', '{"app": "web server"}');
SELECT pg_temp.sp('labels', '{"app": "web-"}');
SELECT pg_temp.sp('labels', '{"App_1.x": "V-1_a.B"}') IS NOT NULL AS ok;
SELECT pg_temp.sp('labels', '{"Example.com/app": "x"}');
SELECT pg_temp.sp('labels', '{"/app": "x"}');
SELECT pg_temp.sp('labels', '{"example..com/app": "x"}');
SELECT pg_temp.sp('labels', '{"example.com/": "x"}');
SELECT pg_temp.sp('labels', '{"a/b/c": "x"}');
SELECT pg_temp.sp('labels', pg_catalog.jsonb_build_object(pg_catalog.repeat('a', 63) || '.' || pg_catalog.repeat('b', 63) || '.' || pg_catalog.repeat('c', 63) || '.' || pg_catalog.repeat('d', 61) || '/app', 'x')) IS NOT NULL AS prefix_253_ok;
SELECT pg_temp.sp('labels', pg_catalog.jsonb_build_object(pg_catalog.repeat('a', 63) || '.' || pg_catalog.repeat('b', 63) || '.' || pg_catalog.repeat('c', 63) || '.' || pg_catalog.repeat('d', 62) || '/app', 'x'));
SELECT pg_temp.sp('labels', '{"managed-by": "me"}');
SELECT pg_temp.sp('labels', '{"pgext-account": "00000000-0000-0000-0000-000000000000"}');
SELECT pg_temp.sp('labels', '{"pgext-server": "1"}');
SELECT pg_temp.sp('labels', '{"pgext-anything": "1"}');

-- health and ssh_keys
SELECT pg_temp.sp('health', '"http://x/health"');
SELECT pg_temp.sp('health', '{"path": "/health"}');
SELECT pg_temp.sp('health', '[{"url": "http://x/a"}, "http://x/b"]');
SELECT pg_temp.sp('ssh_keys', '"deploy"');
SELECT pg_temp.sp('ssh_keys', '["deploy", ""]');
SELECT pg_temp.sp('ssh_keys', '[0]');
SELECT pg_temp.sp('ssh_keys', '[1.5]');
SELECT pg_temp.sp('ssh_keys', '[true]');

-- user_data: the header
SELECT pg_temp.ud(E'#cloud-config\nruncmd:\n  - echo hello\n');
SELECT pg_temp.ud(E'#!/bin/bash\necho "anything: goes [here"\n');
SELECT pg_temp.ud(E'#cloud-config\n');
SELECT pg_temp.ud(E'#cloud-config   \r\npackages: [curl]\r\n');
SELECT pg_temp.ud(E'\uFEFF#cloud-config\nruncmd: []\n');
SELECT pg_temp.ud(E'\n#cloud-config\nruncmd: []\n');
SELECT pg_temp.ud(E' #cloud-config\n');
SELECT pg_temp.ud(E'runcmd:\n  - echo hello\n');
SELECT pg_temp.ud('');
SELECT pg_temp.ud(E'#cloud-config-archive\n- content: x\n');
SELECT pg_temp.ud(E'#include\nhttps://example.com/config\n');
SELECT pg_temp.sp('user_data', '{"runcmd": ["echo"]}');
-- size: 32768 bytes accepted, 32769 refused (the position is where the limit falls)
SELECT pg_temp.ud(E'#!/bin/sh\n' || pg_catalog.repeat(E'# padding padding padding padding padding padding\n', 655) || pg_catalog.repeat('#', 8));
SELECT pg_catalog.octet_length(E'#!/bin/sh\n' || pg_catalog.repeat(E'# padding padding padding padding padding padding\n', 655) || pg_catalog.repeat('#', 8)) AS bytes;
SELECT pg_temp.ud(E'#!/bin/sh\n' || pg_catalog.repeat(E'# padding padding padding padding padding padding\n', 655) || pg_catalog.repeat('#', 9));
SELECT pg_temp.ud(E'#cloud-config\n' || pg_catalog.repeat(E'# padding padding padding padding padding padding\n', 655) || pg_catalog.repeat('#', 4));
SELECT pg_temp.ud(E'#cloud-config\n' || pg_catalog.repeat(E'# padding padding padding padding padding padding\n', 655) || pg_catalog.repeat('#', 5));
-- multi-byte characters count as bytes (é is 2): 16384 of them after the header is too many
SELECT pg_temp.ud(E'#!\n' || pg_catalog.repeat('é', 16382) || 'x');
SELECT pg_temp.ud(E'#!\n' || pg_catalog.repeat('é', 16383));

-- UTF-8 (raw bytes: a jsonb string is always valid text)
SELECT pgext.server_user_data_check(pg_catalog.convert_to(E'#cloud-config\nfinal_message: "café ✓ 🚀"\n', 'UTF8'));
SELECT pgext.server_user_data_check(NULL);
SELECT pgext.server_user_data_check('\x23210a6563686f20ff0a'::bytea);      -- #!\necho \xff
SELECT pgext.server_user_data_check('\x23210a636166c30a'::bytea);          -- truncated 2-byte sequence
SELECT pgext.server_user_data_check('\x23210ac0af'::bytea);                -- overlong '/'
SELECT pgext.server_user_data_check('\x23210ae080af'::bytea);              -- overlong 3-byte
SELECT pgext.server_user_data_check('\x23210af08282ac'::bytea);            -- overlong 4-byte
SELECT pgext.server_user_data_check('\x23210aeda080'::bytea);              -- surrogate U+D800
SELECT pgext.server_user_data_check('\x23210af4908080'::bytea);            -- above U+10FFFF
SELECT pgext.server_user_data_check('\x23210af5808080'::bytea);            -- F5 lead byte
SELECT pgext.server_user_data_check('\x23210aefbfbf'::bytea);              -- U+FFFF: valid UTF-8
SELECT pgext.server_user_data_check('\x23210af48fbfbf'::bytea);            -- U+10FFFF: valid
SELECT pgext.server_user_data_check('\x23210a6869006869'::bytea);          -- NUL byte
SELECT pgext.server_user_data_check('\xefbbbf23636c6f75642d636f6e6669670a'::bytea);  -- BOM

-- YAML syntax errors name line and column
SELECT pg_temp.ud(E'#cloud-config\npackages: [curl, git\nruncmd: []\n');
SELECT pg_temp.ud(E'#cloud-config\nruncmd:\n  - echo one\n - echo two\n');
SELECT pg_temp.ud(E'#cloud-config\nwrite_files:\n\t- path: /x\n');
SELECT pg_temp.ud(E'#cloud-config\nfinal_message: "unclosed\n');
SELECT pg_temp.ud(E'#cloud-config\nruncmd: *nothing\n');
SELECT pg_temp.ud(E'#cloud-config\nruncmd: []\n---\npackages: []\n');
SELECT pg_temp.ud(E'#cloud-config\nfinal_message: !custom hello\n');
SELECT pg_temp.ud(E'#cloud-config\nfinal_message: !!binary aGVsbG8=\n');
-- the top level is a mapping (or empty)
SELECT pg_temp.ud(E'#cloud-config\n- runcmd\n- packages\n');
SELECT pg_temp.ud(E'#cloud-config\njust text\n');
SELECT pg_temp.ud(E'#cloud-config\n# only a comment\n');
SELECT pg_temp.ud(E'#cloud-config\n~\n');
-- top-level keys: cloud-init's, each once
SELECT pg_temp.ud(E'#cloud-config\npackages: [curl]\nruncm:\n  - echo hello\n');
SELECT pg_temp.ud(E'#cloud-config\nRuncmd: []\n');
SELECT pg_temp.ud(E'#cloud-config\nwrite_file:\n  - path: /x\n');
SELECT pg_temp.ud(E'#cloud-config\nssh_authorised_keys: []\n');
SELECT pg_temp.ud(E'#cloud-config\nfrobnicate: true\n');
SELECT pg_temp.ud(E'#cloud-config\n[a, b]: 1\n');
SELECT pg_temp.ud(E'#cloud-config\nruncmd: [a]\npackages: [b]\nruncmd: [c]\n');
SELECT pg_temp.ud(E'#cloud-config\nusers: [default]\ngroups: [admins]\ntimezone: UTC\nlocale: C.UTF-8\nhostname: agent\nfqdn: agent.example.com\nmanage_etc_hosts: true\napt: {preserve_sources_list: true}\nsnap: {commands: [snap install jq]}\nntp: {enabled: true}\nswap: {filename: /swap.img, size: auto}\nmounts: [[tmpfs, /tmp]]\npower_state: {mode: reboot}\nphone_home: {url: "http://x"}\nca_certs: {trusted: []}\nresolv_conf: {nameservers: [1.1.1.1]}\nrsyslog: {configs: []}\ngrowpart: {mode: auto}\nresize_rootfs: true\ndisk_setup: {}\nfs_setup: []\nkeyboard: {layout: us}\nsystem_info: {}\nmerge_how: list()+dict()\npackage_update: true\npackage_upgrade: true\npackage_reboot_if_required: true\nbootcmd: [echo boot]\nssh_pwauth: false\nssh_keys: {}\ndisable_root: true\nchpasswd: {expire: false}\npreserve_hostname: false\nyum_repos: {}\nfinal_message: done\n');
-- a YAML merge key is merged by cloud-init's loader, so it is allowed
SELECT pg_temp.ud(E'#cloud-config\n<<: {runcmd: [echo a]}\npackages: [curl]\n');
-- shapes of the common keys
SELECT pg_temp.ud(E'#cloud-config\nruncmd: echo hello\n');
SELECT pg_temp.ud(E'#cloud-config\nruncmd:\n');
SELECT pg_temp.ud(E'#cloud-config\nruncmd:\n  - echo ok\n  - echo key: value\n');
SELECT pg_temp.ud(E'#cloud-config\nbootcmd:\n  - [sh, -c, {x: 1}]\n');
SELECT pg_temp.ud(E'#cloud-config\npackages: curl\n');
SELECT pg_temp.ud(E'#cloud-config\npackages:\n  - curl\n  - [libpq5, "15.4-1"]\n  - apt: [git]\n');
SELECT pg_temp.ud(E'#cloud-config\nwrite_files:\n  path: /etc/x\n');
SELECT pg_temp.ud(E'#cloud-config\nwrite_files:\n  - path: /etc/a\n    content: a\n  - content: b\n    permissions: "0644"\n');
SELECT pg_temp.ud(E'#cloud-config\nwrite_files:\n  - /etc/a\n');
SELECT pg_temp.ud(E'#cloud-config\nwrite_files:\n  - path: [/etc/a]\n');
SELECT pg_temp.ud(E'#cloud-config\nwrite_files:\n  - path:\n');
SELECT pg_temp.ud(E'#cloud-config\nssh_authorized_keys: ssh-ed25519 AAAA\n');
SELECT pg_temp.ud(E'#cloud-config\nssh_authorized_keys:\n  - ssh-ed25519 AAAA a@b\n  - {key: x}\n');
-- line and column count characters, not bytes
SELECT pg_temp.ud(E'#cloud-config\nfinal_message: "héllo wörld" ]\n');
