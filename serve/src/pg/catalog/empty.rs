//! The catalogs that are always empty in Veil, with their columns.

use super::*;

/// Catalogs that are empty in Veil: indexes, constraints, inheritance,
/// defaults, comments, functions, triggers, policies, rules, views, ...
pub(crate) const EMPTY_CATALOGS: &[(&str, &[(&str, DataType)])] = &[
    (
        "pg_description",
        &[
            ("objoid", I8),
            ("classoid", I8),
            ("objsubid", I4),
            ("description", TEXT),
        ],
    ),
    (
        "pg_shdescription",
        &[("objoid", I8), ("classoid", I8), ("description", TEXT)],
    ),
    (
        "pg_index",
        &[
            ("indexrelid", I8),
            ("indrelid", I8),
            ("indnatts", I2),
            ("indnkeyatts", I2),
            ("indisunique", BOOL),
            ("indisprimary", BOOL),
            ("indisclustered", BOOL),
            ("indisvalid", BOOL),
            ("indisreplident", BOOL),
            ("indkey", TEXT),
            ("indexprs", TEXT),
            ("indpred", TEXT),
        ],
    ),
    (
        "pg_constraint",
        &[
            ("oid", I8),
            ("conname", TEXT),
            ("connamespace", I8),
            ("contype", TEXT),
            ("condeferrable", BOOL),
            ("condeferred", BOOL),
            ("convalidated", BOOL),
            ("conrelid", I8),
            ("contypid", I8),
            ("conindid", I8),
            ("confrelid", I8),
            ("conkey", TEXT),
            ("confkey", TEXT),
            ("conislocal", BOOL),
            ("conparentid", I8),
        ],
    ),
    (
        "pg_inherits",
        &[
            ("inhrelid", I8),
            ("inhparent", I8),
            ("inhseqno", I4),
            ("inhdetachpending", BOOL),
        ],
    ),
    (
        "pg_attrdef",
        &[("oid", I8), ("adrelid", I8), ("adnum", I2), ("adbin", TEXT)],
    ),
    (
        "pg_collation",
        &[("oid", I8), ("collname", TEXT), ("collnamespace", I8)],
    ),
    (
        "pg_proc",
        &[
            ("oid", I8),
            ("proname", TEXT),
            ("pronamespace", I8),
            ("proowner", I8),
            ("prokind", TEXT),
            ("prorettype", I8),
            ("proargtypes", TEXT),
            ("proretset", BOOL),
        ],
    ),
    (
        "pg_trigger",
        &[
            ("oid", I8),
            ("tgrelid", I8),
            ("tgname", TEXT),
            ("tgisinternal", BOOL),
            ("tgenabled", TEXT),
            ("tgparentid", I8),
        ],
    ),
    (
        "pg_policy",
        &[
            ("oid", I8),
            ("polname", TEXT),
            ("polrelid", I8),
            ("polcmd", TEXT),
            ("polpermissive", BOOL),
            ("polroles", TEXT),
            ("polqual", TEXT),
            ("polwithcheck", TEXT),
        ],
    ),
    (
        "pg_rewrite",
        &[
            ("oid", I8),
            ("rulename", TEXT),
            ("ev_class", I8),
            ("ev_type", TEXT),
        ],
    ),
    (
        "pg_statistic_ext",
        &[
            ("oid", I8),
            ("stxrelid", I8),
            ("stxname", TEXT),
            ("stxnamespace", I8),
            ("stxowner", I8),
            ("stxstattarget", I4),
            ("stxkeys", TEXT),
            ("stxkind", TEXT),
        ],
    ),
    (
        "pg_publication",
        &[
            ("oid", I8),
            ("pubname", TEXT),
            ("pubowner", I8),
            ("puballtables", BOOL),
            ("pubinsert", BOOL),
            ("pubupdate", BOOL),
            ("pubdelete", BOOL),
            ("pubtruncate", BOOL),
            ("pubviaroot", BOOL),
        ],
    ),
    (
        "pg_publication_rel",
        &[
            ("oid", I8),
            ("prpubid", I8),
            ("prrelid", I8),
            ("prqual", TEXT),
            ("prattrs", TEXT),
        ],
    ),
    (
        "pg_publication_namespace",
        &[("oid", I8), ("pnpubid", I8), ("pnnspid", I8)],
    ),
    (
        "pg_foreign_table",
        &[("ftrelid", I8), ("ftserver", I8), ("ftoptions", TEXT)],
    ),
    (
        "pg_partitioned_table",
        &[("partrelid", I8), ("partstrat", TEXT), ("partnatts", I2)],
    ),
    (
        "pg_views",
        &[
            ("schemaname", TEXT),
            ("viewname", TEXT),
            ("viewowner", TEXT),
            ("definition", TEXT),
        ],
    ),
    (
        "pg_matviews",
        &[
            ("schemaname", TEXT),
            ("matviewname", TEXT),
            ("matviewowner", TEXT),
            ("definition", TEXT),
        ],
    ),
    (
        "pg_extension",
        &[
            ("oid", I8),
            ("extname", TEXT),
            ("extowner", I8),
            ("extnamespace", I8),
            ("extversion", TEXT),
        ],
    ),
    (
        "pg_enum",
        &[
            ("oid", I8),
            ("enumtypid", I8),
            ("enumsortorder", DataType::Float64),
            ("enumlabel", TEXT),
        ],
    ),
    (
        "pg_depend",
        &[
            ("classid", I8),
            ("objid", I8),
            ("objsubid", I4),
            ("refclassid", I8),
            ("refobjid", I8),
            ("refobjsubid", I4),
            ("deptype", TEXT),
        ],
    ),
    (
        "pg_sequence",
        &[
            ("seqrelid", I8),
            ("seqtypid", I8),
            ("seqstart", I8),
            ("seqincrement", I8),
        ],
    ),
    ("pg_event_trigger", &[("oid", I8), ("evtname", TEXT)]),
    // Role membership: a login's roles are Veil's, not PostgreSQL's.
    (
        "pg_auth_members",
        &[
            ("oid", I8),
            ("roleid", I8),
            ("member", I8),
            ("grantor", I8),
            ("admin_option", BOOL),
        ],
    ),
    (
        "pg_stat_user_tables",
        &[
            ("relid", I8),
            ("schemaname", TEXT),
            ("relname", TEXT),
            ("n_live_tup", I8),
        ],
    ),
    (
        "pg_stat_activity",
        &[
            ("datid", I8),
            ("datname", TEXT),
            ("pid", I4),
            ("usename", TEXT),
            ("application_name", TEXT),
            ("state", TEXT),
            ("query", TEXT),
        ],
    ),
];
