//! `veil discover --write`: records each finding as a `Discovered.*` tag in
//! the catalog journal (source `discovered`) and the scanned tables'
//! fingerprints in `state/discovery.json`.
