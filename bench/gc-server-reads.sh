#!/usr/bin/env bash
# Run: bash bench/gc-server-reads.sh (after a Release build of src/Wardline; needs wrk). Results: bench/results/gc-server-reads.txt.
# A/B: the server's read-by-id throughput with workstation GC (DOTNET_gcServer=0) and server GC (the runtimeconfig's), same store.
set -euo pipefail
cd /work/main
W=/tmp/gcab; rm -rf $W; mkdir -p $W
cp -r src/Wardline/bin/Release/net10.0 $W/bin
grep -n '"System.GC.Server"' $W/bin/wardline.runtimeconfig.json
dotnet $W/bin/wardline.dll demo --data $W/data --patients 300 --port 5491 > $W/demo.out 2>&1 &
DEMO=$!
for _ in $(seq 1 600); do grep -q "is serving" $W/demo.out 2>/dev/null && break; sleep 1; done
kill $DEMO; wait $DEMO 2>/dev/null || true
TOKEN=$(dotnet $W/bin/wardline.dll token --data $W/data --user cmo.adams --minutes 120 | tail -1 | tr -d '[:space:]')
serve() { # gcServer
  WARDLINE__Access__RateLimits__UserPerMinute=0 DOTNET_gcServer=$1 dotnet $W/bin/wardline.dll serve --data $W/data --urls http://127.0.0.1:5492 > $W/serve-$1.out 2>&1 &
  SERVER=$!
  for _ in $(seq 1 120); do curl -sf -o /dev/null http://127.0.0.1:5492/fhir/metadata && break; sleep 1; done
}
serve 1
curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:5492/fhir/Observation?_count=1000" | python3 -c 'import sys,json; [print("Observation/"+e["resource"]["id"]) for e in json.load(sys.stdin).get("entry",[])]' > $W/ids.txt
kill $SERVER; wait $SERVER 2>/dev/null || true
for round in 1 2; do
  for gc in 0 1; do
    serve $gc
    WL_TOKEN=$TOKEN WL_IDS=$W/ids.txt wrk -t2 -c32 -d10s -s bench/lua/read.lua http://127.0.0.1:5492 > /dev/null
    exec 9>>/tmp/wl.lock; flock 9
    r=$(WL_TOKEN=$TOKEN WL_IDS=$W/ids.txt wrk -t2 -c32 -d15s -s bench/lua/read.lua http://127.0.0.1:5492 | grep '^WL ' || true)
    flock -u 9; exec 9>&-
    rss=$(ps -o rss= -p $SERVER)
    echo "gcServer=$gc round $round: $r rss_kib=$rss"
    kill $SERVER; wait $SERVER 2>/dev/null || true
  done
done
