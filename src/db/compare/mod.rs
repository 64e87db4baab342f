//! `compare` steps: whether two tables (or queries), on PostgreSQL or MySQL/MariaDB, hold
//! the same rows, across engines, after normalising each value ([`crate::db::normal`]).
//! The step's process is `sensei __step compare` ([`child`]), run like a `sql` step's.
//! Where each invariant lives:
//!
//! - [`spec`]: the rendered step handed to the process on stdin, never in its arguments.
//! - [`side`]: a side's session (UTC, fixed float and binary output), its columns as its
//!   server describes them, its rows streamed and made canonical as they arrive.
//! - [`columns`]: which columns are compared, matched by name, each with the class both
//!   sides resolve to; a column on one side only is an error, never skipped.
//! - [`query`]: the SQL sent, names quoted, rows in the key order the merge expects.
//! - [`merge`]: one pass over both ordered streams pairs every row by key; misordered keys
//!   stop the comparison rather than report false differences.
//! - [`hash`]: row hashes and the order-independent checksum of a range.
//! - [`run`]: the key ranges (by value for integer keys, by count otherwise) and progress.
//! - [`report`]: log lines, outputs, and the failure sentence (differing ranges, sample
//!   keys), bounded.
//!
//! The hashing happens here, in the client, not in SQL on each server: the two engines
//! print, cast and hash values differently, and normalising in one place is what makes a
//! MariaDB `10.50` equal a PostgreSQL `10.5`. The cost is that every row crosses the
//! network once from each side.

pub mod child;
pub mod columns;
pub mod hash;
pub mod merge;
pub mod query;
pub mod report;
pub mod run;
pub mod side;
pub mod spec;
