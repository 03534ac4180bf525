"""Runs statements through the real snowflake-connector-python against a
Veil Snowflake listener and prints one JSON line per step.

Reads a plan from stdin:
  {"host": ..., "port": ..., "user": ..., "password": ..., "role": null,
   "database": null, "schema": null, "paramstyle": "pyformat",
   "session_parameters": {},
   "steps": [{"sql": ..., "params": null, "fetch": "all"|"pandas"|"describe"|"count"}]}

Each step prints {"ok": true, "rows": [[...]], "description": [...],
"batches": n} or {"ok": false, "errno": ..., "sqlstate": ..., "msg": ...}.
Values print as Arrow's display would (decimals and ints as text,
timestamps ISO-8601, booleans true/false) so the Rust side can compare them
with the library's own result.
"""

import datetime
import decimal
import json
import sys
import time

import snowflake.connector
from snowflake.connector.errors import Error


def show(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, decimal.Decimal)):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, datetime.datetime):
        return v.isoformat()
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.hex()
    return str(v)


def pandas_value(v):
    import pandas as pd

    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if isinstance(v, bool):
        return "true" if v else "false"
    try:
        import numpy as np

        if isinstance(v, np.integer):
            return str(int(v))
        if isinstance(v, np.floating):
            return repr(float(v))
        if isinstance(v, np.bool_):
            return "true" if bool(v) else "false"
    except ImportError:
        pass
    return show(v)


def main():
    plan = json.load(sys.stdin)
    kwargs = dict(
        user=plan["user"],
        password=plan.get("password") or "",
        account="veil",
        host=plan["host"],
        port=plan["port"],
        protocol="http",
        paramstyle=plan.get("paramstyle", "pyformat"),
        login_timeout=30,
        network_timeout=120,
        session_parameters=plan.get("session_parameters") or {},
    )
    for k in ("role", "database", "schema", "warehouse"):
        if plan.get(k):
            kwargs[k] = plan[k]
    try:
        conn = snowflake.connector.connect(**kwargs)
    except Error as e:
        print(json.dumps({"ok": False, "errno": e.errno, "sqlstate": e.sqlstate, "msg": e.msg, "login": True}))
        return
    try:
        for step in plan["steps"]:
            cur = conn.cursor()
            try:
                fetch = step.get("fetch", "all")
                if fetch == "describe":
                    desc = cur.describe(step["sql"])
                    out = {"ok": True, "rows": [], "description": [list(d) for d in desc]}
                else:
                    started = time.perf_counter()
                    cur.execute(step["sql"], step.get("params"))
                    out = {"ok": True}
                    out["description"] = [list(d) for d in cur.description or []]
                    batches = cur.get_result_batches() or []
                    out["batches"] = len(batches)
                    if fetch == "pandas":
                        df = cur.fetch_pandas_all()
                        out["columns"] = [str(c) for c in df.columns]
                        out["dtypes"] = [str(t) for t in df.dtypes]
                        out["count"] = len(df)
                        if step.get("sum"):
                            out["sum"] = show(df[step["sum"]].sum())
                        if not step.get("no_rows"):
                            out["rows"] = [[pandas_value(v) for v in row] for row in df.itertuples(index=False)]
                    elif fetch == "count":
                        n = 0
                        total = 0
                        for row in cur:
                            n += 1
                            if isinstance(row[0], int):
                                total += row[0]
                        out["count"] = n
                        out["sum"] = str(total)
                    else:
                        out["rows"] = [[show(v) for v in row] for row in cur.fetchall()]
                    out["sfqid"] = cur.sfqid
                    out["seconds"] = time.perf_counter() - started
            except Error as e:
                out = {"ok": False, "errno": e.errno, "sqlstate": e.sqlstate, "msg": e.msg}
            print(json.dumps(out), flush=True)
            cur.close()
    finally:
        conn.close()


if __name__ == "__main__":
    main()
