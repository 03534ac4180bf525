//! Mask throughput, 8 192-row batches: each mask over 8/32/128-character
//! strings, distinct vs repeated values, `StringArray` vs `StringViewArray`
//! vs dictionary; `show_first`/`show_last` on ASCII and on Unicode text;
//! `round` on distinct Int64, Decimal128 (18 and 38 digits) and Date32
//! values. The reference for `hash` is SHA-256 + hex into a stack buffer
//! over the same bytes (`hash/reference_sha256_hex`: the mask must reach
//! 90 % of it, SPEC §8).

// criterion_group! generates undocumented items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use datafusion::arrow::array::{
    ArrayRef, Date32Array, Decimal128Array, DictionaryArray, Int64Array, StringArray,
    StringViewArray,
};
use datafusion::arrow::datatypes::{Field, Int32Type};
use datafusion::common::ScalarValue;
use datafusion::common::config::ConfigOptions;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF};
use sha2::{Digest, Sha256};

const ROWS: usize = 8192;

fn distinct_strings(len: usize) -> Vec<String> {
    (0..ROWS).map(|i| format!("{i:0>len$}")).collect()
}

fn repeated_strings(len: usize, distinct: usize) -> Vec<String> {
    (0..ROWS)
        .map(|i| format!("{:0>len$}", i % distinct))
        .collect()
}

fn layouts(values: &[String]) -> Vec<(&'static str, ArrayRef)> {
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    vec![
        (
            "utf8",
            Arc::new(StringArray::from(refs.clone())) as ArrayRef,
        ),
        (
            "utf8view",
            Arc::new(StringViewArray::from(refs.clone())) as ArrayRef,
        ),
        (
            "dictionary",
            Arc::new(refs.iter().copied().collect::<DictionaryArray<Int32Type>>()) as ArrayRef,
        ),
    ]
}

fn invoke(udf: &ScalarUDF, array: &ArrayRef, params: &[ScalarValue]) -> ArrayRef {
    let mut args = vec![ColumnarValue::Array(Arc::clone(array))];
    args.extend(params.iter().cloned().map(ColumnarValue::Scalar));
    let arg_fields = args
        .iter()
        .map(|a| Arc::new(Field::new("a", a.data_type(), true)))
        .collect();
    let types: Vec<_> = args.iter().map(|a| a.data_type()).collect();
    let return_type = udf.return_type(&types).expect("return type");
    udf.invoke_with_args(ScalarFunctionArgs {
        args,
        arg_fields,
        number_rows: array.len(),
        return_field: Arc::new(Field::new("r", return_type, true)),
        config_options: Arc::new(ConfigOptions::default()),
    })
    .expect("mask runs")
    .into_array(array.len())
    .expect("array")
}

fn lit(s: &str) -> ScalarValue {
    ScalarValue::Utf8(Some(s.to_string()))
}

/// SHA-256 of salt || value, hex into a stack buffer: the reference cost.
fn reference(values: &[String]) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let base = Sha256::new_with_prefix(b"secret/DB.S.T");
    let mut total = 0;
    for v in values {
        let digest = base.clone().chain_update(v.as_bytes()).finalize();
        let mut hex = [0u8; 64];
        for (i, b) in digest.iter().enumerate() {
            hex[2 * i] = HEX[usize::from(b >> 4)];
            hex[2 * i + 1] = HEX[usize::from(b & 0xf)];
        }
        total += black_box(hex)[0] as usize;
    }
    total
}

fn bench_hash(c: &mut Criterion) {
    let udf = veil_udfs::mask_hash::mask_hash("secret");
    let params = [lit("DB.S.T"), lit("VARCHAR(64)")];
    let mut group = c.benchmark_group("hash");
    group.throughput(Throughput::Elements(ROWS as u64));
    for len in [8, 32, 128] {
        let distinct = distinct_strings(len);
        group.bench_with_input(
            BenchmarkId::new("reference_sha256_hex", len),
            &distinct,
            |b, v| b.iter(|| reference(v)),
        );
        for (layout, array) in layouts(&distinct) {
            group.bench_with_input(
                BenchmarkId::new(format!("distinct/{layout}"), len),
                &array,
                |b, a| b.iter(|| invoke(&udf, a, &params)),
            );
        }
        let repeated = repeated_strings(len, 100);
        for (layout, array) in layouts(&repeated) {
            group.bench_with_input(
                BenchmarkId::new(format!("repeated100/{layout}"), len),
                &array,
                |b, a| b.iter(|| invoke(&udf, a, &params)),
            );
        }
    }
    group.finish();
}

fn bench_regex(c: &mut Criterion) {
    let memo = veil_udfs::mask_regex::mask_regex(100_000);
    let plain = veil_udfs::mask_regex::mask_regex(0);
    let params = [
        lit(r"^(\w)\w*@([\w.]+)\.(\w+)$"),
        lit("$1***@$2.$3"),
        lit("VARCHAR(64)"),
    ];
    let mut group = c.benchmark_group("regex_captures");
    group.throughput(Throughput::Elements(ROWS as u64));
    let repeated: Vec<String> = (0..ROWS)
        .map(|i| format!("user{}@mail{}.example.com", i % 100, i % 7))
        .collect();
    let array: ArrayRef = Arc::new(StringArray::from(
        repeated.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    group.bench_function("repeated100/memoized", |b| {
        b.iter(|| invoke(&memo, &array, &params))
    });
    group.bench_function("repeated100/unmemoized", |b| {
        b.iter(|| invoke(&plain, &array, &params))
    });
    group.finish();
}

fn bench_others(c: &mut Criterion) {
    let mut group = c.benchmark_group("masks");
    group.throughput(Throughput::Elements(ROWS as u64));
    let show_last = veil_udfs::mask_show_last::mask_show_last();
    let show_first = veil_udfs::mask_show_first::mask_show_first();
    let constant = veil_udfs::mask_constant::mask_constant();
    let null = veil_udfs::mask_null::mask_null();
    let values = distinct_strings(32);
    for (layout, array) in layouts(&values) {
        group.bench_with_input(BenchmarkId::new("show_last", layout), &array, |b, a| {
            b.iter(|| {
                invoke(
                    &show_last,
                    a,
                    &[ScalarValue::Int64(Some(4)), lit("VARCHAR(32)")],
                )
            })
        });
        group.bench_with_input(BenchmarkId::new("constant", layout), &array, |b, a| {
            b.iter(|| invoke(&constant, a, &[lit("REDACTED"), lit("VARCHAR(5)")]))
        });
        group.bench_with_input(BenchmarkId::new("null", layout), &array, |b, a| {
            b.iter(|| invoke(&null, a, &[]))
        });
    }
    // Distinct ASCII e-mail addresses (letters, digits, punctuation), and
    // the same shape with accented and CJK letters for the exact path.
    let emails: Vec<String> = (0..ROWS)
        .map(|i| format!("Customer.{i:05}@Example{}.com", i % 97))
        .collect();
    let unicode: Vec<String> = (0..ROWS)
        .map(|i| format!("Zoë.Émile{i:05}@例え{}.com", i % 97))
        .collect();
    for (name, values) in [("ascii", &emails), ("unicode", &unicode)] {
        for (layout, array) in layouts(values) {
            group.bench_with_input(
                BenchmarkId::new(format!("show_last_{name}"), layout),
                &array,
                |b, a| {
                    b.iter(|| {
                        invoke(
                            &show_last,
                            a,
                            &[ScalarValue::Int64(Some(4)), lit("VARCHAR(64)")],
                        )
                    })
                },
            );
            group.bench_with_input(
                BenchmarkId::new(format!("show_first_{name}"), layout),
                &array,
                |b, a| {
                    b.iter(|| {
                        invoke(
                            &show_first,
                            a,
                            &[ScalarValue::Int64(Some(3)), lit("VARCHAR(64)")],
                        )
                    })
                },
            );
        }
    }
    bench_round(&mut group);
    group.finish();
}

/// `round` over distinct numbers and dates: Int64 and Decimal128 within 18
/// digits (the i64 path), Decimal128(38,2) with values within and beyond
/// 64 bits (the i64 and i128 paths), Date32.
fn bench_round(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    let round = veil_udfs::mask_round::mask_round();
    let numbers: ArrayRef = Arc::new(Int64Array::from_iter_values(
        (0..ROWS as i64).map(|i| i * 37 % 1000),
    ));
    group.bench_function("round/int64", |b| {
        b.iter(|| invoke(&round, &numbers, &[lit("10"), lit("NUMBER(3,0)")]))
    });
    // Distinct values spread over ±6·10^11.
    let spread = |i: i64| (i * 1_000_000_007) % 1_200_000_000_000 - 600_000_000_000;
    let distinct: ArrayRef = Arc::new(Int64Array::from_iter_values((0..ROWS as i64).map(spread)));
    group.bench_function("round/int64_distinct", |b| {
        b.iter(|| invoke(&round, &distinct, &[lit("100"), lit("NUMBER(12,0)")]))
    });
    let decimal = |p: u8, factor: i128| -> ArrayRef {
        Arc::new(
            Decimal128Array::from_iter_values(
                (0..ROWS as i64).map(|i| i128::from(spread(i)) * factor),
            )
            .with_precision_and_scale(p, 2)
            .expect("valid decimal type"),
        )
    };
    let narrow = decimal(15, 1);
    group.bench_function("round/decimal128_p15", |b| {
        b.iter(|| invoke(&round, &narrow, &[lit("0.5"), lit("NUMBER(12,2)")]))
    });
    // NUMBER(38, s) is Snowflake's default number type: its values mostly
    // fit in 64 bits, and round there through the 64-bit kernel.
    let default_type = decimal(38, 1);
    group.bench_function("round/decimal128_p38_within_64_bits", |b| {
        b.iter(|| invoke(&round, &default_type, &[lit("100"), lit("NUMBER(38,2)")]))
    });
    // Values beyond 64 bits (±6·10^21).
    let wide = decimal(38, 10_000_000_000);
    group.bench_function("round/decimal128_p38", |b| {
        b.iter(|| invoke(&round, &wide, &[lit("100"), lit("NUMBER(38,2)")]))
    });
    // Every day from 1900 on.
    let dates: ArrayRef = Arc::new(Date32Array::from_iter_values(
        (0..ROWS as i32).map(|i| i * 3 - 25_567),
    ));
    for unit in ["month", "year"] {
        group.bench_function(format!("round/date32_{unit}"), |b| {
            b.iter(|| invoke(&round, &dates, &[lit(unit), lit("DATE")]))
        });
    }
}

criterion_group!(benches, bench_hash, bench_regex, bench_others);
criterion_main!(benches);
