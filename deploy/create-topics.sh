#!/usr/bin/env bash
# Creates sessionflow's topics on an Apache Kafka cluster with Kafka's own
# tool. Every topic needs the input topic's partition count.
#
#   BOOTSTRAP=kafka-1:9093 PARTITIONS=12 COMMAND_CONFIG=client.properties ./create-topics.sh
set -euo pipefail

: "${BOOTSTRAP:?set BOOTSTRAP, e.g. kafka-1:9093}"
: "${PARTITIONS:?set PARTITIONS to the partition count of the input topic}"
GROUP="${GROUP:-sessionflow}"              # kafka.group_id: names the internal topics
REPLICATION="${REPLICATION:-3}"
# Exactly-once producers write with acks=all: two in-sync replicas when
# there are three or more, else all of them.
MIN_ISR="${MIN_ISR:-$(( REPLICATION > 2 ? 2 : REPLICATION ))}"
KAFKA_TOPICS="${KAFKA_TOPICS:-kafka-topics.sh}"
extra=()
if [[ -n "${COMMAND_CONFIG:-}" ]]; then extra=(--command-config "$COMMAND_CONFIG"); fi

create() { # name, then --config key=value pairs
  local name="$1"; shift
  "$KAFKA_TOPICS" --bootstrap-server "$BOOTSTRAP" "${extra[@]}" --create --if-not-exists \
    --topic "$name" --partitions "$PARTITIONS" --replication-factor "$REPLICATION" \
    --config "min.insync.replicas=$MIN_ISR" "$@"
}

# Outputs.
create cc.sessions.timeline --config cleanup.policy=delete --config retention.ms=604800000
create cc.sessions.metadata --config cleanup.policy=compact --config min.compaction.lag.ms=3600000
create cc.events.dlq --config cleanup.policy=delete --config retention.ms=2592000000
# Internal: the changelog is the durable copy of the state (never delete it;
# its records may be larger than outputs: a session's entry, and at least
# once its prior value); the repartition topic only carries records between
# instances; each process claims its kafka.instance_id on the instances
# topic (partition 0), so two processes never run with one id.
create "$GROUP-sessionflow-changelog" --config cleanup.policy=compact --config max.message.bytes=8388608
create "$GROUP-sessionflow-repartition" --config cleanup.policy=delete --config retention.ms=86400000
create "$GROUP-sessionflow-instances" --config cleanup.policy=compact
