#!/usr/bin/env bash
# A local Kafka-protocol broker to run `deferlog run` against by hand:
# starts tansu on 127.0.0.1:9092 (in memory), creates the topic `mail` with 6
# partitions, and feeds it generated Postfix traffic through deferlog's producer
# (keyed by MTA host). Then, in another terminal:
#
#   deferlog run --config deploy/config/deferlog.toml
#   deferlog report hourly --data archive
#
# Usage: deploy/local-broker.sh [LINES]     (default 200000; Ctrl-C stops the broker)
# The deferlog binary it feeds with: $DEFERLOG, else target/release/deferlog, else
# target/debug/deferlog; with none built it builds the release one first (about 20
# minutes on 2 cores the first time). PORT picks another port than 9092.
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-200000}
port=${PORT:-9092}
tansu=$(scripts/install-tansu)
bin=${DEFERLOG:-}
if [ -z "$bin" ]; then
    for b in target/release/deferlog target/debug/deferlog; do
        if [ -x "$b" ]; then bin=$b; break; fi
    done
fi
if [ -z "$bin" ]; then
    echo "local-broker.sh: no deferlog built yet: cargo build --release (about 20 minutes the first time)" >&2
    cargo build --release
    bin=target/release/deferlog
fi
# Another listener on the port (a real Kafka, a tunnel) must not get generated
# traffic: refuse a port that already answers.
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "local-broker.sh: something already listens on 127.0.0.1:$port; PORT=... picks another port" >&2
    exit 1
fi
"$tansu" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine memory://tansu/ &
broker=$!
trap 'kill $broker 2>/dev/null' EXIT
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    if ! kill -0 $broker 2>/dev/null; then
        echo "local-broker.sh: tansu did not start" >&2
        exit 1
    fi
    sleep 0.2
done
"$bin" gen --lines "$lines" --seed 7 | "$bin" produce --brokers "127.0.0.1:$port" --topic mail --create-partitions 6 -
echo "broker on 127.0.0.1:$port with $lines lines in topic mail; Ctrl-C to stop it"
wait $broker
