"""`make demo-cli`: the standalone CLI end to end on this machine, no cluster, nothing mocked.

Starts PostgreSQL 15 and an S3 server (SeaweedFS) on 127.0.0.1, seeds a 200,000-row table, runs
`rivet run` (chunked, 2 workers, Parquet zstd) to S3, prints the manifest and `_SUCCESS`, runs
`rivet validate`, then stops what it started.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.demo.demo import seed
from tests.fixtures.databases import start_postgres
from tests.fixtures.objectstores import start_seaweedfs


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="rivet-demo-"))
    print(f"demo: starting PostgreSQL and SeaweedFS (S3) on 127.0.0.1 (work dir {work})", flush=True)
    pg = start_postgres()
    s3 = start_seaweedfs()
    try:
        seed(pg)
        s3.client().create_bucket(Bucket="lake")
        config = work / "rivet.yaml"
        config.write_text(
            f"""source:
  type: postgres
  url_env: DEMO_DATABASE_URL
exports:
  - name: orders
    table: public.orders
    mode: chunked
    chunk_column: id
    chunk_size: 25000
    parallel: 2
    format: parquet
    compression: zstd
    destination:
      type: s3
      bucket: lake
      prefix: "exports/{{date}}/{{export}}/"
      endpoint: {s3.endpoint}
      region: us-east-1
      access_key_env: DEMO_S3_KEY
      secret_key_env: DEMO_S3_SECRET
state:
  path: {work}/state.db
"""
        )
        env = {
            **os.environ,
            "DEMO_DATABASE_URL": pg.url,
            "DEMO_S3_KEY": s3.access_key,
            "DEMO_S3_SECRET": s3.secret_key,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        print(f"demo: $ rivet run -c {config} --validate", flush=True)
        run = subprocess.run(
            [sys.executable, "-m", "rivet", "run", "-c", str(config), "--validate"],
            env=env,
            capture_output=True,
            text=True,
        )
        print(run.stderr.strip().splitlines()[-1] if run.stderr.strip() else "", flush=True)
        if run.returncode != 0:
            print(run.stderr, file=sys.stderr)
            return run.returncode
        summary = json.loads(run.stdout)["exports"][0]
        prefix = summary["resolved_prefix"].split("lake/", 1)[1]
        obj = s3.client().get_object(Bucket="lake", Key=prefix + "manifest.json")["Body"].read().decode()
        marker = s3.client().get_object(Bucket="lake", Key=prefix + "_SUCCESS")["Body"].read().decode()
        doc = json.loads(obj)
        print(
            f"demo: manifest.json at {summary['resolved_prefix']} ({doc['part_count']} parts, {doc['row_count']} rows):"
        )
        shown = {
            **doc,
            "parts": doc["parts"][:2] + ([f"... {len(doc['parts']) - 2} more"] if len(doc["parts"]) > 2 else []),
        }
        print(json.dumps(shown, indent=2))
        print(f"demo: _SUCCESS = {marker.strip()}")
        print("demo: $ rivet validate", flush=True)
        val = subprocess.run(
            [sys.executable, "-m", "rivet", "validate", "-c", str(config)], env=env, capture_output=True, text=True
        )
        print(val.stdout.strip())
        return val.returncode
    finally:
        s3.process.stop() if s3.process else None
        pg.stop()


if __name__ == "__main__":
    sys.exit(main())
