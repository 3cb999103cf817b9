"""The backend: receives CWS events (intake), validates and stores them, and finds them again (search).

Data flow: HTTP body → `bodies` (size limits, zstd or gzip, JSON / array / JSON lines) → `intake` (envelope,
schema validation, rows) → `store` (chdb embedded, or ClickHouse servers) → `routers.search` (SECL → SQL
prefilter, then the exact SECL evaluator). `main.create_app` assembles the FastAPI application; `server`
runs it. The backend never imports the probe or the agent.
"""
