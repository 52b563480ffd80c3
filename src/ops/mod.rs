//! One implementation per `graph::Op`: how each kind of vertex changes a root filesystem.
//! Layer 4. May import `solver`, `graph`, `executor`, `source`, `snapshot`, `content`,
//! `progress`.
//!
//! Today: the file op ([`file::apply`]), the exec op ([`exec::run`]) and the merge op
//! ([`merge::apply`]). The solver's `OpExec` implementations for every op
//! land with the solver.

pub mod chmod;
pub mod exec;
pub mod file;
pub mod lines;
pub mod merge;
pub mod worker;
