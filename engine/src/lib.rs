//! veil-engine
