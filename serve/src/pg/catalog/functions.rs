//! The functions catalog queries call: constants of the session
//! (`current_database()`, `version()`, ...) and the computed ones of
//! [`crate::pg::functions`].

use super::*;

/// A catalog function that ignores its arguments and returns a constant.
fn constant_udf(name: &str, value: ScalarValue) -> ScalarUDF {
    ScalarUDF::new_from_impl(Constant {
        name: name.to_string(),
        signature: Signature::one_of(
            vec![TypeSignature::Nullary, TypeSignature::VariadicAny],
            Volatility::Stable,
        ),
        value,
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Constant {
    name: String,
    signature: Signature,
    value: ScalarValue,
}

impl datafusion::logical_expr::ScalarUDFImpl for Constant {
    fn name(&self) -> &str {
        &self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(self.value.data_type())
    }
    fn invoke_with_args(
        &self,
        _args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> DfResult<ColumnarValue> {
        Ok(ColumnarValue::Scalar(self.value.clone()))
    }
}

/// The functions catalog queries call.
pub(super) fn register_functions(
    ctx: &SessionContext,
    database: &str,
    login: &str,
    schema: Option<String>,
) {
    let schema = schema.unwrap_or_else(|| "public".into());
    let constants: Vec<(&str, ScalarValue)> = vec![
        ("pg_get_userbyid", s(OWNER)),
        ("pg_table_is_visible", b(true)),
        ("pg_type_is_visible", b(true)),
        ("pg_function_is_visible", b(true)),
        ("pg_relation_is_publishable", b(false)),
        ("pg_get_expr", null_s()),
        ("pg_get_indexdef", null_s()),
        ("pg_get_constraintdef", null_s()),
        ("pg_get_viewdef", null_s()),
        ("pg_get_triggerdef", null_s()),
        ("pg_get_ruledef", null_s()),
        ("pg_get_partkeydef", null_s()),
        ("pg_get_statisticsobjdef_columns", null_s()),
        ("obj_description", null_s()),
        ("col_description", null_s()),
        ("shobj_description", null_s()),
        ("has_table_privilege", b(true)),
        ("has_schema_privilege", b(true)),
        ("has_database_privilege", b(true)),
        ("has_column_privilege", b(true)),
        ("has_any_column_privilege", b(true)),
        ("pg_has_role", b(false)),
        ("current_schema", s(&schema)),
        ("current_database", s(database)),
        ("current_catalog", s(database)),
        ("session_user", s(login)),
        ("current_user", s(login)),
        ("user", s(login)),
        ("version", s(&format!("PostgreSQL {SERVER_VERSION}"))),
        ("pg_backend_pid", i4v(0)),
        ("pg_encoding_to_char", s("UTF8")),
        ("pg_is_in_recovery", b(false)),
        ("pg_total_relation_size", i8v(0)),
        ("pg_relation_size", i8v(0)),
        ("pg_table_size", i8v(0)),
        ("pg_indexes_size", i8v(0)),
        ("pg_get_serial_sequence", null_s()),
        ("txid_current", i8v(1)),
    ];
    for (name, value) in constants {
        ctx.register_udf(constant_udf(name, value));
    }
    crate::pg::functions::register(ctx, &schema);
    ctx.register_udf(create_udf(
        "format_type",
        vec![I8, I8],
        TEXT,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let cast = |a: &ArrayRef| datafusion::arrow::compute::cast(a, &I8);
            let oids = cast(&arrays[0])?;
            let mods = cast(&arrays[1])?;
            let oids = oids.as_any().downcast_ref::<Int64Array>();
            let mods = mods.as_any().downcast_ref::<Int64Array>();
            let (Some(oids), Some(mods)) = (oids, mods) else {
                return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)));
            };
            let out: StringArray = oids
                .iter()
                .zip(mods.iter())
                .map(|(o, m)| o.and_then(|o| format_type(o, m.unwrap_or(-1))))
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    ));
}
