"""The shared test fixtures start real servers: PostgreSQL databases are isolated, Redis answers."""

from __future__ import annotations

import asyncpg
import redis.asyncio as aioredis


async def test_pg_dsn_answers(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        assert await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()


async def test_pg_database_is_fresh_and_writable(pg_database: str) -> None:
    conn = await asyncpg.connect(pg_database)
    try:
        assert (await conn.fetchval("SELECT current_database()")).startswith("t_")
        count = await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert count == 0
        await conn.execute("CREATE TABLE probe (id int PRIMARY KEY)")
        await conn.execute("INSERT INTO probe VALUES (1)")
    finally:
        await conn.close()


async def test_redis_url_answers(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        assert await client.ping()
        await client.set("arbiter:probe", "1")
        assert await client.get("arbiter:probe") == b"1"
    finally:
        await client.aclose()
