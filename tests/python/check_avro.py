"""Independent check of sessionflow's Avro with fastavro.

Usage: check_avro.py SCHEMA_DIR [REPLAY_AVRO_DIR REPLAY_JSONL_DIR]

Parses every schema under SCHEMA_DIR with fastavro. With the two replay
directories, reads timeline.avro and metadata.avro (object container files),
validates each record against the shipped schema and compares it with the
same replay written as JSONL: the two encodings must carry the same values.
Prints one summary line; exits non-zero on any mismatch.
"""
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import fastavro
from fastavro.validation import validate


def load_schemas(schema_dir):
    schemas = {}
    for path in sorted(Path(schema_dir).glob("*.avsc")):
        schemas[path.stem] = fastavro.parse_schema(json.loads(path.read_text()))
    assert set(schemas) == {"event", "timeline", "metadata"}, sorted(schemas)
    return schemas


def json_text_fields(schema):
    """Names of fields marked as JSON text, at any depth."""
    found = set()

    def walk(node):
        if isinstance(node, dict):
            if node.get("sessionflow.encoding") == "json":
                found.add(node["name"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return found


def to_json_form(value, json_fields, key=None):
    """An Avro record as fastavro reads it, in the JSON form of the record."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if key in json_fields and isinstance(value, str):
        return json.loads(value)
    if isinstance(value, dict):
        return {k: to_json_form(v, json_fields, k) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json_form(v, json_fields, key) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def compare(avro_path, jsonl_path, schema, raw_schema):
    fields = json_text_fields(raw_schema)
    with open(avro_path, "rb") as fh:
        avro_records = list(fastavro.reader(fh))
    json_records = [json.loads(line) for line in Path(jsonl_path).read_text().splitlines() if line.strip()]
    json_records = [r for r in json_records if not r.get("tombstone")]
    assert len(avro_records) == len(json_records), (avro_path, len(avro_records), len(json_records))
    for i, (a, j) in enumerate(zip(avro_records, json_records)):
        validate(a, schema, raise_errors=True)
        got = to_json_form(a, fields)
        if got != j:
            diff = {k: (got.get(k), j.get(k)) for k in j if got.get(k) != j.get(k)}
            raise AssertionError(f"{avro_path} record {i} differs: {diff}")
    return len(avro_records)


def main():
    schema_dir = sys.argv[1]
    schemas = load_schemas(schema_dir)
    counts = {}
    if len(sys.argv) == 4:
        avro_dir, jsonl_dir = Path(sys.argv[2]), Path(sys.argv[3])
        for kind in ("timeline", "metadata"):
            raw = json.loads((Path(schema_dir) / f"{kind}.avsc").read_text())
            counts[kind] = compare(avro_dir / f"{kind}.avro", jsonl_dir / f"{kind}.jsonl", schemas[kind], raw)
    print(f"fastavro {fastavro.__version__}: {len(schemas)} schemas parsed; records matched: {counts}")


if __name__ == "__main__":
    main()
