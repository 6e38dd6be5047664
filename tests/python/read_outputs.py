"""An independent client reading sessionflow's output topics.

Usage: read_outputs.py BROKERS SCHEMA_DIR TIMELINE_ID METADATA_ID OUT_JSON

Consumes cc.sessions.timeline, cc.sessions.metadata and cc.events.dlq with
confluent-kafka (read_committed, from the beginning to the end of every
partition). Output values must be Confluent-framed Avro (magic byte 0, the
4-byte schema id given) and are decoded with fastavro and the shipped
schemas. Writes, as JSON: per session the decoded records in partition
order, the number of metadata tombstones, and dead letters per dlq.reason.
Exits non-zero on a framing or decoding error.
"""
import json
import struct
import sys
from io import BytesIO
from pathlib import Path

import fastavro
from confluent_kafka import Consumer, KafkaError, TopicPartition

sys.path.insert(0, str(Path(__file__).parent))
from check_avro import json_text_fields, load_schemas, to_json_form  # noqa: E402


def read_topic(brokers, topic):
    consumer = Consumer({
        "bootstrap.servers": brokers,
        "group.id": f"independent-{topic}",
        "isolation.level": "read_committed",
        "enable.partition.eof": True,
        "enable.auto.commit": False,
    })
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    messages, at_end = [], set()
    idle = 0
    while len(at_end) < len(partitions) and idle < 100:
        m = consumer.poll(0.2)
        if m is None:
            idle += 1
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                at_end.add(m.partition())
                continue
            raise RuntimeError(m.error())
        messages.append(m)
    consumer.close()
    if len(at_end) < len(partitions):
        raise RuntimeError(f"{topic}: end of partitions {sorted(set(partitions) - at_end)} not reached")
    return messages


def decode(message, schema, schema_id, json_fields):
    value = message.value()
    magic, got_id = struct.unpack(">bI", value[:5])
    if magic != 0 or got_id != schema_id:
        raise ValueError(f"{message.topic()}[{message.partition()}]@{message.offset()}: framing {magic}/{got_id}, expected 0/{schema_id}")
    record = fastavro.schemaless_reader(BytesIO(value[5:]), schema)
    return to_json_form(record, json_fields)


def main():
    brokers, schema_dir, timeline_id, metadata_id, out = sys.argv[1:6]
    schemas = load_schemas(schema_dir)
    raw = {name: json.loads((Path(schema_dir) / f"{name}.avsc").read_text()) for name in ("timeline", "metadata")}
    result = {"timeline": {}, "metadata": {}, "tombstones": 0, "dead_letters": {}}
    for kind, topic, schema_id in (("timeline", "cc.sessions.timeline", int(timeline_id)), ("metadata", "cc.sessions.metadata", int(metadata_id))):
        fields = json_text_fields(raw[kind])
        for m in read_topic(brokers, topic):
            if m.value() is None:
                result["tombstones"] += 1
                continue
            record = decode(m, schemas[kind], schema_id, fields)
            if m.key().decode() != record["session_id"]:
                raise ValueError(f"{topic}@{m.offset()}: key {m.key()!r} is not the session_id {record['session_id']}")
            result[kind].setdefault(record["session_id"], []).append(record)
    for m in read_topic(brokers, "cc.events.dlq"):
        reason = dict(m.headers() or []).get("dlq.reason", b"(none)").decode()
        result["dead_letters"][reason] = result["dead_letters"].get(reason, 0) + 1
    Path(out).write_text(json.dumps(result))
    print(f"read {sum(map(len, result['timeline'].values()))} timeline and {sum(map(len, result['metadata'].values()))} metadata records, "
          f"{result['tombstones']} tombstones, {sum(result['dead_letters'].values())} dead letters")


if __name__ == "__main__":
    main()
