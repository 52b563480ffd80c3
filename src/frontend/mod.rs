//! Front ends that turn a build description into a `graph::Definition`. Layer 2.

pub mod dockerfile;

pub use dockerfile::ImageResolver;
