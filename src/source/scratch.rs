//! The `scratch` source: an empty root filesystem. Part of `source`.

use std::path::Path;

use super::error::{Result, io_error};

/// Makes `into` an empty directory (mode 0755), the root `FROM scratch` starts with.
///
/// An existing empty directory is accepted; anything else there is an error, because a
/// snapshot that should be empty but is not would leak files into the image.
pub fn materialize(into: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    match std::fs::DirBuilder::new().mode(0o755).create(into) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            let mut entries = std::fs::read_dir(into).map_err(io_error("list", into))?;
            if entries.next().is_some() {
                return Err(io_error("use as an empty root", into)(std::io::Error::new(
                    std::io::ErrorKind::DirectoryNotEmpty,
                    "directory is not empty",
                )));
            }
        }
        Err(error) => return Err(io_error("create", into)(error)),
    }
    // The umask may have narrowed the mode; images expect exactly 0755 at the root.
    std::fs::set_permissions(into, std::fs::Permissions::from_mode(0o755))
        .map_err(io_error("set permissions of", into))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_is_an_empty_directory_and_refuses_a_full_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        materialize(&root).expect("create");
        assert_eq!(std::fs::read_dir(&root).expect("list").count(), 0);
        materialize(&root).expect("empty again is fine");
        std::fs::write(root.join("x"), "").expect("write");
        assert!(materialize(&root).is_err());
    }
}
