#!/bin/sh
# The on_start hook (stagely.yaml): what a migration or seed step would do, once the services are up.
set -eu
echo "{\"seeded\": true, \"pull_request\": \"$1\", \"at\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"}" > /data/seed.json
echo "seeded /data/seed.json for pull request $1"
