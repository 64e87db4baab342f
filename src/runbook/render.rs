//! Rendering templates with per-context escaping. Being written; see issue 3.
