#!/usr/bin/env python3
"""Precision and recall of `veil discover` on data it was not tuned on.

Generates a labelled workspace with Faker (a generator the Rust tests do not
use: other names, other phone layouts, other card issuers), runs
`veil discover -f json` on it and prints precision and recall per built-in
tag and overall.

    python3 -m venv /tmp/fvenv && /tmp/fvenv/bin/pip install faker
    /tmp/fvenv/bin/python scripts/discovery-check.py --veil target/debug/veil

Each column is labelled with the tag a correct discovery gives it, or none
(a decoy: values that look sensitive but are not, or plain business data).
"""

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile

from faker import Faker

EMAIL = "Discovered.Electronic Mail Address"
PHONE = "Discovered.Telephone Number"
SSN = "Discovered.US Social Security Number"
CARD = "Discovered.Credit Card Number"
IBAN = "Discovered.IBAN"
IP = "Discovered.IP Address"
URL = "Discovered.URL"
POSTAL = "Discovered.Postal Code"
DOB = "Discovered.Date of Birth"
NAME = "Discovered.Person Name"


def columns(fake: Faker, rnd: random.Random):
    """(column name, declared type, label, value generator)."""
    us, gb, ca = Faker("en_US"), Faker("en_GB"), Faker("en_CA")
    for f in (us, gb, ca):
        f.seed_instance(rnd.random())

    def luhn_fail():
        n = fake.credit_card_number(card_type="visa16")
        last = (int(n[-1]) + rnd.randint(1, 9)) % 10
        return n[:-1] + str(last)

    return [
        ("contact_email", "VARCHAR(80)", EMAIL, fake.email),
        ("work_mail", "VARCHAR(80)", EMAIL, fake.company_email),
        ("mobile", "VARCHAR(30)", PHONE, lambda: us.numerify("+1##########").replace("+10", "+12").replace("+11", "+13")),
        ("uk_phone", "VARCHAR(30)", PHONE, lambda: "+44" + gb.numerify("7#########")),
        ("tax_id", "VARCHAR(11)", SSN, lambda: us.ssn()),
        ("pan", "VARCHAR(19)", CARD, lambda: fake.credit_card_number(card_type=rnd.choice(["visa16", "mastercard", "amex", "discover"]))),
        ("account_iban", "VARCHAR(34)", IBAN, fake.iban),
        ("client_ip", "VARCHAR(15)", IP, fake.ipv4_public),
        ("server_ip6", "VARCHAR(39)", IP, fake.ipv6),
        ("homepage", "VARCHAR(100)", URL, fake.url),
        ("zip", "VARCHAR(10)", POSTAL, us.postcode),
        ("uk_postcode", "VARCHAR(10)", POSTAL, gb.postcode),
        ("birth_date", "DATE", DOB, lambda: fake.date_of_birth(minimum_age=18, maximum_age=90).isoformat()),
        ("full_name", "VARCHAR(60)", NAME, lambda: f"{us.first_name()} {us.last_name()}"),
        # Decoys.
        ("order_ref", "VARCHAR(19)", None, luhn_fail),
        ("file_sha1", "VARCHAR(40)", None, fake.sha1),
        ("request_id", "VARCHAR(36)", None, fake.uuid4),
        ("isbn", "VARCHAR(20)", None, fake.isbn13),
        ("sku", "VARCHAR(20)", None, lambda: fake.bothify("??-####-##").upper()),
        ("email_opt_in", "BOOLEAN", None, lambda: rnd.choice(["true", "false"])),
        ("job", "VARCHAR(80)", None, fake.job),
        ("company", "VARCHAR(80)", None, fake.company),
        ("city", "VARCHAR(40)", None, fake.city),
        ("comment", "VARCHAR(200)", None, lambda: fake.sentence(nb_words=8)),
        ("price", "NUMBER(10,2)", None, lambda: f"{rnd.uniform(1, 999):.2f}"),
        ("created_on", "DATE", None, lambda: fake.date_between("-3y").isoformat()),
        ("quantity", "NUMBER(10,0)", None, lambda: str(rnd.randint(1, 99999))),
        ("color", "VARCHAR(20)", None, fake.color_name),
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--veil", required=True, help="path to the veil binary")
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=20261203)
    ap.add_argument("--keep", help="write the workspace here instead of a temporary directory")
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    Faker.seed(args.seed)
    fake = Faker("en_US")
    cols = columns(fake, rnd)
    work = args.keep or tempfile.mkdtemp(prefix="veil-discovery-")
    os.makedirs(os.path.join(work, "data"), exist_ok=True)
    with open(os.path.join(work, "data", "people.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([c[0] for c in cols])
        for _ in range(args.rows):
            w.writerow([c[3]() for c in cols])
    with open(os.path.join(work, "veil.yaml"), "w") as f:
        f.write("settings: {default_database: HR, default_schema: CORE}\n")
        f.write("tables:\n  - name: HR.CORE.PEOPLE\n    location: data/people.csv\n    columns:\n")
        for name, ty, _, _ in cols:
            f.write(f"      - {{name: {name.upper()}, type: {ty}}}\n")
    out = subprocess.run(
        [args.veil, "discover", "-w", work, "--full", "-f", "json"],
        capture_output=True, text=True, env={**os.environ, "VEIL_SECRET": "discovery-check"},
    )
    if out.returncode != 0:
        sys.exit(f"veil discover failed: {out.stderr}")
    found = {
        f["column"]: f["tag"]
        for t in json.loads(out.stdout)["tables"]
        for f in t["findings"]
    }
    tp = fp = fn = 0
    for name, _, label, _ in cols:
        got = found.get(name.upper())
        verdict = "ok"
        if label and got == label:
            tp += 1
        elif label and got is None:
            fn += 1
            verdict = "MISSED"
        elif label:
            fp += 1
            fn += 1
            verdict = f"WRONG ({got})"
        elif got:
            fp += 1
            verdict = f"FALSE POSITIVE ({got})"
        print(f"{name:14} {label or '-':40} {got or '-':40} {verdict}")
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    labelled = sum(1 for c in cols if c[2])
    print(f"\n{args.rows} rows, {len(cols)} columns ({labelled} sensitive, {len(cols) - labelled} decoys): "
          f"precision {precision:.2f}, recall {recall:.2f}")


if __name__ == "__main__":
    main()
