"""A checker that does not trust sessionflow: it reads the input and every
output topic back with confluent-kafka (read_committed) and checks the
promises of docs/outputs.md from the records alone.

Usage: check_outputs.py BROKERS INPUT_TOPIC REPLAY_METADATA_JSONL
                        [--allow-exact-repeats] [--report OUT_JSON]

Outputs must be JSON (encoding.output = "json"). Checks:

- accounting, from the broker's records: every input record is exactly one
  of: on the timeline (its `input` position), a dead letter (its `dlq.*`
  position headers), a duplicate of an earlier input event of its session
  (same session_id and event_id) that is on the timeline, or an event of a
  session whose erasure is in the input; and
  consumed = timeline + dead letters + duplicates + erased;
- no input position on the timeline twice, none both on the timeline and
  dead-lettered;
- per session, timeline `seq` runs 1, 2, 3, ... in log order without gaps;
- per session, metadata `version` runs 1, 2, 3, ... in log order without
  gaps, and each record equals the record of the same version in the
  offline replay of the same input (`sessionflow replay`, one partition:
  the same order as the daemon's single input partition);
- repeats: a record that appears twice must be byte-identical to its first
  copy. Without --allow-exact-repeats any repeat fails. With it (the
  embedded broker, which shows the records of aborted transactions to
  read_committed readers), exact copies are collapsed and counted, but each
  group of copies must be one contiguous run of records in its partition
  (an aborted transaction's records are written together); a lone copy in
  the middle of other records fails.

Exits 1 and prints every failure (up to 20) when a check fails.
"""
import json
import sys
from collections import defaultdict

from confluent_kafka import Consumer, KafkaError, TopicPartition

TIMELINE, METADATA, DLQ = "cc.sessions.timeline", "cc.sessions.metadata", "cc.events.dlq"


def read_topic(brokers, topic):
    """Every committed record of a topic: (partition, offset, key, value, headers)."""
    consumer = Consumer({
        "bootstrap.servers": brokers,
        "group.id": f"checker-{topic}",
        "isolation.level": "read_committed",
        "enable.partition.eof": True,
        "enable.auto.commit": False,
    })
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    records, at_end, idle = [], set(), 0
    while len(at_end) < len(partitions) and idle < 150:
        m = consumer.poll(0.2)
        if m is None:
            idle += 1
            continue
        idle = 0
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                at_end.add(m.partition())
                continue
            raise RuntimeError(f"{topic}: {m.error()}")
        headers = {k: (v.decode() if v is not None else None) for k, v in (m.headers() or [])}
        records.append((m.partition(), m.offset(), m.key(), m.value(), headers))
    consumer.close()
    if len(at_end) < len(partitions):
        raise RuntimeError(f"{topic}: did not reach the end of every partition")
    return records


class Checker:
    def __init__(self, allow_repeats):
        self.allow_repeats = allow_repeats
        self.failures = []
        self.repeats = defaultdict(int)

    def fail(self, text):
        self.failures.append(text)

    def collapse(self, topic, records, identity):
        """The records with exact repeats removed (see the module doc)."""
        first = {}
        unique, copies = [], []
        for index, record in enumerate(records):
            ident = identity(record)
            if ident in first:
                original = records[first[ident]]
                if original[3] != record[3]:
                    self.fail(f"{topic}: two different records for {ident}: offsets {original[1]} and {record[1]}")
                    continue
                copies.append(index)
                self.repeats[topic] += 1
            else:
                first[ident] = index
                unique.append(record)
        if copies and not self.allow_repeats:
            self.fail(f"{topic}: {len(copies)} records shown twice (first at offset {records[copies[0]][1]})")
        if copies and self.allow_repeats:
            self.check_contiguous(topic, records, copies, first, identity)
        return unique

    def check_contiguous(self, topic, records, copies, first, identity):
        """Copies must form runs whose originals also form runs of the same
        length: an aborted transaction and its retry, not a stray double."""
        runs, run = [], [copies[0]]
        for index in copies[1:]:
            same_partition = records[index][0] == records[run[-1]][0]
            if same_partition and index == run[-1] + 1:
                run.append(index)
            else:
                runs.append(run)
                run = [index]
        runs.append(run)
        for run in runs:
            originals = [first[identity(records[i])] for i in run]
            if originals != list(range(originals[0], originals[0] + len(run))):
                where = [records[i][1] for i in run]
                self.fail(f"{topic}: repeated records at offsets {where} are not a copy of one contiguous run")


def main(argv):
    if len(argv) < 4:
        print(__doc__)
        return 2
    brokers, input_topic, replay_path = argv[1], argv[2], argv[3]
    allow = "--allow-exact-repeats" in argv
    report_path = argv[argv.index("--report") + 1] if "--report" in argv else None
    check = Checker(allow)

    inputs = read_topic(brokers, input_topic)
    timeline_raw = read_topic(brokers, TIMELINE)
    metadata_raw = read_topic(brokers, METADATA)
    dlq_raw = read_topic(brokers, DLQ)

    def timeline_identity(r):
        v = json.loads(r[3])
        return (v["session_id"], v["seq"])

    timeline = [json.loads(r[3]) for r in check.collapse(TIMELINE, timeline_raw, timeline_identity)]
    live_metadata = [r for r in metadata_raw if r[3] is not None]
    tombstones = {r[2].decode() for r in metadata_raw if r[3] is None}

    def metadata_identity(r):
        v = json.loads(r[3])
        return (v["session_id"], v["version"])

    metadata = [json.loads(r[3]) for r in check.collapse(METADATA, live_metadata, metadata_identity)]

    def dlq_identity(r):
        h = r[4]
        return (h.get("dlq.topic"), h.get("dlq.partition"), h.get("dlq.offset"), h.get("dlq.reason"))

    dlq = check.collapse(DLQ, dlq_raw, dlq_identity)

    # Where each input record went.
    on_timeline = defaultdict(int)
    for t in timeline:
        position = (t["input"]["topic"], t["input"]["partition"], t["input"]["offset"])
        on_timeline[position] += 1
    dead = defaultdict(int)
    for (_, _, _, _, h) in dlq:
        if "dlq.topic" in h:
            dead[(h["dlq.topic"], int(h["dlq.partition"]), int(h["dlq.offset"]))] += 1
    for position, n in list(on_timeline.items()) + list(dead.items()):
        if n > 1:
            check.fail(f"input {position} is on an output {n} times")
    for position in on_timeline:
        if position in dead:
            check.fail(f"input {position} is both on the timeline and a dead letter")

    # Erased sessions and event identities, from the input itself.
    events = {}
    erased = set()
    for (partition, offset, _, value, _) in inputs:
        try:
            v = json.loads(value)
            events[(input_topic, partition, offset)] = (v["session_id"], v["event_id"])
            if v.get("type") == "session.erased":
                erased.add(v["session_id"])
        except Exception:  # noqa: BLE001 - undecodable input: a dead letter
            pass
    # Repartitioned input comes back from the repartition topic: its records
    # name it as their input; map them to their event identity too.
    seen_events = {}
    for t in timeline:
        seen_events.setdefault((t["session_id"], t["event_id"]), t)
    consumed = len(inputs)
    n_timeline = n_dead = n_duplicates = n_erased = 0
    for (partition, offset, _, _, _) in inputs:
        position = (input_topic, partition, offset)
        if position in on_timeline:
            n_timeline += 1
        elif position in dead:
            n_dead += 1
        elif position in events and events[position] in seen_events:
            n_duplicates += 1
        elif position in events and events[position][0] in erased:
            n_erased += 1
        else:
            check.fail(f"input {position} {events.get(position)} is nowhere: not on the timeline, not a dead letter, "
                       "not a duplicate of an event on the timeline, not of an erased session")
    # Records that came through the repartition topic.
    n_timeline += sum(1 for t in timeline if t["input"]["topic"] != input_topic)
    n_dead += sum(1 for p in dead if p[0] != input_topic)
    if consumed != n_timeline + n_dead + n_duplicates + n_erased:
        check.fail(f"accounting: consumed {consumed} != timeline {n_timeline} + dead letters {n_dead} "
                   f"+ duplicates {n_duplicates} + erased {n_erased}")

    by_session = defaultdict(list)
    for t in timeline:
        by_session[t["session_id"]].append(t["seq"])
    for session, seqs in by_session.items():
        if seqs != list(range(1, len(seqs) + 1)):
            check.fail(f"timeline {session}: seq {seqs[:12]} is not 1, 2, 3, ...")

    replay = defaultdict(dict)
    with open(replay_path) as f:
        for line in f:
            if line.strip():
                v = json.loads(line)
                if "version" in v:  # tombstones have none
                    replay[v["session_id"]][v["version"]] = v
    versions = defaultdict(list)
    for m in metadata:
        versions[m["session_id"]].append(m["version"])
        expected = replay.get(m["session_id"], {}).get(m["version"])
        if expected is None:
            check.fail(f"metadata {m['session_id']} version {m['version']}: not in the offline replay")
        elif expected != m:
            diff = sorted(k for k in set(expected) | set(m) if expected.get(k) != m.get(k))
            check.fail(f"metadata {m['session_id']} version {m['version']}: differs from the offline replay in {diff}")
    for session, vs in versions.items():
        if vs != list(range(1, len(vs) + 1)):
            check.fail(f"metadata {session}: versions {vs[:12]} are not 1, 2, 3, ...")
    for session in tombstones:
        if session not in erased:
            check.fail(f"metadata {session}: a tombstone for a session the input never erased")

    report = {
        "consumed": consumed, "timeline": n_timeline, "dead_letters": n_dead, "duplicates": n_duplicates,
        "erased": n_erased, "sessions": len(by_session), "metadata_records": len(metadata),
        "repeats_collapsed": dict(check.repeats), "failures": check.failures,
    }
    if report_path:
        with open(report_path, "w") as f:
            json.dump(report, f)
    if check.failures:
        for text in check.failures[:20]:
            print("FAIL", text)
        return 1
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
