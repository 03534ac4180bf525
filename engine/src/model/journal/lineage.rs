//! Column lineage as a graph: an edge `source → target` says the target
//! column was computed from the source column. Columns are interned to
//! dense ids so a graph of millions of edges stays compact and a walk over
//! it touches integers, not names. Edges are never deleted: a dropped table
//! keeps its edges (SPEC §7.1 rule 7), and `veil lint` names those.

use std::collections::{HashMap, VecDeque};

use crate::model::{ColumnRef, TableName};

/// The lineage graph of a workspace.
#[derive(Debug, Clone, Default)]
pub struct LineageGraph {
    nodes: Vec<ColumnRef>,
    ids: datafusion::common::HashMap<ColumnRef, u32>,
    children: Vec<Vec<u32>>,
    parents: Vec<Vec<u32>>,
    edges: usize,
}

impl LineageGraph {
    /// Number of distinct edges.
    pub fn edge_count(&self) -> usize {
        self.edges
    }

    /// Whether there are no edges.
    pub fn is_empty(&self) -> bool {
        self.edges == 0
    }

    fn intern(&mut self, column: &ColumnRef) -> u32 {
        if let Some(id) = self.ids.get(column) {
            return *id;
        }
        let id = self.nodes.len() as u32;
        self.nodes.push(column.clone());
        self.ids.insert(column.clone(), id);
        self.children.push(Vec::new());
        self.parents.push(Vec::new());
        id
    }

    /// Adds the edge `source → target`; returns whether it is new. An edge
    /// from a column to itself (`INSERT INTO t SELECT ... FROM t`) is kept
    /// out: it says nothing about where a tag goes.
    pub fn add_edge(&mut self, source: &ColumnRef, target: &ColumnRef) -> bool {
        if source == target {
            return false;
        }
        let s = self.intern(source);
        let t = self.intern(target);
        if self.children[s as usize].contains(&t) {
            return false;
        }
        self.children[s as usize].push(t);
        self.parents[t as usize].push(s);
        self.edges += 1;
        true
    }

    /// Whether the edge `source → target` exists.
    pub fn has_edge(&self, source: &ColumnRef, target: &ColumnRef) -> bool {
        match (self.ids.get(source), self.ids.get(target)) {
            (Some(s), Some(t)) => self.children[*s as usize].contains(t),
            _ => false,
        }
    }

    /// The columns `column` was computed from directly.
    pub fn parents(&self, column: &ColumnRef) -> Vec<&ColumnRef> {
        self.ids
            .get(column)
            .map(|id| {
                self.parents[*id as usize]
                    .iter()
                    .map(|p| &self.nodes[*p as usize])
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The columns computed directly from `column`.
    pub fn children(&self, column: &ColumnRef) -> Vec<&ColumnRef> {
        self.ids
            .get(column)
            .map(|id| {
                self.children[*id as usize]
                    .iter()
                    .map(|p| &self.nodes[*p as usize])
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every column computed from `column`, directly or not, nearest first
    /// (each once, cycles tolerated; `column` itself excluded).
    pub fn descendants(&self, column: &ColumnRef) -> Vec<&ColumnRef> {
        self.walk(column, &self.children)
    }

    /// Every column `column` was computed from, directly or not, nearest
    /// first (`column` itself excluded).
    pub fn ancestors(&self, column: &ColumnRef) -> Vec<&ColumnRef> {
        self.walk(column, &self.parents)
    }

    fn walk<'a>(&'a self, column: &ColumnRef, next: &'a [Vec<u32>]) -> Vec<&'a ColumnRef> {
        let Some(&start) = self.ids.get(column) else {
            return Vec::new();
        };
        let mut seen = vec![false; self.nodes.len()];
        seen[start as usize] = true;
        let mut queue = VecDeque::from([start]);
        let mut out = Vec::new();
        while let Some(n) = queue.pop_front() {
            for &m in &next[n as usize] {
                if !seen[m as usize] {
                    seen[m as usize] = true;
                    out.push(&self.nodes[m as usize]);
                    queue.push_back(m);
                }
            }
        }
        out
    }

    /// Every column upstream of any of `columns`, and those of `columns` the
    /// graph knows, each once (one walk for all of them).
    pub fn ancestors_of_all(&self, columns: &[ColumnRef]) -> Vec<&ColumnRef> {
        let mut seen = vec![false; self.nodes.len()];
        let mut queue = VecDeque::new();
        for c in columns {
            if let Some(&id) = self.ids.get(c)
                && !seen[id as usize]
            {
                seen[id as usize] = true;
                queue.push_back(id);
            }
        }
        let mut out = Vec::new();
        while let Some(n) = queue.pop_front() {
            out.push(&self.nodes[n as usize]);
            for &m in &self.parents[n as usize] {
                if !seen[m as usize] {
                    seen[m as usize] = true;
                    queue.push_back(m);
                }
            }
        }
        out
    }

    /// Every column downstream of one of `roots`, mapped to the root it is
    /// nearest to (ties: the earlier root). Roots themselves are not in the
    /// map unless downstream of another root.
    pub fn reach_from(&self, roots: &[ColumnRef]) -> HashMap<ColumnRef, ColumnRef> {
        let mut from: Vec<Option<u32>> = vec![None; self.nodes.len()];
        let mut queue = VecDeque::new();
        for r in roots {
            if let Some(&id) = self.ids.get(r)
                && from[id as usize].is_none()
            {
                from[id as usize] = Some(id);
                queue.push_back(id);
            }
        }
        let mut out = HashMap::new();
        while let Some(n) = queue.pop_front() {
            let root = from[n as usize].unwrap_or(n);
            for &m in &self.children[n as usize] {
                if from[m as usize].is_none() {
                    from[m as usize] = Some(root);
                    out.insert(
                        self.nodes[m as usize].clone(),
                        self.nodes[root as usize].clone(),
                    );
                    queue.push_back(m);
                }
            }
        }
        out
    }

    /// Every edge, as `(source, target)`.
    pub fn edges(&self) -> impl Iterator<Item = (&ColumnRef, &ColumnRef)> {
        self.children.iter().enumerate().flat_map(move |(s, ts)| {
            ts.iter()
                .map(move |t| (&self.nodes[s], &self.nodes[*t as usize]))
        })
    }

    /// Every table named by an edge.
    pub fn tables(&self) -> impl Iterator<Item = &TableName> {
        self.nodes.iter().map(|c| &c.table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(t: &str, c: &str) -> ColumnRef {
        ColumnRef::new(
            TableName {
                database: "DB".into(),
                schema: "S".into(),
                table: t.into(),
            },
            c,
        )
    }

    #[test]
    fn lineage_graph_walks_transitively_and_tolerates_cycles() {
        let mut g = LineageGraph::default();
        assert!(g.add_edge(&col("A", "X"), &col("B", "X")));
        assert!(!g.add_edge(&col("A", "X"), &col("B", "X")));
        assert!(g.add_edge(&col("B", "X"), &col("C", "X")));
        assert!(g.add_edge(&col("C", "X"), &col("A", "X")));
        assert!(!g.add_edge(&col("C", "X"), &col("C", "X")));
        assert_eq!(g.edge_count(), 3);
        let d: Vec<String> = g
            .descendants(&col("A", "X"))
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(d, ["DB.S.B.X", "DB.S.C.X"]);
        assert_eq!(g.ancestors(&col("B", "X")).len(), 2);
        assert!(g.has_edge(&col("B", "X"), &col("C", "X")));
        assert!(!g.has_edge(&col("C", "X"), &col("B", "X")));
    }
}
