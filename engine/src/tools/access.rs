//! `veil access list`: every access request of a workspace (folded from
//! its catalog journal) and where it stands, as a text table.

use crate::model::{AccessState, Workspace};

/// The workspace's access requests as an aligned text table (id, user,
/// table, state, who decided, reason), or a line saying there are none.
pub fn render_requests(ws: &Workspace) -> String {
    let requests = &ws.journal.access.0;
    if requests.is_empty() {
        return "no access requests\n".to_string();
    }
    let mut rows = vec![[
        "ID".to_string(),
        "USER".to_string(),
        "TABLE".to_string(),
        "STATE".to_string(),
        "BY".to_string(),
        "REASON".to_string(),
    ]];
    for r in requests {
        let by = match &r.state {
            AccessState::Pending => String::new(),
            AccessState::Approved { by, .. } | AccessState::Denied { by, .. } => by.clone(),
        };
        rows.push([
            r.id.clone(),
            r.user.clone(),
            r.table.to_string(),
            r.state.as_str().to_string(),
            by,
            r.reason.clone(),
        ]);
    }
    let mut widths = [0usize; 6];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
