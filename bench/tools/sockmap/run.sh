#!/bin/bash
# Runs inside a fresh network namespace with only loopback:
#   unshare --net --mount --pid --fork --mount-proc --kill-child -- ./run.sh
set -e
ip link set lo up
B=${SKMAP:-$(dirname "$0")/skmap}
$B backend 127.0.0.1:8080 &
$B splice 127.0.0.1:9001 127.0.0.1:8080 &
$B sockmap 127.0.0.1:9002 127.0.0.1:8080 &
sleep 0.5
for r in $(seq ${ROUNDS:-2}); do
  for mode in ka nc; do
    for a in 127.0.0.1:8080 127.0.0.1:9001 127.0.0.1:9002; do
      echo -n "$mode "; $B load $a ${DUR:-3s} 8 $mode
    done
  done
  for a in 127.0.0.1:8080 127.0.0.1:9001 127.0.0.1:9002; do
    $B bulk $a ${MB:-256}
  done
done
