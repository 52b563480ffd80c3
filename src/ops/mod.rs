//! One implementation per `graph::Op`: how each kind of vertex changes a root filesystem.
//! Layer 4. May import `solver`, `graph`, `executor`, `source`, `snapshot`, `content`,
//! `progress`.
//!
//! The file op ([`file::apply`]), the exec op ([`exec::run`]) and the merge op
//! ([`merge::apply`]) change a directory; [`worker::Worker`] is the solver's `OpExec` over
//! every op, with snapshots as results.

pub mod cache_mount;
pub mod chmod;
pub mod copy_link;
pub mod emulation;
pub mod exec;
pub mod file;
pub mod lines;
pub mod merge;
pub mod worker;
