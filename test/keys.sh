#!/bin/sh
# Test-only master keys for pgext.master_key_command ("<version>:<64 hex>" lines).
# NEVER use these outside tests: anyone with this repository can read them.
echo "1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
echo "2:202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
