//! Copies tar entries from one archive into another, optionally under a directory prefix and
//! with mtimes clamped to `SOURCE_DATE_EPOCH`. Part of `exporter`: used for platform-split
//! tar output and for `rewrite-timestamp` on layers that arrive as tars.

use std::io::{self, Read, Write};
use std::path::Path;

use tar::{EntryType, Header};

/// PAX keys the copy sets itself (names through GNU long-name entries, times from the header
/// when they change), so the originals are not carried over.
const REWRITTEN_PAX_KEYS: &[&str] = &["path", "linkpath", "mtime", "atime", "ctime"];

/// What [`copy_entries`] does to entry mtimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mtime {
    /// Keeps them.
    Keep,
    /// Lowers later ones to this many seconds (`rewrite-timestamp`).
    Clamp(u64),
    /// Sets every one to this many seconds (the `tar` exporter with `SOURCE_DATE_EPOCH`).
    Set(u64),
}

/// Copies every entry of `input` into `builder`, under `prefix` (may be empty), with mtimes
/// changed as `mtime` says. Hard link targets get the same prefix.
pub(crate) fn copy_entries<W: Write>(
    input: impl Read,
    builder: &mut tar::Builder<W>,
    prefix: &Path,
    mtime: Mtime,
) -> io::Result<()> {
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = prefix.join(entry.path()?);
        let link = entry.link_name()?.map(|link| link.into_owned());
        let mut header = entry.header().clone();
        match mtime {
            Mtime::Keep => {}
            Mtime::Clamp(epoch) => {
                if header.mtime()? > epoch {
                    header.set_mtime(epoch);
                }
            }
            Mtime::Set(epoch) => header.set_mtime(epoch),
        }
        let mut records = Vec::new();
        if let Some(extensions) = entry.pax_extensions()? {
            for extension in extensions {
                let extension = extension?;
                let key = extension.key().map_err(io::Error::other)?;
                let time_key = matches!(key, "mtime" | "atime" | "ctime");
                if !REWRITTEN_PAX_KEYS.contains(&key) || (time_key && mtime == Mtime::Keep) {
                    records.push((key.to_owned(), extension.value_bytes().to_vec()));
                }
            }
        }
        if !records.is_empty() {
            append_pax(builder, &path, &records)?;
        }
        match (header.entry_type(), link) {
            (EntryType::Link, Some(target)) => {
                builder.append_link(&mut header, &path, prefix.join(target))?;
            }
            (EntryType::Symlink, Some(target)) => {
                builder.append_link(&mut header, &path, target)?;
            }
            _ => builder.append_data(&mut header, &path, &mut entry)?,
        }
    }
    Ok(())
}

/// Writes a PAX extended header entry holding `records` for the entry at `path`.
fn append_pax<W: Write>(
    builder: &mut tar::Builder<W>,
    path: &Path,
    records: &[(String, Vec<u8>)],
) -> io::Result<()> {
    let mut data = Vec::new();
    for (key, value) in records {
        // A record is "<length> <key>=<value>\n" where the length counts itself too.
        let body = key.len() + value.len() + 3;
        let mut length = body + body.to_string().len();
        if length.to_string().len() != body.to_string().len() {
            length += 1;
        }
        data.extend_from_slice(format!("{length} {key}=").as_bytes());
        data.extend_from_slice(value);
        data.push(b'\n');
    }
    let mut header = Header::new_ustar();
    header.set_entry_type(EntryType::XHeader);
    header.set_mode(0o644);
    header.set_size(data.len() as u64);
    let name = format!(
        "PaxHeaders/{}",
        path.file_name().unwrap_or_default().to_string_lossy()
    );
    let name = name.get(..99).unwrap_or(&name);
    header.set_path(name)?;
    header.set_cksum();
    builder.append(&header, data.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_with_prefix_clamp_and_xattrs() {
        let mut source = tar::Builder::new(Vec::new());
        append_pax(
            &mut source,
            Path::new("file"),
            &[("SCHILY.xattr.user.k".to_owned(), b"v".to_vec())],
        )
        .expect("pax");
        let mut header = Header::new_ustar();
        header.set_entry_type(EntryType::Regular);
        header.set_mode(0o640);
        header.set_mtime(1_000);
        header.set_size(2);
        source
            .append_data(&mut header, "file", &b"hi"[..])
            .expect("file");
        let mut link = Header::new_ustar();
        link.set_entry_type(EntryType::Link);
        link.set_mtime(5);
        link.set_size(0);
        source.append_link(&mut link, "hard", "file").expect("link");
        let source = source.into_inner().expect("finish");

        let mut target = tar::Builder::new(Vec::new());
        copy_entries(
            source.as_slice(),
            &mut target,
            Path::new("linux_amd64"),
            Mtime::Clamp(10),
        )
        .expect("copy");
        let target = target.into_inner().expect("finish");
        let mut archive = tar::Archive::new(target.as_slice());
        let mut seen = Vec::new();
        for entry in archive.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let xattr = entry
                .pax_extensions()
                .expect("pax")
                .and_then(|mut e| e.next())
                .map(|e| e.expect("record").key().expect("key").to_owned());
            seen.push((
                entry.path().expect("path").display().to_string(),
                entry.header().mtime().expect("mtime"),
                entry
                    .link_name()
                    .expect("link")
                    .map(|l| l.display().to_string()),
                xattr,
            ));
        }
        assert_eq!(
            seen,
            [
                (
                    "linux_amd64/file".to_owned(),
                    10,
                    None,
                    Some("SCHILY.xattr.user.k".to_owned())
                ),
                (
                    "linux_amd64/hard".to_owned(),
                    5,
                    Some("linux_amd64/file".to_owned()),
                    None
                ),
            ]
        );
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        let mut builder = tar::Builder::new(Vec::new());
        let value = vec![b'x'; 90];
        append_pax(&mut builder, Path::new("f"), &[("k".to_owned(), value)]).expect("pax");
        let bytes = builder.into_inner().expect("finish");
        let record = &bytes[512..];
        let text = String::from_utf8_lossy(&record[..100]);
        let (length, _) = text.split_once(' ').expect("length");
        let length: usize = length.parse().expect("number");
        assert_eq!(record[length - 1], b'\n');
        assert_eq!(record[length], 0);
    }
}
