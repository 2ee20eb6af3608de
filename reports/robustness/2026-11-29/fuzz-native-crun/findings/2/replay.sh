#!/bin/sh
# accepted [config.process.rlimits-duplicate-error] invalid DuplicateRlimit: crun
# config.json names host paths as @PROBE@ (the probe, run as a hook) and @WORK@
# (a private directory the run makes); the harness fills them in.
exec harness fuzz --replay "$(dirname "$0")" --hybrid-as-v1 --runtime 'crun=/usr/bin/crun'
