//! The engine: walks a plan, runs its steps and maps their outcomes onto the migration
//! lifecycle, committing every event before it takes effect.

pub mod lifecycle;
