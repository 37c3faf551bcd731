"""Independent check of pinbench's tables: pyarrow, duckdb and deltalake (delta-rs) read every file and
table; the values must equal what the spec's cleaning rules (re-implemented here, in Python) give for the
input jsonl files; DuckDB SQL computing Q1-Q9 on our Parquet files must give the rows of `pinbench analyze`.

usage: check_tables.py INPUT_DIR TABLES_DIR [ANALYSIS_DIR]
Prints one JSON summary line; exits 1 with the first difference.
"""
import csv
import datetime as dt
import glob
import json
import math
import os
import re
import sys
import urllib.parse
from decimal import Decimal

import duckdb
import pyarrow.parquet as pq
from deltalake import DeltaTable, QueryBuilder

inp, tables = sys.argv[1], sys.argv[2]
analysis = sys.argv[3] if len(sys.argv) > 3 else None


def fail(msg):
    print(json.dumps({"ok": False, "error": msg}))
    sys.exit(1)


# ---- the cleaning rules, independently -------------------------------------------------------------
PIN_NULLS = {
    "title": {"No Title Data Available"},
    "description": {"No description available Story format", "No description available", "Untitled"},
    "poster_name": {"User Info Error"},
    "tag_list": {"N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e"},
    "image_src": {"Image src error."},
}
TS = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})?$")
FC = re.compile(r"^(-?\d+)(\.\d{1,6})?([kM]?)$")


def text(o, k, nulls=()):
    v = o.get(k)
    if not isinstance(v, str) or v == "" or v in nulls:
        return None
    return v


def follower(o):
    v = o.get("follower_count")
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if not isinstance(v, str):
        return None
    m = FC.match(v)
    if not m:
        return None
    d = Decimal(m.group(1) + (m.group(2) or "")) * {"": 1, "k": 1000, "M": 1000000}[m.group(3)]
    return int(d) if d == d.to_integral_value() and -2**63 <= d < 2**63 else None  # past Int64: null, as pinbench


def micros(v):
    if not isinstance(v, str):
        return None
    m = TS.match(v)
    if not m:
        return None
    y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
    if h > 23 or mi > 59 or s > 59:
        return None
    try:
        t = dt.datetime(y, mo, d, h, mi, s, tzinfo=dt.timezone.utc)
    except ValueError:
        return None
    frac = int((m.group(8) or "0")[:6].ljust(6, "0"))
    off = m.group(9)
    if off and off != "Z":
        sign = -1 if off[0] == "-" else 1
        t -= sign * dt.timedelta(hours=int(off[1:3]), minutes=int(off[4:6]))
    return int(t.timestamp()) * 1_000_000 + frac


def number(o, k):
    v = o.get(k)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def integer(o, k):
    v = o.get(k)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    if isinstance(v, float) and v != int(v):
        return None
    return int(v)


def clean(kind, o):
    if kind == "pin":
        return (integer(o, "index"), text(o, "unique_id"), text(o, "title", PIN_NULLS["title"]),
                text(o, "description", PIN_NULLS["description"]), follower(o),
                text(o, "poster_name", PIN_NULLS["poster_name"]), text(o, "tag_list", PIN_NULLS["tag_list"]),
                text(o, "is_image_or_video"), text(o, "image_src", PIN_NULLS["image_src"]),
                (lambda s: s[len("Local save in "):] if s and s.startswith("Local save in ") else s)(text(o, "save_location")),
                text(o, "category"))
    if kind == "geo":
        return (integer(o, "ind"), text(o, "country"), (number(o, "latitude"), number(o, "longitude")), micros(o.get("timestamp")))
    f, l = text(o, "first_name"), text(o, "last_name")
    name = f"{f} {l}" if f is not None and l is not None else (f if f is not None else l)
    return (integer(o, "ind"), name, integer(o, "age"), micros(o.get("date_joined")))


KEY = {"pin": "index", "geo": "ind", "user": "ind"}
expected, dead = {}, {}
for kind in ("pin", "geo", "user"):
    rows, seen, nd = [], set(), 0
    path = os.path.join(inp, f"{kind}.jsonl")
    if os.path.exists(path):
        with open(path, "rb") as f:
            for raw in f:
                raw = raw.rstrip(b"\r\n")
                if not raw:
                    continue
                if len(raw) > 1 << 20:  # pinbench's default --max-record-bytes
                    nd += 1
                    continue
                try:
                    o = json.loads(raw.decode("utf-8"))
                except Exception:
                    nd += 1
                    continue
                k = o.get(KEY[kind]) if isinstance(o, dict) else None
                if not isinstance(o, dict) or isinstance(k, bool) or not isinstance(k, (int, float)) or (isinstance(k, float) and k != int(k)) \
                        or not -2**63 <= int(k) < 2**63:
                    nd += 1
                    continue
                r = clean(kind, o)
                if r in seen:
                    continue
                seen.add(r)
                rows.append(r)
    expected[kind], dead[kind] = rows, nd

# ---- what the readers see -----------------------------------------------------------------------
COLS = {
    "pin": ["ind", "unique_id", "title", "description", "follower_count", "poster_name", "tag_list", "is_image_or_video",
            "image_src", "save_location", "category"],
    "geo": ["ind", "country", "coordinates", "timestamp"],
    "user": ["ind", "user_name", "age", "date_joined"],
}


def norm(kind, d):
    out = []
    for c in COLS[kind]:
        v = d[c]
        if isinstance(v, dt.datetime):
            v = int(v.timestamp()) * 1_000_000 + v.microsecond
        if isinstance(v, list):
            v = tuple(v)
        out.append(v)
    return tuple(out)


def key(r):
    return tuple((x is None, repr(x)) for x in r)


summary = {"ok": True, "rows": {}, "files": 0, "dead_expected": dead}
con = duckdb.connect()
con.execute("SET TimeZone='UTC'")
live = {}
for kind in ("pin", "geo", "user"):
    tdir = os.path.join(tables, kind)
    dtab = DeltaTable(tdir)
    names = [f.name for f in dtab.schema().fields]
    if names != COLS[kind]:
        fail(f"deltalake schema of {kind}: {names}")
    n = QueryBuilder().register("t", dtab).execute("SELECT count(*) AS n FROM t").read_all().column(0)[0].as_py()
    files = [u[len("file://"):] if u.startswith("file://") else u for u in dtab.file_uris()]
    live[kind] = files
    parts = dtab.metadata().partition_columns
    got = []
    for fpath in files:
        t = pq.read_table(fpath)  # pyarrow reads each file on its own
        pv = {}
        for seg in os.path.relpath(fpath, os.path.abspath(tdir)).split(os.sep)[:-1]:
            k, v = seg.split("=", 1)
            pv[k] = None if v == "__HIVE_DEFAULT_PARTITION__" else urllib.parse.unquote(v)  # Hive escaping
        for d in t.to_pylist():
            d.update(pv)
            got.append(norm(kind, d))
        # duckdb reads each file too
        cnt = con.execute("SELECT count(*) FROM read_parquet(?)", [fpath]).fetchone()[0]
        if cnt != t.num_rows:
            fail(f"duckdb counts {cnt} rows in {fpath}, pyarrow {t.num_rows}")
        summary["files"] += 1
    exp = expected[kind]
    if n != len(exp) or len(got) != len(exp):
        fail(f"{kind}: deltalake {n} rows, pyarrow {len(got)}, expected {len(exp)}")
    gs, es = sorted(got, key=key), sorted(exp, key=key)
    for a, b in zip(gs, es):
        if a != b:
            fail(f"{kind}: first difference: read {a!r}, rules give {b!r}")
    summary["rows"][kind] = n
    summary[f"{kind}_partitions"] = parts

# ---- Q1-Q9 in DuckDB SQL ---------------------------------------------------------------------------
if analysis:
    def view(name, kind):
        fl = ", ".join("'" + f.replace("'", "''") + "'" for f in live[kind])
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{fl}], hive_partitioning=true)")
    view("p", "pin")
    view("g", "geo")
    view("u", "user")
    AGE = "CASE WHEN age BETWEEN 18 AND 24 THEN '18-24' WHEN age BETWEEN 25 AND 35 THEN '25-35' " \
          "WHEN age BETWEEN 36 AND 50 THEN '36-50' WHEN age > 50 THEN '50+' END"
    Q = {
        "q1": """WITH c AS (SELECT g.country, p.category, count(*) AS n FROM p JOIN g ON p.ind = g.ind
                 WHERE g.country IS NOT NULL AND p.category IS NOT NULL GROUP BY 1, 2),
                 r AS (SELECT *, rank() OVER (PARTITION BY country ORDER BY n DESC) AS rk FROM c)
                 SELECT country, category, n FROM r WHERE rk = 1 ORDER BY 1, 2""",
        "q2": """WITH c AS (SELECT year(g.timestamp) AS y, p.category, count(*) AS n FROM p JOIN g ON p.ind = g.ind
                 WHERE g.timestamp IS NOT NULL AND p.category IS NOT NULL AND year(g.timestamp) BETWEEN 2018 AND 2022 GROUP BY 1, 2),
                 r AS (SELECT *, rank() OVER (PARTITION BY y ORDER BY n DESC) AS rk FROM c)
                 SELECT y, category, n FROM r WHERE rk = 1 ORDER BY 1, 2""",
        "q3": """WITH j AS (SELECT g.country, p.poster_name, p.follower_count FROM p JOIN g ON p.ind = g.ind
                 WHERE g.country IS NOT NULL AND p.poster_name IS NOT NULL AND p.follower_count IS NOT NULL),
                 m AS (SELECT country, max(follower_count) AS mx FROM j GROUP BY 1)
                 SELECT DISTINCT j.country, j.poster_name, j.follower_count FROM j JOIN m ON j.country = m.country AND j.follower_count = m.mx
                 ORDER BY 1, 2""",
        "q4": """WITH j AS (SELECT g.country, p.follower_count FROM p JOIN g ON p.ind = g.ind
                 WHERE g.country IS NOT NULL AND p.follower_count IS NOT NULL)
                 SELECT DISTINCT country, follower_count FROM j WHERE follower_count = (SELECT max(follower_count) FROM j) ORDER BY 1""",
        "q5": f"""WITH c AS (SELECT {AGE} AS grp, p.category, count(*) AS n FROM p JOIN u ON p.ind = u.ind
                 WHERE p.category IS NOT NULL GROUP BY 1, 2 HAVING grp IS NOT NULL),
                 r AS (SELECT *, rank() OVER (PARTITION BY grp ORDER BY n DESC) AS rk FROM c)
                 SELECT grp, category, n FROM r WHERE rk = 1 ORDER BY 1, 2""",
        "q6": f"""SELECT {AGE} AS grp, quantile_cont(p.follower_count, 0.5) FROM p JOIN u ON p.ind = u.ind
                 WHERE p.follower_count IS NOT NULL GROUP BY 1 HAVING grp IS NOT NULL ORDER BY 1""",
        "q7": """SELECT year(date_joined) AS y, count(*) FROM u WHERE date_joined IS NOT NULL AND year(date_joined) BETWEEN 2015 AND 2020
                 GROUP BY 1 ORDER BY 1""",
        "q8": """SELECT year(u.date_joined) AS y, quantile_cont(p.follower_count, 0.5) FROM p JOIN u ON p.ind = u.ind
                 WHERE p.follower_count IS NOT NULL AND u.date_joined IS NOT NULL AND year(u.date_joined) BETWEEN 2015 AND 2020
                 GROUP BY 1 ORDER BY 1""",
        "q9": f"""SELECT {AGE} AS grp, year(u.date_joined) AS y, quantile_cont(p.follower_count, 0.5) FROM p JOIN u ON p.ind = u.ind
                 WHERE p.follower_count IS NOT NULL AND u.date_joined IS NOT NULL AND year(u.date_joined) BETWEEN 2015 AND 2020
                 GROUP BY 1, 2 HAVING grp IS NOT NULL ORDER BY 1, 2""",
    }
    HEADERS = {
        "q1": ["country", "category", "category_count"], "q2": ["post_year", "category", "category_count"],
        "q3": ["country", "poster_name", "follower_count"], "q4": ["country", "follower_count"],
        "q5": ["age_group", "category", "category_count"], "q6": ["age_group", "median_follower_count"],
        "q7": ["post_year", "number_users_joined"], "q8": ["post_year", "median_follower_count"],
        "q9": ["age_group", "post_year", "median_follower_count"],
    }

    def same(a, b):
        if isinstance(b, (int, float)) and not isinstance(b, bool):
            try:
                return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-9)
            except ValueError:
                return False
        return a == str(b)

    qrows = {}
    for q, sql in Q.items():
        want = con.execute(sql).fetchall()
        with open(os.path.join(analysis, f"{q}.csv"), newline="") as f:
            rows = list(csv.reader(f))
        if rows[0] != HEADERS[q]:
            fail(f"{q}.csv header {rows[0]}, spec says {HEADERS[q]}")
        got = rows[1:]
        if len(got) != len(want):
            fail(f"{q}: pinbench {len(got)} rows, duckdb {len(want)}: {got[:5]} vs {want[:5]}")
        for a, b in zip(got, want):
            if len(a) != len(b) or not all(same(x, y) for x, y in zip(a, b)):
                fail(f"{q}: pinbench {a} vs duckdb {b}")
        qrows[q] = len(got)
    summary["queries"] = qrows

print(json.dumps(summary))
