//! The merge op (`COPY --link`): layers its input trees on top of each other, first at the
//! bottom. Part of `ops`.
//!
//! Each input is a whole tree, so it is turned into a layer with [`crate::snapshot::diff`]
//! against nothing and written with [`crate::snapshot::apply_layer`], the audited in-root
//! writer; the layer is staged in a temporary file so large inputs never sit in memory.

use std::io::{Seek, SeekFrom};
use std::path::Path;

use crate::snapshot::{self, DiffOptions};

/// Why a merge failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Staging a layer failed.
    #[error("failed to stage a merge layer: {0}")]
    Io(#[from] std::io::Error),
    /// Reading an input or writing the result failed.
    #[error(transparent)]
    Snapshot(#[from] snapshot::Error),
}

/// Layers `inputs` onto `root` in order.
pub fn apply(root: &Path, inputs: &[&Path]) -> Result<(), Error> {
    for input in inputs {
        let mut staged = tempfile::tempfile()?;
        snapshot::diff(None, input, &mut staged, &DiffOptions::default())?;
        staged.seek(SeekFrom::Start(0))?;
        snapshot::apply_layer(root, &mut staged)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;

    #[test]
    fn later_inputs_win_and_earlier_files_stay() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, root) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("root"),
        );
        fs::create_dir_all(a.join("etc")).unwrap();
        fs::create_dir_all(b.join("etc")).unwrap();
        fs::write(a.join("etc/one"), "a").unwrap();
        fs::write(a.join("etc/both"), "a").unwrap();
        fs::write(b.join("etc/both"), "b").unwrap();
        super::apply(&root, &[&a, &b]).unwrap();
        assert_eq!(fs::read_to_string(root.join("etc/one")).unwrap(), "a");
        assert_eq!(fs::read_to_string(root.join("etc/both")).unwrap(), "b");
    }
}
