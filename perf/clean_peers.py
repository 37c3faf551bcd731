"""The same cleaning as `pinbench clean` (spec §3), done by DuckDB or Polars, for perf/clean_vs_duckdb_polars.sh.

usage: clean_peers.py duckdb|polars IN_DIR OUT_DIR [CODEC [TABLES]]
  (CODEC: snappy (default) or zstd; TABLES: pin,geo,user (default) or a subset, e.g. pin; pin partitioned by category)
Each engine reads the jsonl files, applies the rules (placeholders -> null, follower_count k/M -> int,
prefix strip, coordinates, user_name, timestamps), removes duplicate rows and writes Parquet.
"""
import os
import sys

engine, inp, out = sys.argv[1], sys.argv[2], sys.argv[3]
CODEC = sys.argv[4] if len(sys.argv) > 4 else "snappy"
TABLES = (sys.argv[5] if len(sys.argv) > 5 else "pin,geo,user").split(",")
os.makedirs(out, exist_ok=True)
PH = {
    "title": ["No Title Data Available"],
    "description": ["No description available Story format", "No description available", "Untitled"],
    "poster_name": ["User Info Error"],
    "tag_list": ["N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e"],
    "image_src": ["Image src error."],
}

if engine == "duckdb":
    import duckdb
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")

    def s(c):
        ph = PH.get(c, [])
        cond = " OR ".join([f"{c} = ''"] + [f"{c} = '{p}'" for p in ph])
        return f"CASE WHEN {cond} THEN NULL ELSE {c} END AS {c}"

    fc = """CASE WHEN regexp_full_match(follower_count, '[0-9]+(\\.[0-9]+)?[kM]?')
              THEN TRY_CAST(TRY_CAST(regexp_replace(follower_count, '[kM]$', '') AS DECIMAL(18,6))
                   * CASE WHEN follower_count LIKE '%k' THEN 1000 WHEN follower_count LIKE '%M' THEN 1000000 ELSE 1 END AS BIGINT)
         END AS follower_count"""
    pin_cols = ("index BIGINT, unique_id VARCHAR, title VARCHAR, description VARCHAR, poster_name VARCHAR, follower_count VARCHAR, "
                "tag_list VARCHAR, is_image_or_video VARCHAR, image_src VARCHAR, downloaded BIGINT, save_location VARCHAR, category VARCHAR")
    if "pin" in TABLES:
        con.execute(f"""COPY (SELECT DISTINCT index AS ind, {s('unique_id')}, {s('title')}, {s('description')}, {fc}, {s('poster_name')},
            {s('tag_list')}, {s('is_image_or_video')}, {s('image_src')},
            CASE WHEN save_location = '' THEN NULL ELSE regexp_replace(save_location, '^Local save in ', '') END AS save_location, category
            FROM read_json('{inp}/pin.jsonl', format='newline_delimited', columns={{{", ".join(f"'{c.split()[0]}': '{c.split()[1]}'" for c in pin_cols.split(", "))}}}))
            TO '{out}/pin' (FORMAT parquet, COMPRESSION {CODEC}, PARTITION_BY (category), OVERWRITE_OR_IGNORE)""")
    if "geo" in TABLES:
        con.execute(f"""COPY (SELECT DISTINCT ind, {s('country')}, [latitude, longitude] AS coordinates,
            TRY_CAST(timestamp AS TIMESTAMPTZ) AS timestamp
            FROM read_json('{inp}/geo.jsonl', format='newline_delimited',
                 columns={{'ind': 'BIGINT', 'timestamp': 'VARCHAR', 'latitude': 'DOUBLE', 'longitude': 'DOUBLE', 'country': 'VARCHAR'}}))
            TO '{out}/geo.parquet' (FORMAT parquet, COMPRESSION {CODEC})""")
    if "user" in TABLES:
        con.execute(f"""COPY (SELECT DISTINCT ind, NULLIF(concat_ws(' ', NULLIF(first_name, ''), NULLIF(last_name, '')), '') AS user_name, age,
            TRY_CAST(date_joined AS TIMESTAMPTZ) AS date_joined
            FROM read_json('{inp}/user.jsonl', format='newline_delimited',
                 columns={{'ind': 'BIGINT', 'first_name': 'VARCHAR', 'last_name': 'VARCHAR', 'age': 'BIGINT', 'date_joined': 'VARCHAR'}}))
            TO '{out}/user.parquet' (FORMAT parquet, COMPRESSION {CODEC})""")
elif engine == "polars":
    import polars as pl

    def s(c):
        e = pl.col(c)
        return pl.when((e == "") | e.is_in(PH.get(c, []))).then(None).otherwise(e).alias(c)

    fcol = pl.col("follower_count")
    num = fcol.str.replace(r"[kM]$", "").cast(pl.Float64, strict=False)
    mult = pl.when(fcol.str.ends_with("k")).then(1000).when(fcol.str.ends_with("M")).then(1_000_000).otherwise(1)
    scaled = num * mult
    fc = (pl.when(fcol.str.contains(r"^[0-9]+(\.[0-9]+)?[kM]?$") & ((scaled - scaled.round()).abs() < 1e-6))
          .then(scaled.round().cast(pl.Int64)).otherwise(None).alias("follower_count"))
    if "pin" in TABLES:
        pin = (pl.scan_ndjson(f"{inp}/pin.jsonl")
               .select(pl.col("index").alias("ind"), s("unique_id"), s("title"), s("description"), fc, s("poster_name"), s("tag_list"),
                       s("is_image_or_video"), s("image_src"), pl.col("save_location").str.replace(r"^Local save in ", ""), pl.col("category"))
               .unique(maintain_order=False))
        pin.sink_parquet(pl.PartitionBy(f"{out}/pin", key="category"), compression=CODEC, mkdir=True)
    ts = lambda c: pl.col(c).str.to_datetime("%Y-%m-%d %H:%M:%S", time_zone="UTC", strict=False)
    if "geo" in TABLES:
        (pl.scan_ndjson(f"{inp}/geo.jsonl")
         .select(pl.col("ind"), s("country"), pl.concat_list("latitude", "longitude").alias("coordinates"), ts("timestamp").alias("timestamp"))
         .unique(maintain_order=False)
         .sink_parquet(f"{out}/geo.parquet", compression=CODEC))
    if "user" in TABLES:
        (pl.scan_ndjson(f"{inp}/user.jsonl")
         .select(pl.col("ind"), pl.concat_str([pl.col("first_name"), pl.col("last_name")], separator=" ", ignore_nulls=True).alias("user_name"),
                 pl.col("age"), ts("date_joined").alias("date_joined"))
         .unique(maintain_order=False)
         .sink_parquet(f"{out}/user.parquet", compression=CODEC))
else:
    sys.exit(f"unknown engine {engine}")
