"""Print what is missing among the test services (empty output: all reachable).

Usage: check-services.py POSTGRES_URL [REDIS_URL]
"""

from __future__ import annotations

import sys
from urllib.parse import urlparse


def main() -> int:
    pg_url = sys.argv[1]
    redis_url = sys.argv[2] if len(sys.argv) > 2 else None
    missing = []
    try:
        import psycopg

        parsed = urlparse(pg_url)
        with psycopg.connect(
            host=parsed.hostname,
            port=parsed.port or 5432,
            user=parsed.username or "postgres",
            password=parsed.password,
            dbname="postgres",
            connect_timeout=5,
        ):
            pass
    except Exception as exc:
        where = f"{urlparse(pg_url).hostname}:{urlparse(pg_url).port or 5432}"
        missing.append(f"PostgreSQL at {where} ({type(exc).__name__})")
    if redis_url is None:
        print("; ".join(missing))
        return 0
    try:
        import redis

        redis.Redis.from_url(redis_url, socket_connect_timeout=5).ping()
    except Exception as exc:
        parsed = urlparse(redis_url)
        missing.append(f"Redis at {parsed.hostname}:{parsed.port or 6379} ({type(exc).__name__})")
    print("; ".join(missing))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
