"""Runs the examples of a Markdown page, as the `analytics` test does.

    doc_examples.py sql PAGE DIR
        Runs, with DuckDB and DIR as the working directory, every ```sql
        block of PAGE whose first line is `-- name: NAME`, in page order, and
        prints {NAME: {"columns": [...], "rows": [[...], ...]}} as JSON.

    doc_examples.py python PAGE FILE ARGS...
        Runs the ```python block of PAGE whose first line is `# FILE...`
        as a script with ARGS, passing its output and exit status through.
"""

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks(page, language):
    text = Path(page).read_text(encoding="utf-8")
    return [body for lang, body in FENCE.findall(text) if lang == language]


def run_sql(page, directory):
    import duckdb  # noqa: PLC0415 (only this mode needs it)

    con = duckdb.connect()
    con.execute(f"SET file_search_path = '{Path(directory).resolve()}'")
    results = {}
    for body in blocks(page, "sql"):
        first = body.splitlines()[0]
        if not first.startswith("-- name: "):
            continue
        name = first.removeprefix("-- name: ").strip()
        cursor = con.execute(body)
        columns = [d[0] for d in cursor.description] if cursor.description else []
        rows = [[json_value(v) for v in row] for row in cursor.fetchall()] if columns else []
        results[name] = {"columns": columns, "rows": rows}
    if not results:
        sys.exit(f"{page}: no ```sql block starts with `-- name:`")
    print(json.dumps(results))


def json_value(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def run_python(page, file, args):
    wanted = [b for b in blocks(page, "python") if b.startswith(f"# {file}")]
    if len(wanted) != 1:
        sys.exit(f"{page}: {len(wanted)} ```python blocks start with `# {file}`, expected one")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / file
        script.write_text(wanted[0], encoding="utf-8")
        sys.exit(subprocess.run([sys.executable, str(script), *args]).returncode)


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "sql":
        run_sql(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 4 and sys.argv[1] == "python":
        run_python(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
