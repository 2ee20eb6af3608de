#!/bin/sh
# accepted [config.process.rlimits-duplicate-error] invalid DuplicateRlimit: runc
# config.json names host paths as @PROBE@ (the probe, run as a hook) and @WORK@
# (a private directory the run makes); the harness fills them in.
exec harness fuzz --replay "$(dirname "$0")" --runtime 'runc=/usr/sbin/runc'
