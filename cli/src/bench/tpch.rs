//! The benchmark's data and policies: TPC-H tables generated in-process and
//! cached as Parquet, the standard policy set of SPEC §8 as a Veil
//! workspace, the same policies written by hand as plain DataFusion views,
//! and the query list.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use indicatif::{ProgressBar, ProgressStyle};
use tpchgen::generators::{
    CustomerGenerator, LineItemGenerator, NationGenerator, OrderGenerator, RegionGenerator,
    SupplierGenerator,
};
use tpchgen_arrow::{
    CustomerArrow, LineItemArrow, NationArrow, OrderArrow, RegionArrow, SupplierArrow,
};

use veil_engine::{Result, VeilError};

/// Database and schema of the benchmark workspace.
pub(crate) const DATABASE: &str = "TPCH";
/// See [`DATABASE`].
pub(crate) const SCHEMA: &str = "PUBLIC";
/// The user every enforced query runs as.
pub(crate) const BENCH_USER: &str = "AVA";

/// The regions [`BENCH_USER`] may see, and their nations' keys (fixed by the
/// TPC-H specification: nation → region).
pub(crate) const BENCH_REGIONS: [&str; 3] = ["AMERICA", "ASIA", "EUROPE"];
/// See [`BENCH_REGIONS`].
pub(crate) const BENCH_NATIONS: [i64; 15] = [1, 2, 3, 6, 7, 8, 9, 12, 17, 18, 19, 21, 22, 23, 24];

const REGIONS: [&str; 5] = ["AFRICA", "AMERICA", "ASIA", "EUROPE", "MIDDLE EAST"];

/// One benchmark query: the same text runs unenforced, enforced and over the
/// hand-written views.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BenchQuery {
    /// Short name (`q1`, `point_key`, ...).
    pub(crate) name: &'static str,
    /// What it exercises.
    pub(crate) about: &'static str,
    /// The SQL (unquoted lower-case identifiers, valid in both dialects).
    pub(crate) sql: &'static str,
}

/// TPC-H Q1, Q3, Q5, Q6 and Q10 (validation parameters), then point and
/// filter queries on masked columns.
pub(crate) const QUERIES: &[BenchQuery] = &[
    BenchQuery {
        name: "q1",
        about: "TPC-H Q1: scan and aggregate lineitem (rounded price, nulled comment)",
        sql: "select l_returnflag, l_linestatus, sum(l_quantity) as sum_qty, \
              sum(l_extendedprice) as sum_base_price, \
              sum(l_extendedprice * (1 - l_discount)) as sum_disc_price, \
              sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) as sum_charge, \
              avg(l_quantity) as avg_qty, avg(l_extendedprice) as avg_price, \
              avg(l_discount) as avg_disc, count(*) as count_order \
              from lineitem where l_shipdate <= date '1998-09-02' \
              group by l_returnflag, l_linestatus order by l_returnflag, l_linestatus",
    },
    BenchQuery {
        name: "q3",
        about: "TPC-H Q3: customer ⋈ orders ⋈ lineitem (row rule on customer)",
        sql: "select l_orderkey, sum(l_extendedprice * (1 - l_discount)) as revenue, \
              o_orderdate, o_shippriority \
              from customer, orders, lineitem \
              where c_mktsegment = 'BUILDING' and c_custkey = o_custkey \
              and l_orderkey = o_orderkey and o_orderdate < date '1995-03-15' \
              and l_shipdate > date '1995-03-15' \
              group by l_orderkey, o_orderdate, o_shippriority \
              order by revenue desc, o_orderdate, l_orderkey limit 10",
    },
    BenchQuery {
        name: "q5",
        about: "TPC-H Q5: six-table join (row rules on customer, supplier, nation, region)",
        sql: "select n_name, sum(l_extendedprice * (1 - l_discount)) as revenue \
              from customer, orders, lineitem, supplier, nation, region \
              where c_custkey = o_custkey and l_orderkey = o_orderkey \
              and l_suppkey = s_suppkey and c_nationkey = s_nationkey \
              and s_nationkey = n_nationkey and n_regionkey = r_regionkey \
              and r_name = 'ASIA' and o_orderdate >= date '1994-01-01' \
              and o_orderdate < date '1995-01-01' \
              group by n_name order by revenue desc",
    },
    BenchQuery {
        name: "q6",
        about: "TPC-H Q6: selective scan of lineitem (rounded price)",
        sql: "select sum(l_extendedprice * l_discount) as revenue from lineitem \
              where l_shipdate >= date '1994-01-01' and l_shipdate < date '1995-01-01' \
              and l_discount between 0.05 and 0.07 and l_quantity < 24",
    },
    BenchQuery {
        name: "q10",
        about: "TPC-H Q10: returned items by customer (hashed names and phones in the output)",
        sql: "select c_custkey, c_name, sum(l_extendedprice * (1 - l_discount)) as revenue, \
              c_acctbal, n_name, c_address, c_phone, c_comment \
              from customer, orders, lineitem, nation \
              where c_custkey = o_custkey and l_orderkey = o_orderkey \
              and o_orderdate >= date '1993-10-01' and o_orderdate < date '1994-01-01' \
              and l_returnflag = 'R' and c_nationkey = n_nationkey \
              group by c_custkey, c_name, c_acctbal, c_phone, n_name, c_address, c_comment \
              order by revenue desc, c_custkey limit 20",
    },
    BenchQuery {
        name: "point_key",
        about: "point lookup by an unmasked key, masked columns in the output",
        sql: "select c_custkey, c_name, c_phone, c_acctbal, c_comment from customer \
              where c_custkey = 1004",
    },
    BenchQuery {
        name: "filter_hash",
        about: "filter on a hashed column (every phone hashed, then compared)",
        sql: "select count(*) as n from customer where c_phone like 'a%'",
    },
    BenchQuery {
        name: "filter_round",
        about: "range filter and sum on a rounded price",
        sql: "select count(*) as n, sum(o_totalprice) as total from orders \
              where o_totalprice between 100000 and 200000",
    },
    BenchQuery {
        name: "filter_comment",
        about: "filter on a comment replaced by a constant",
        sql: "select o_orderpriority, count(*) as n from orders \
              where o_comment like '%REDACT%' group by o_orderpriority order by o_orderpriority",
    },
];

/// A generated table: name, declared columns (`name`, Snowflake type, tags)
/// and the approximate rows per scale factor (for the progress bar).
struct TableDef {
    name: &'static str,
    columns: &'static [(&'static str, &'static str, &'static str)],
    rows_per_sf: f64,
}

const TABLES: &[TableDef] = &[
    TableDef {
        name: "region",
        columns: &[
            ("r_regionkey", "NUMBER(18,0)", ""),
            ("r_name", "VARCHAR(25)", ""),
            ("r_comment", "VARCHAR(152)", "Comment.Free"),
        ],
        rows_per_sf: 0.0,
    },
    TableDef {
        name: "nation",
        columns: &[
            ("n_nationkey", "NUMBER(18,0)", ""),
            ("n_name", "VARCHAR(25)", ""),
            ("n_regionkey", "NUMBER(18,0)", ""),
            ("n_comment", "VARCHAR(152)", "Comment.Free"),
        ],
        rows_per_sf: 0.0,
    },
    TableDef {
        name: "supplier",
        columns: &[
            ("s_suppkey", "NUMBER(18,0)", ""),
            ("s_name", "VARCHAR(25)", "PII.Name"),
            ("s_address", "VARCHAR(40)", ""),
            ("s_nationkey", "NUMBER(18,0)", ""),
            ("s_phone", "VARCHAR(15)", "PII.Phone"),
            ("s_acctbal", "NUMBER(15,2)", "Financial.Price"),
            ("s_comment", "VARCHAR(101)", "Comment.Free"),
        ],
        rows_per_sf: 10_000.0,
    },
    TableDef {
        name: "customer",
        columns: &[
            ("c_custkey", "NUMBER(18,0)", ""),
            ("c_name", "VARCHAR(25)", "PII.Name"),
            ("c_address", "VARCHAR(40)", ""),
            ("c_nationkey", "NUMBER(18,0)", ""),
            ("c_phone", "VARCHAR(15)", "PII.Phone"),
            ("c_acctbal", "NUMBER(15,2)", "Financial.Price"),
            ("c_mktsegment", "VARCHAR(10)", ""),
            ("c_comment", "VARCHAR(117)", "Comment.Redacted"),
        ],
        rows_per_sf: 150_000.0,
    },
    TableDef {
        name: "orders",
        columns: &[
            ("o_orderkey", "NUMBER(18,0)", ""),
            ("o_custkey", "NUMBER(18,0)", ""),
            ("o_orderstatus", "VARCHAR(1)", ""),
            ("o_totalprice", "NUMBER(15,2)", "Financial.Price"),
            ("o_orderdate", "DATE", ""),
            ("o_orderpriority", "VARCHAR(15)", ""),
            ("o_clerk", "VARCHAR(15)", ""),
            ("o_shippriority", "NUMBER(10,0)", ""),
            ("o_comment", "VARCHAR(79)", "Comment.Redacted"),
        ],
        rows_per_sf: 1_500_000.0,
    },
    TableDef {
        name: "lineitem",
        columns: &[
            ("l_orderkey", "NUMBER(18,0)", ""),
            ("l_partkey", "NUMBER(18,0)", ""),
            ("l_suppkey", "NUMBER(18,0)", ""),
            ("l_linenumber", "NUMBER(10,0)", ""),
            ("l_quantity", "NUMBER(15,2)", ""),
            ("l_extendedprice", "NUMBER(15,2)", "Financial.Price"),
            ("l_discount", "NUMBER(15,2)", ""),
            ("l_tax", "NUMBER(15,2)", ""),
            ("l_returnflag", "VARCHAR(1)", ""),
            ("l_linestatus", "VARCHAR(1)", ""),
            ("l_shipdate", "DATE", ""),
            ("l_commitdate", "DATE", ""),
            ("l_receiptdate", "DATE", ""),
            ("l_shipinstruct", "VARCHAR(25)", ""),
            ("l_shipmode", "VARCHAR(10)", ""),
            ("l_comment", "VARCHAR(44)", "Comment.Free"),
        ],
        rows_per_sf: 6_001_215.0,
    },
];

/// The names of the generated tables.
pub(crate) fn table_names() -> impl Iterator<Item = &'static str> {
    TABLES.iter().map(|t| t.name)
}

/// `sf` as it appears in directory names (`1`, `0.1`).
pub(crate) fn sf_label(sf: f64) -> String {
    format!("{sf}")
}

fn io_error(path: &Path, what: &str, e: impl std::fmt::Display) -> VeilError {
    VeilError::Bench(format!("cannot {what} '{}': {e}", path.display()))
}

/// Generates the TPC-H tables at scale factor `sf` as Parquet under
/// `dir/<table>/part-<n>.parquet`, one part per core, unless a previous run
/// finished them (each table directory gets a `_SUCCESS` marker last, so an
/// interrupted generation is redone). Returns whether anything was generated.
pub(crate) fn generate(dir: &Path, sf: f64) -> Result<bool> {
    let parts = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 16) as i32;
    let mut generated = false;
    for t in TABLES {
        let table_dir = dir.join(t.name);
        if table_dir.join("_SUCCESS").exists() {
            continue;
        }
        generated = true;
        if table_dir.exists() {
            fs::remove_dir_all(&table_dir).map_err(|e| io_error(&table_dir, "clear", e))?;
        }
        fs::create_dir_all(&table_dir).map_err(|e| io_error(&table_dir, "create", e))?;
        let expected = (t.rows_per_sf * sf).max(25.0) as u64;
        let bar = ProgressBar::new(expected).with_message(format!("TPC-H SF {sf} {}", t.name));
        bar.set_style(
            ProgressStyle::with_template("{msg:>22} [{bar:40}] {human_pos}/{human_len} rows")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        let small = t.rows_per_sf == 0.0;
        let parts_here = if small { 1 } else { parts };
        std::thread::scope(|scope| -> Result<()> {
            let handles: Vec<_> = (1..=parts_here)
                .map(|part| {
                    let path = table_dir.join(format!("part-{part}.parquet"));
                    let bar = bar.clone();
                    let name = t.name;
                    scope.spawn(move || write_part(name, sf, part, parts_here, &path, &bar))
                })
                .collect();
            for h in handles {
                h.join()
                    .map_err(|_| VeilError::Bench(format!("generating {} panicked", t.name)))??;
            }
            Ok(())
        })?;
        bar.finish();
        let marker = table_dir.join("_SUCCESS");
        fs::write(&marker, b"").map_err(|e| io_error(&marker, "write", e))?;
    }
    Ok(generated)
}

fn write_part(
    table: &str,
    sf: f64,
    part: i32,
    parts: i32,
    path: &Path,
    bar: &ProgressBar,
) -> Result<()> {
    const BATCH: usize = 8192;
    let batches: Box<dyn Iterator<Item = std::result::Result<RecordBatch, ArrowError>>> =
        match table {
            "region" => Box::new(
                RegionArrow::new(RegionGenerator::new(sf, part, parts)).with_batch_size(BATCH),
            ),
            "nation" => Box::new(
                NationArrow::new(NationGenerator::new(sf, part, parts)).with_batch_size(BATCH),
            ),
            "supplier" => Box::new(
                SupplierArrow::new(SupplierGenerator::new(sf, part, parts)).with_batch_size(BATCH),
            ),
            "customer" => Box::new(
                CustomerArrow::new(CustomerGenerator::new(sf, part, parts)).with_batch_size(BATCH),
            ),
            "orders" => Box::new(
                OrderArrow::new(OrderGenerator::new(sf, part, parts)).with_batch_size(BATCH),
            ),
            "lineitem" => Box::new(
                LineItemArrow::new(LineItemGenerator::new(sf, part, parts)).with_batch_size(BATCH),
            ),
            other => return Err(VeilError::Bench(format!("unknown TPC-H table {other}"))),
        };
    let mut batches = batches.peekable();
    let schema: SchemaRef = match batches.peek() {
        Some(Ok(b)) => b.schema(),
        Some(Err(e)) => return Err(VeilError::Bench(format!("generating {table}: {e}"))),
        None => return Ok(()),
    };
    let file = fs::File::create(path).map_err(|e| io_error(path, "create", e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(256 * 1024))
        .build();
    let mut writer = ArrowWriter::try_new(file, Arc::clone(&schema), Some(props))
        .map_err(|e| io_error(path, "write", e))?;
    for batch in batches {
        let batch = batch.map_err(|e| VeilError::Bench(format!("generating {table}: {e}")))?;
        bar.inc(batch.num_rows() as u64);
        writer
            .write(&batch)
            .map_err(|e| io_error(path, "write", e))?;
    }
    writer.close().map_err(|e| io_error(path, "write", e))?;
    Ok(())
}

/// Writes the Veil workspace of the benchmark: the tables over `data`, the
/// standard policy set (SPEC §8) and `users` users, [`BENCH_USER`] first.
/// Returns the manifest's directory.
pub(crate) fn write_workspace(dir: &Path, data: &Path, users: usize) -> Result<PathBuf> {
    fs::create_dir_all(dir).map_err(|e| io_error(dir, "create", e))?;
    let data = fs::canonicalize(data).map_err(|e| io_error(data, "read", e))?;
    let mut y = String::new();
    let _ = writeln!(
        y,
        "# Generated by `veil bench`: TPC-H under the standard policy set of SPEC §8.\n\
         settings:\n  default_database: {DATABASE}\n  default_schema: {SCHEMA}\n  \
         secret_env: VEIL_BENCH_SECRET\n  salt_scope: data_source\n  enforcement: inlined\n\n\
         tables:"
    );
    for t in TABLES {
        let _ = writeln!(
            y,
            "  - name: {DATABASE}.{SCHEMA}.{}\n    location: '{}'\n    columns:",
            t.name.to_uppercase(),
            // A YAML single-quoted scalar: quotes are doubled.
            data.join(t.name).display().to_string().replace('\'', "''")
        );
        for (name, ty, tag) in t.columns {
            let tags = if tag.is_empty() {
                String::new()
            } else {
                format!(", tags: [{tag}]")
            };
            let _ = writeln!(
                y,
                "      - {{name: {}, type: '{ty}'{tags}}}",
                name.to_uppercase()
            );
        }
    }
    let all: Vec<String> = TABLES
        .iter()
        .map(|t| format!("{DATABASE}.{SCHEMA}.{}", t.name.to_uppercase()))
        .collect();
    let all = all.join(", ");
    let _ = writeln!(
        y,
        "\nroles:\n  - {{name: ANALYST, grants: [{all}]}}\n\n\
         policies:\n\
         \x20 - name: hash-pii\n    type: masking\n    on: {{tags: [PII.Name, PII.Phone]}}\n    mask: hash\n    except: {{groups: [Compliance]}}\n\
         \x20 - name: round-prices\n    type: masking\n    on: {{tags: [Financial.Price]}}\n    mask: {{round: 100}}\n    except: {{groups: [Compliance]}}\n\
         \x20 - name: null-comments\n    type: masking\n    on: {{tags: [Comment.Free]}}\n    mask: nullify\n\
         \x20 - name: redact-comments\n    type: masking\n    on: {{tags: [Comment.Redacted]}}\n    mask: {{constant: REDACTED}}\n\
         \x20 - name: customers-by-nation\n    type: row\n    on: {{data_sources: [{DATABASE}.{SCHEMA}.CUSTOMER]}}\n    rule: {{match_attribute: Nation, column: C_NATIONKEY}}\n    except: {{groups: [Compliance]}}\n\
         \x20 - name: suppliers-by-nation\n    type: row\n    on: {{data_sources: [{DATABASE}.{SCHEMA}.SUPPLIER]}}\n    rule: {{match_attribute: Nation, column: S_NATIONKEY}}\n    except: {{groups: [Compliance]}}\n\
         \x20 - name: nations-by-nation\n    type: row\n    on: {{data_sources: [{DATABASE}.{SCHEMA}.NATION]}}\n    rule: {{match_attribute: Nation, column: N_NATIONKEY}}\n    except: {{groups: [Compliance]}}\n\
         \x20 - name: regions-by-region\n    type: row\n    on: {{data_sources: [{DATABASE}.{SCHEMA}.REGION]}}\n    rule: {{match_attribute: Region, column: R_NAME}}\n    except: {{groups: [Compliance]}}\n\
         \x20 - name: analysts-subscribe\n    type: subscription\n    on: {{data_sources: [{all}]}}\n    allow: {{groups: [Analysts, Compliance]}}\n\n\
         users:"
    );
    let quoted = |xs: &[String]| {
        xs.iter()
            .map(|x| format!("'{x}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let nations: Vec<String> = BENCH_NATIONS.iter().map(|n| n.to_string()).collect();
    let regions: Vec<String> = BENCH_REGIONS.iter().map(|r| r.to_string()).collect();
    let _ = writeln!(
        y,
        "  - {{name: {BENCH_USER}, roles: [ANALYST], groups: [Analysts], attributes: {{Nation: [{}], Region: [{}]}}}}",
        quoted(&nations),
        quoted(&regions)
    );
    for i in 1..users {
        // Other users: one region each and its five nations, a few auditors.
        let region = i % REGIONS.len();
        let nations: Vec<String> = (0..25)
            .filter(|n| nation_region(*n) == region)
            .map(|n| n.to_string())
            .collect();
        let group = if i % 50 == 0 {
            "Compliance"
        } else {
            "Analysts"
        };
        let _ = writeln!(
            y,
            "  - {{name: USER_{i:06}, roles: [ANALYST], groups: [{group}], attributes: {{Nation: [{}], Region: ['{}']}}}}",
            quoted(&nations),
            REGIONS[region]
        );
    }
    let manifest = dir.join("veil.yaml");
    fs::write(&manifest, y).map_err(|e| io_error(&manifest, "write", e))?;
    Ok(dir.to_path_buf())
}

/// The region of TPC-H nation `n` (fixed by the specification).
fn nation_region(n: usize) -> usize {
    const REGION_OF: [usize; 25] = [
        0, 1, 1, 1, 4, 0, 3, 3, 2, 2, 4, 4, 2, 4, 0, 0, 0, 1, 2, 3, 4, 2, 3, 3, 1,
    ];
    REGION_OF[n]
}

/// The policy set for [`BENCH_USER`] written by hand as plain DataFusion
/// views over the raw tables `raw_<table>`: what a careful user would write
/// instead of Veil, with DataFusion's own functions (`sha256`, `encode`,
/// `round`). `secret` is the workspace's hashing secret.
pub(crate) fn secure_views(secret: &str) -> Vec<String> {
    let secret = secret.replace('\'', "''");
    let nations = BENCH_NATIONS
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let regions = BENCH_REGIONS
        .iter()
        .map(|r| format!("'{r}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let hash = |table: &str, column: &str, width: usize| {
        format!(
            "left(encode(sha256(concat('{secret}/{DATABASE}.{SCHEMA}.{}', {column})), 'hex'), {width}) AS {column}",
            table.to_uppercase()
        )
    };
    let round =
        |column: &str| format!("CAST(round({column} / 100) * 100 AS DECIMAL(15, 2)) AS {column}");
    vec![
        format!(
            "CREATE VIEW region AS SELECT r_regionkey, r_name, CAST(NULL AS VARCHAR) AS r_comment \
             FROM raw_region WHERE r_name IN ({regions})"
        ),
        format!(
            "CREATE VIEW nation AS SELECT n_nationkey, n_name, n_regionkey, CAST(NULL AS VARCHAR) AS n_comment \
             FROM raw_nation WHERE n_nationkey IN ({nations})"
        ),
        format!(
            "CREATE VIEW supplier AS SELECT s_suppkey, {}, s_address, s_nationkey, {}, {}, \
             CAST(NULL AS VARCHAR) AS s_comment FROM raw_supplier WHERE s_nationkey IN ({nations})",
            hash("supplier", "s_name", 25),
            hash("supplier", "s_phone", 15),
            round("s_acctbal")
        ),
        format!(
            "CREATE VIEW customer AS SELECT c_custkey, {}, c_address, c_nationkey, {}, {}, \
             c_mktsegment, 'REDACTED' AS c_comment FROM raw_customer WHERE c_nationkey IN ({nations})",
            hash("customer", "c_name", 25),
            hash("customer", "c_phone", 15),
            round("c_acctbal")
        ),
        format!(
            "CREATE VIEW orders AS SELECT o_orderkey, o_custkey, o_orderstatus, {}, o_orderdate, \
             o_orderpriority, o_clerk, o_shippriority, 'REDACTED' AS o_comment FROM raw_orders",
            round("o_totalprice")
        ),
        format!(
            "CREATE VIEW lineitem AS SELECT l_orderkey, l_partkey, l_suppkey, l_linenumber, \
             l_quantity, {}, l_discount, l_tax, l_returnflag, l_linestatus, l_shipdate, \
             l_commitdate, l_receiptdate, l_shipinstruct, l_shipmode, \
             CAST(NULL AS VARCHAR) AS l_comment FROM raw_lineitem",
            round("l_extendedprice")
        ),
    ]
}
