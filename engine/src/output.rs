//! Formatting query results as a table, CSV or JSON.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;

use crate::error::Result;

/// Results as a text table.
pub fn table(batches: &[RecordBatch]) -> Result<String> {
    Ok(pretty_format_batches(batches)?.to_string())
}

/// Results as CSV with a header.
pub fn csv(batches: &[RecordBatch]) -> Result<String> {
    let mut buf = Vec::new();
    {
        let mut writer = datafusion::arrow::csv::WriterBuilder::new()
            .with_header(true)
            .build(&mut buf);
        for b in batches {
            writer.write(b)?;
        }
    }
    Ok(String::from_utf8_lossy(&buf).to_string())
}

/// Results as a JSON array of objects.
pub fn json(batches: &[RecordBatch]) -> Result<String> {
    let mut buf = Vec::new();
    {
        let mut writer = datafusion::arrow::json::ArrayWriter::new(&mut buf);
        let refs: Vec<&RecordBatch> = batches.iter().collect();
        writer.write_batches(&refs)?;
        writer.finish()?;
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    Ok(if text.is_empty() {
        "[]".to_string()
    } else {
        text
    })
}

/// Total rows.
pub fn row_count(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}
