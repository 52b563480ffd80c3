//! The `tar` exporter: the result's root filesystem as one tar stream, entries sorted by name
//! so the same tree always gives the same bytes. Part of `exporter`.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use tar::{EntryType, Header};

use crate::buildflags::ExportEntry;
use crate::exporter::archive::{Mtime, copy_entries};
use crate::exporter::atomic::AtomicFile;
use crate::exporter::attrs::{platform_dir_name, platform_split, source_date_epoch};
use crate::exporter::error::{Result, io_error};
use crate::exporter::output::{BuildOutput, ExportContext, ExportResponse};

/// Writes `output` as a tar to `entry.destination`, or to `stdout` for `-` or no destination.
// Compat: buildkit exporter/tar/export.go (platform split, epoch applied to every mtime).
pub(crate) fn export(
    entry: &ExportEntry,
    output: &BuildOutput,
    context: &ExportContext,
    stdout: &mut dyn Write,
) -> Result<ExportResponse> {
    let epoch = source_date_epoch(&entry.attrs, context)?;
    let split = platform_split(&entry.attrs, output)?;
    let destination = entry.destination.as_str();
    if destination.is_empty() || destination == "-" {
        write_tar(output, split, epoch, stdout, Path::new("-"))?;
        return Ok(ExportResponse::default());
    }
    let dest = Path::new(destination);
    let mut file = AtomicFile::create(dest)?;
    write_tar(output, split, epoch, file.file(), dest)?;
    file.commit()?;
    Ok(ExportResponse::default())
}

fn write_tar(
    output: &BuildOutput,
    split: bool,
    epoch: Option<u64>,
    out: &mut dyn Write,
    dest: &Path,
) -> Result<()> {
    let mtime = epoch.map_or(Mtime::Keep, Mtime::Set);
    let mut builder = tar::Builder::new(out);
    for platform in &output.platforms {
        let prefix = if split {
            let name = platform_dir_name(&platform.platform);
            let mut header = Header::new_gnu();
            header.set_entry_type(EntryType::Directory);
            header.set_mode(0o755);
            header.set_mtime(epoch.unwrap_or(0));
            header.set_size(0);
            builder
                .append_data(&mut header, format!("{name}/"), std::io::empty())
                .map_err(io_error("write", dest))?;
            Path::new(&name).to_owned()
        } else {
            Path::new("").to_owned()
        };
        // The snapshot differ already walks a tree in sorted order and handles hard links,
        // xattrs and devices; diffing against nothing gives the whole tree.
        let mut temp = tempfile::tempfile().map_err(io_error("create a temp file for", dest))?;
        crate::snapshot::diff(None, &platform.rootfs, &mut temp, &Default::default())?;
        temp.seek(SeekFrom::Start(0))
            .map_err(io_error("rewind the temp file for", dest))?;
        copy_entries(temp, &mut builder, &prefix, mtime).map_err(io_error("write", dest))?;
    }
    builder
        .into_inner()
        .and_then(|out| out.flush())
        .map_err(io_error("write", dest))
}
