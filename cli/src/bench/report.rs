//! The benchmark's report: a Markdown table, JSON and an SVG bar chart of
//! each query's time relative to the unenforced run.

use std::fmt::Write as _;

use serde::Serialize;

/// How one query ran: medians in milliseconds and the planning breakdown.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct QueryReport {
    /// Query name (`q1`, `point_key`, ...).
    pub(crate) name: String,
    /// What it exercises.
    pub(crate) about: String,
    /// Rows the enforced query returns (equal to the views').
    pub(crate) rows: usize,
    /// Median wall time with no policies.
    pub(crate) unenforced_ms: f64,
    /// Median wall time enforced by Veil, inlined mode.
    pub(crate) inlined_ms: f64,
    /// Median wall time enforced by Veil, profile-join mode.
    pub(crate) profile_join_ms: f64,
    /// Median wall time over the hand-written secure views.
    pub(crate) views_ms: f64,
    /// Veil's front end per query (parse + access check + rendering every
    /// referenced table's policy relation), median, inlined mode.
    pub(crate) veil_rewrite_us: f64,
    /// DataFusion planning of the enforced query (logical, optimized and
    /// physical, policy relations included), median, inlined mode.
    pub(crate) enforced_planning_us: f64,
    /// DataFusion planning of the unenforced query, median.
    pub(crate) unenforced_planning_us: f64,
}

impl QueryReport {
    /// Inlined / unenforced.
    pub(crate) fn inlined_vs_unenforced(&self) -> f64 {
        self.inlined_ms / self.unenforced_ms
    }
    /// Profile-join / unenforced.
    pub(crate) fn profile_vs_unenforced(&self) -> f64 {
        self.profile_join_ms / self.unenforced_ms
    }
    /// Inlined / views.
    pub(crate) fn inlined_vs_views(&self) -> f64 {
        self.inlined_ms / self.views_ms
    }
    /// Profile-join / views.
    pub(crate) fn profile_vs_views(&self) -> f64 {
        self.profile_join_ms / self.views_ms
    }
    /// Views / unenforced.
    pub(crate) fn views_vs_unenforced(&self) -> f64 {
        self.views_ms / self.unenforced_ms
    }
    /// Veil's rewrite as a share of the enforced query's planning time.
    pub(crate) fn rewrite_share(&self) -> f64 {
        self.veil_rewrite_us / self.enforced_planning_us
    }
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BenchReport {
    /// TPC-H scale factor.
    pub(crate) sf: f64,
    /// Users in the workspace (and in `VEIL.SYSTEM.USER_PROFILE`).
    pub(crate) users: usize,
    /// Timed runs per query and variant (after one checked warm-up run).
    pub(crate) iterations: usize,
    /// Cores DataFusion used.
    pub(crate) cores: usize,
    /// Seconds spent generating data (0 when the Parquet cache was used).
    pub(crate) generate_s: f64,
    /// Seconds to load the workspace into an engine.
    pub(crate) load_s: f64,
    /// Per query.
    pub(crate) queries: Vec<QueryReport>,
}

impl BenchReport {
    /// The Markdown table printed and written by `veil bench`.
    pub(crate) fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "TPC-H SF {} · {} users · {} cores · median of {} runs (ms) · ratios over unenforced (÷raw) and over hand-written views (÷views)\n",
            self.sf, self.users, self.cores, self.iterations
        );
        let _ = writeln!(
            s,
            "| query | rows | unenforced | views | inlined | profile-join | inlined ÷raw | profile ÷raw | views ÷raw | inlined ÷views | profile ÷views | rewrite µs | planning µs | rewrite share |"
        );
        let _ = writeln!(
            s,
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for q in &self.queries {
            let _ = writeln!(
                s,
                "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {:.0} | {:.1} % |",
                q.name,
                q.rows,
                q.unenforced_ms,
                q.views_ms,
                q.inlined_ms,
                q.profile_join_ms,
                q.inlined_vs_unenforced(),
                q.profile_vs_unenforced(),
                q.views_vs_unenforced(),
                q.inlined_vs_views(),
                q.profile_vs_views(),
                q.veil_rewrite_us,
                q.enforced_planning_us,
                100.0 * q.rewrite_share(),
            );
        }
        s
    }

    /// The report as pretty JSON.
    pub(crate) fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// A grouped bar chart: per query, time over the unenforced run for the
    /// views and both enforced modes, with the 1.0 and SPEC's 1.10 and 1.5
    /// lines.
    pub(crate) fn svg(&self) -> String {
        const SERIES: [(&str, &str); 3] = [
            ("hand-written views", "#9e9e9e"),
            ("Veil inlined", "#1565c0"),
            ("Veil profile-join", "#ef6c00"),
        ];
        let group_w = 96.0;
        let bar_w = 24.0;
        let (left, top, plot_h) = (56.0, 48.0, 260.0);
        let width = left + group_w * self.queries.len() as f64 + 24.0;
        let height = top + plot_h + 70.0;
        let values: Vec<[f64; 3]> = self
            .queries
            .iter()
            .map(|q| {
                [
                    q.views_vs_unenforced(),
                    q.inlined_vs_unenforced(),
                    q.profile_vs_unenforced(),
                ]
            })
            .collect();
        let max = values
            .iter()
            .flatten()
            .copied()
            .filter(|v| v.is_finite())
            .fold(1.6_f64, f64::max);
        let max = (max * 5.0).ceil() / 5.0;
        let y = |v: f64| top + plot_h - plot_h * (v / max);
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="sans-serif" font-size="11">"#
        );
        let _ = writeln!(
            s,
            r#"<rect width="100%" height="100%" fill="white"/><text x="{left}" y="18" font-size="13" font-weight="bold">Veil on TPC-H SF {}: query time ÷ unenforced ({} users, {} cores, median of {})</text>"#,
            self.sf, self.users, self.cores, self.iterations
        );
        for (i, (label, color)) in SERIES.iter().enumerate() {
            let x = left + 170.0 * i as f64;
            let _ = writeln!(
                s,
                r#"<rect x="{x}" y="28" width="10" height="10" fill="{color}"/><text x="{}" y="37">{label}</text>"#,
                x + 14.0
            );
        }
        let mut tick = 0.0;
        while tick <= max + 1e-9 {
            let _ = writeln!(
                s,
                r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#eeeeee"/><text x="{}" y="{:.1}" text-anchor="end">{tick:.1}</text>"##,
                width - 16.0,
                left - 6.0,
                y(tick) + 4.0,
                y = y(tick)
            );
            tick += 0.2;
        }
        for (v, label) in [(1.0, "1.0"), (1.1, "1.10"), (1.5, "1.5")] {
            let dash = if v == 1.0 {
                ""
            } else {
                r#" stroke-dasharray="4 3""#
            };
            let _ = writeln!(
                s,
                r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#c62828"{dash}/><text x="{}" y="{:.1}" fill="#c62828">{label}</text>"##,
                width - 16.0,
                width - 14.0,
                y(v) + 4.0,
                y = y(v)
            );
        }
        for (i, (q, vals)) in self.queries.iter().zip(&values).enumerate() {
            let gx = left + group_w * i as f64 + (group_w - 3.0 * bar_w) / 2.0;
            for (j, v) in vals.iter().enumerate() {
                let v = if v.is_finite() { *v } else { 0.0 };
                let x = gx + bar_w * j as f64;
                let _ = writeln!(
                    s,
                    r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {v:.2}</title></rect><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="9">{v:.2}</text>"#,
                    y(v),
                    bar_w - 3.0,
                    (top + plot_h - y(v)).max(0.0),
                    SERIES[j].1,
                    SERIES[j].0,
                    x + (bar_w - 3.0) / 2.0,
                    y(v) - 3.0
                );
            }
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="9" fill="#555">{:.0} ms raw</text>"##,
                gx + 1.5 * bar_w,
                top + plot_h + 16.0,
                q.name,
                gx + 1.5 * bar_w,
                top + plot_h + 30.0,
                q.unenforced_ms
            );
        }
        s.push_str("</svg>\n");
        s
    }
}
