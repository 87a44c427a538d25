#!/opt/moto/bin/python
"""The few MinIO client commands docker-compose.yml uses, against the moto stand-in (CI only).

mc alias set NAME URL USER PASSWORD      remembered in ~/.mc/aliases.json
mc mb [--ignore-existing] NAME/BUCKET    create the bucket
mc ready NAME                            exit 0 once the server answers ("local": localhost:9000)
"""

import json
import sys
import urllib.request
from pathlib import Path

ALIASES = Path.home() / ".mc" / "aliases.json"


def aliases() -> dict:
    saved = json.loads(ALIASES.read_text()) if ALIASES.exists() else {}
    saved.setdefault("local", {"url": "http://localhost:9000", "user": "", "password": ""})
    return saved


def main(args: list[str]) -> int:
    if args[:2] == ["alias", "set"] and len(args) == 6:
        saved = aliases()
        saved[args[2]] = {"url": args[3], "user": args[4], "password": args[5]}
        ALIASES.parent.mkdir(parents=True, exist_ok=True)
        ALIASES.write_text(json.dumps(saved))
        print(f"Added `{args[2]}` successfully.")
        return 0
    if args[:1] == ["mb"]:
        import boto3

        ignore = "--ignore-existing" in args
        name, _, bucket = [a for a in args[1:] if not a.startswith("-")][0].partition("/")
        alias = aliases()[name]
        s3 = boto3.client(
            "s3",
            endpoint_url=alias["url"],
            aws_access_key_id=alias["user"] or "x",
            aws_secret_access_key=alias["password"] or "x",
            region_name="us-east-1",
        )
        if bucket in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
            print(f"Bucket `{name}/{bucket}` already exists.")
            return 0 if ignore else 1
        s3.create_bucket(Bucket=bucket)
        print(f"Bucket created successfully `{name}/{bucket}`.")
        return 0
    if args[:1] == ["ready"] and len(args) == 2:
        try:
            urllib.request.urlopen(aliases()[args[1]]["url"] + "/", timeout=3)
        except Exception as error:  # any answer short of 2xx: not ready
            print(f"mc ready: {error}", file=sys.stderr)
            return 1
        return 0
    print(f"mc (gentrain CI stand-in): unsupported: {' '.join(args)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
