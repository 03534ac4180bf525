//! Labelled fixtures for discovery, generated deterministically: each
//! column is either sensitive (the tag discovery must give it) or a decoy
//! (a column that must stay untagged: 16-digit numbers failing Luhn, hex
//! digests, part numbers, a boolean named `email_opt_in`, ...). The same
//! rows are written as CSV and Parquet.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, Date32Array, Int64Array, StringArray};
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;

/// SplitMix64, for reproducible data.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub(crate) fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

pub(crate) fn luhn_check_digit(body: &str) -> char {
    // The digit that makes body + digit pass Luhn.
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i.is_multiple_of(2) {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    char::from(b'0' + ((10 - sum % 10) % 10) as u8)
}

pub(crate) fn card(rng: &mut Rng) -> String {
    let (prefix, len) = *rng.pick(&[
        ("4", 16),
        ("51", 16),
        ("55", 16),
        ("37", 15),
        ("6011", 16),
        ("3530", 16),
    ]);
    let body = format!("{prefix}{}", rng.digits(len - prefix.len() - 1));
    format!("{body}{}", luhn_check_digit(&body))
}

/// 16 digits starting like a Visa number whose check digit is wrong.
pub(crate) fn non_luhn_16(rng: &mut Rng) -> String {
    let body = format!("4{}", rng.digits(14));
    let good = luhn_check_digit(&body);
    let bad = char::from(b'0' + ((good as u8 - b'0' + 1 + rng.below(9) as u8) % 10));
    format!("{body}{bad}")
}

fn mod97(digits: &str) -> u32 {
    digits
        .bytes()
        .fold(0u32, |r, b| (r * 10 + u32::from(b - b'0')) % 97)
}

fn letters_to_digits(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_digit() {
                c.to_string()
            } else {
                (c as u32 - 'A' as u32 + 10).to_string()
            }
        })
        .collect()
}

pub(crate) fn iban(rng: &mut Rng, country: &str, bban: &str) -> String {
    let _ = rng;
    let check = 98 - mod97(&letters_to_digits(&format!("{bban}{country}00")));
    format!("{country}{check:02}{bban}")
}

pub(crate) fn ssn(rng: &mut Rng) -> String {
    let area = loop {
        let a = 1 + rng.below(899);
        if a != 666 {
            break a;
        }
    };
    format!(
        "{area:03}-{:02}-{:04}",
        1 + rng.below(99),
        1 + rng.below(9999)
    )
}

pub(crate) fn hex(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b"0123456789abcdef"[rng.below(16) as usize]))
        .collect()
}

const GIVEN: &[&str] = &[
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "Maria",
    "Wei",
    "Fatima",
    "Lucas",
    "Sofia",
];
const FAMILY: &[&str] = &[
    "Smith", "Johnson", "Garcia", "Miller", "Davis", "Martinez", "Nguyen", "Patel", "Kim",
    "Muller", "Rossi", "Dubois", "Kowalski",
];

/// A column of a fixture: name, declared type, values, expected tag.
pub(crate) struct FixtureColumn {
    pub(crate) name: &'static str,
    pub(crate) declared: &'static str,
    pub(crate) data: ArrayRef,
    pub(crate) expected: Option<&'static str>,
}

/// A generated fixture.
pub(crate) struct Fixture {
    pub(crate) columns: Vec<FixtureColumn>,
}

impl Fixture {
    /// Column → expected tag, for the columns that have one.
    pub(crate) fn labels(&self) -> BTreeMap<String, String> {
        self.columns
            .iter()
            .filter_map(|c| c.expected.map(|t| (c.name.to_string(), t.to_string())))
            .collect()
    }

    pub(crate) fn batch(&self) -> RecordBatch {
        let fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| Field::new(c.name.to_lowercase(), c.data.data_type().clone(), true))
            .collect();
        RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            self.columns.iter().map(|c| Arc::clone(&c.data)).collect(),
        )
        .expect("fixture batch")
    }

    pub(crate) fn write_csv(&self, path: &Path) {
        let file = std::fs::File::create(path).expect("create csv");
        let mut w = datafusion::arrow::csv::WriterBuilder::new()
            .with_header(true)
            .build(file);
        w.write(&self.batch()).expect("write csv");
    }

    pub(crate) fn write_parquet(&self, path: &Path) {
        let file = std::fs::File::create(path).expect("create parquet");
        let batch = self.batch();
        let mut w = ArrowWriter::try_new(file, batch.schema(), None).expect("parquet writer");
        w.write(&batch).expect("write parquet");
        w.close().expect("close parquet");
    }

    /// The `columns:` block of a table declaration.
    pub(crate) fn columns_yaml(&self) -> String {
        self.columns
            .iter()
            .map(|c| format!("      - {{name: {}, type: \"{}\"}}\n", c.name, c.declared))
            .collect()
    }
}

fn strings(v: Vec<String>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}

fn date(days_since_epoch: i64) -> i32 {
    days_since_epoch as i32
}

/// The fixture the tests tune on: 20 columns (10 sensitive, 10 decoys).
pub(crate) fn labelled(rows: usize, seed: u64) -> Fixture {
    let mut r = Rng(seed);
    let mut col = |f: &mut dyn FnMut(&mut Rng, usize) -> String| -> ArrayRef {
        strings((0..rows).map(|i| f(&mut r, i)).collect())
    };
    let email = col(&mut |r, i| {
        format!(
            "{}.{}{}@{}",
            r.pick(GIVEN).to_lowercase(),
            r.pick(FAMILY).to_lowercase(),
            i,
            r.pick(&["example.com", "mail.example.org", "corp.example.co.uk"])
        )
    });
    let phone = col(&mut |r, _| match r.below(4) {
        0 => format!(
            "({}{}) {}{}-{}",
            2 + r.below(8),
            r.digits(2),
            2 + r.below(8),
            r.digits(2),
            r.digits(4)
        ),
        1 => format!("+44 20 {} {}", r.digits(4), r.digits(4)),
        2 => format!(
            "{}{}-{}{}-{}",
            2 + r.below(8),
            r.digits(2),
            2 + r.below(8),
            r.digits(2),
            r.digits(4)
        ),
        _ => format!(
            "+1 {}{} {}{} {}",
            2 + r.below(8),
            r.digits(2),
            2 + r.below(8),
            r.digits(2),
            r.digits(4)
        ),
    });
    let ssn_col = col(&mut |r, _| ssn(r));
    let card_col = col(&mut |r, _| card(r));
    let iban_col = col(&mut |r, _| {
        if r.below(2) == 0 {
            let b = r.digits(18);
            iban(r, "DE", &b)
        } else {
            let b = format!("NWBK{}", r.digits(14));
            iban(r, "GB", &b)
        }
    });
    let ip = col(&mut |r, _| {
        if r.below(3) == 0 {
            format!("2001:db8:{:x}::{:x}", r.below(65535), r.below(65535))
        } else {
            format!(
                "{}.{}.{}.{}",
                1 + r.below(223),
                r.below(256),
                r.below(256),
                1 + r.below(254)
            )
        }
    });
    let url = col(&mut |r, i| {
        format!(
            "https://{}.example.com/profile/{i}?ref={}",
            r.pick(&["www", "shop", "app"]),
            hex(r, 6)
        )
    });
    let postal = col(&mut |r, _| match r.below(3) {
        0 => format!("{}-{}", r.digits(5), r.digits(4)),
        1 => format!(
            "{} {}",
            r.pick(&["SW1A", "EC1A", "M1", "B33", "W1A"]),
            r.pick(&["1AA", "1BB", "8TH", "0AX"])
        ),
        _ => format!(
            "{} {}",
            r.pick(&["K1A", "H2X", "M5V", "V6B"]),
            r.pick(&["0B1", "3Y7", "2T6"])
        ),
    });
    let name = col(&mut |r, _| format!("{} {}", r.pick(GIVEN), r.pick(FAMILY)));
    let order_ref = col(&mut |r, _| non_luhn_16(r));
    let digest = col(&mut |r, _| hex(r, 64));
    let part = col(&mut |r, _| {
        format!(
            "PN-{}-{}{}",
            r.digits(4),
            char::from(b'A' + r.below(26) as u8),
            char::from(b'A' + r.below(26) as u8)
        )
    });
    let status = col(&mut |r, _| {
        r.pick(&["active", "pending", "closed", "on hold"])
            .to_string()
    });
    let version = col(&mut |r, _| format!("{}.{}.{}", r.below(10), r.below(20), r.below(50)));
    let product = col(&mut |r, _| {
        format!(
            "{} {}",
            r.pick(&["Widget", "Gadget", "Sprocket", "Flux"]),
            r.pick(&["Pro", "Mini", "3000", "Max"])
        )
    });
    let birth: ArrayRef = Arc::new(Date32Array::from(
        (0..rows)
            .map(|_| date(-20000 + r.below(15000) as i64))
            .collect::<Vec<_>>(),
    ));
    let created: ArrayRef = Arc::new(Date32Array::from(
        (0..rows)
            .map(|_| date(18000 + r.below(2000) as i64))
            .collect::<Vec<_>>(),
    ));
    let opt_in: ArrayRef = Arc::new(BooleanArray::from(
        (0..rows).map(|_| r.below(2) == 0).collect::<Vec<_>>(),
    ));
    let amount: ArrayRef = Arc::new(Int64Array::from(
        (0..rows)
            .map(|_| 10_000 + r.below(89_999) as i64)
            .collect::<Vec<_>>(),
    ));
    let id: ArrayRef = Arc::new(Int64Array::from((0..rows as i64).collect::<Vec<_>>()));
    let c = |name, declared, data, expected| FixtureColumn {
        name,
        declared,
        data,
        expected,
    };
    Fixture {
        columns: vec![
            c("ID", "NUMBER(10,0)", id, None),
            c(
                "EMAIL",
                "VARCHAR",
                email,
                Some("Discovered.Electronic Mail Address"),
            ),
            c(
                "PHONE",
                "VARCHAR",
                phone,
                Some("Discovered.Telephone Number"),
            ),
            c(
                "SSN",
                "VARCHAR",
                ssn_col,
                Some("Discovered.US Social Security Number"),
            ),
            c(
                "CARD_NUMBER",
                "VARCHAR",
                card_col,
                Some("Discovered.Credit Card Number"),
            ),
            c("IBAN", "VARCHAR", iban_col, Some("Discovered.IBAN")),
            c("CLIENT_IP", "VARCHAR", ip, Some("Discovered.IP Address")),
            c("PROFILE_URL", "VARCHAR", url, Some("Discovered.URL")),
            c(
                "POSTAL_CODE",
                "VARCHAR",
                postal,
                Some("Discovered.Postal Code"),
            ),
            c(
                "BIRTH_DATE",
                "DATE",
                birth,
                Some("Discovered.Date of Birth"),
            ),
            c("FULL_NAME", "VARCHAR", name, Some("Discovered.Person Name")),
            c("ORDER_REF", "VARCHAR", order_ref, None),
            c("DIGEST", "VARCHAR", digest, None),
            c("PART_NUMBER", "VARCHAR", part, None),
            c("EMAIL_OPT_IN", "BOOLEAN", opt_in, None),
            c("CREATED_AT", "DATE", created, None),
            c("AMOUNT_CENTS", "NUMBER(10,0)", amount, None),
            c("STATUS", "VARCHAR", status, None),
            c("APP_VERSION", "VARCHAR", version, None),
            c("PRODUCT", "VARCHAR", product, None),
        ],
    }
}

/// A second fixture, generated differently (other formats, other names,
/// other decoys) and never used to tune the classifiers: precision and
/// recall on it are measured, not asserted.
pub(crate) fn unseen(rows: usize, seed: u64) -> Fixture {
    let mut r = Rng(seed);
    let mut col = |f: &mut dyn FnMut(&mut Rng, usize) -> String| -> ArrayRef {
        strings((0..rows).map(|i| f(&mut r, i)).collect())
    };
    const GIVEN2: &[&str] = &[
        "Olivia", "Liam", "Emma", "Noah", "Ava", "Ethan", "Chloe", "Mateo", "Yuki", "Priya",
        "Ahmed", "Ingrid", "Siobhan", "Dmitri", "Kwame",
    ];
    const FAMILY2: &[&str] = &[
        "Anderson",
        "Thompson",
        "Walker",
        "Okafor",
        "Haddad",
        "Lindqvist",
        "Ivanova",
        "Tanaka",
        "Schneider",
        "Moreau",
        "Byrne",
        "Mensah",
        "Fernandes",
    ];
    let contact = col(&mut |r, _| {
        format!(
            "{}+{}@{}",
            r.pick(GIVEN2).to_lowercase(),
            hex(r, 4),
            r.pick(&[
                "gmail.com",
                "outlook.de",
                "uni-heidelberg.de",
                "example.museum"
            ])
        )
    });
    let mobile = col(&mut |r, _| {
        format!(
            "+{}{}",
            r.pick(&["49151", "33612", "447700", "8190"]),
            r.digits(8)
        )
    });
    let ssn_col = col(&mut |r, _| ssn(r).replace('-', " "));
    let pan = col(&mut |r, _| {
        let c = card(r);
        c.as_bytes()
            .chunks(4)
            .map(|x| String::from_utf8_lossy(x).to_string())
            .collect::<Vec<_>>()
            .join(" ")
    });
    let acct = col(&mut |r, _| {
        let b = format!("{}{}", r.digits(10), r.digits(13));
        let i = iban(r, "FR", &b[..23]);
        i.as_bytes()
            .chunks(4)
            .map(|x| String::from_utf8_lossy(x).to_string())
            .collect::<Vec<_>>()
            .join(" ")
    });
    let ip6 = col(&mut |r, _| {
        format!(
            "fe80::{:x}:{:x}:{:x}:{:x}",
            r.below(65535),
            r.below(65535),
            r.below(65535),
            r.below(65535)
        )
    });
    let homepage = col(&mut |r, _| {
        format!(
            "http://{}.example.net/~{}",
            r.pick(&["people", "staff"]),
            r.pick(GIVEN2).to_lowercase()
        )
    });
    let postcode = col(&mut |r, _| {
        format!(
            "{}{} {}{}",
            r.pick(&["SW", "N", "LS", "G", "CF"]),
            1 + r.below(20),
            r.below(10),
            r.pick(&["AB", "DE", "FG", "HJ", "LN"])
        )
    });
    let dob = col(&mut |r, _| {
        format!(
            "{:02}/{:02}/{}",
            1 + r.below(12),
            1 + r.below(28),
            1940 + r.below(60)
        )
    });
    let customer = col(&mut |r, _| format!("{}, {}", r.pick(FAMILY2), r.pick(GIVEN2)));
    let uuid = col(&mut |r, _| {
        format!(
            "{}-{}-4{}-a{}-{}",
            hex(r, 8),
            hex(r, 4),
            hex(r, 3),
            hex(r, 3),
            hex(r, 12)
        )
    });
    let isbn = col(&mut |r, _| format!("978{}", r.digits(10)));
    let host = col(&mut |r, _| format!("db-{:02}.internal", r.below(40)));
    let lat = col(&mut |r, _| format!("{}.{}", 10 + r.below(70), r.digits(4)));
    let tracking = col(&mut |r, _| format!("1Z{}{}", hex(r, 6).to_uppercase(), r.digits(10)));
    let city = col(&mut |r, _| {
        r.pick(&[
            "Springfield",
            "Riverside",
            "Fairview",
            "Madison",
            "Georgetown",
            "Salem",
        ])
        .to_string()
    });
    let c = |name, declared, data, expected| FixtureColumn {
        name,
        declared,
        data,
        expected,
    };
    Fixture {
        columns: vec![
            c(
                "CONTACT",
                "VARCHAR",
                contact,
                Some("Discovered.Electronic Mail Address"),
            ),
            c(
                "MOBILE",
                "VARCHAR",
                mobile,
                Some("Discovered.Telephone Number"),
            ),
            c(
                "SOCIAL",
                "VARCHAR",
                ssn_col,
                Some("Discovered.US Social Security Number"),
            ),
            c("PAN", "VARCHAR", pan, Some("Discovered.Credit Card Number")),
            c("ACCT", "VARCHAR", acct, Some("Discovered.IBAN")),
            c(
                "LAST_SEEN_FROM",
                "VARCHAR",
                ip6,
                Some("Discovered.IP Address"),
            ),
            c("HOMEPAGE", "VARCHAR", homepage, Some("Discovered.URL")),
            c(
                "POSTCODE",
                "VARCHAR",
                postcode,
                Some("Discovered.Postal Code"),
            ),
            c("DOB", "VARCHAR", dob, Some("Discovered.Date of Birth")),
            c(
                "CUSTOMER",
                "VARCHAR",
                customer,
                Some("Discovered.Person Name"),
            ),
            c("REQUEST_ID", "VARCHAR", uuid, None),
            c("ISBN", "VARCHAR", isbn, None),
            c("HOST", "VARCHAR", host, None),
            c("LATITUDE", "VARCHAR", lat, None),
            c("TRACKING", "VARCHAR", tracking, None),
            c("CITY", "VARCHAR", city, None),
        ],
    }
}
