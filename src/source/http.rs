//! Files over HTTP(S) as build inputs: downloads kept in the state root with their `ETag`
//! and `Last-Modified`, revalidated on every build so an unchanged URL costs one `304` and a
//! changed one is fetched again. Part of `source`.
//!
//! A download goes to a temp file, is hashed on the way, checked against the checksum the
//! build gave, and only then renamed under its digest; the record that points at it is
//! replaced last. A failed or interrupted download leaves the previous state as it was.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::error::{Error, Result, io_error};
use crate::digest::Digest;

/// The source attribute naming the file the download is saved as.
pub const FILENAME: &str = "http.filename";
/// The source attribute with the digest the download must have (`sha256:...`).
pub const CHECKSUM: &str = "http.checksum";
/// The source attribute with the file's permission bits (octal).
pub const PERM: &str = "http.perm";

/// What a URL answered, as stored beside its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Download {
    /// The URL.
    pub url: String,
    /// The digest of the body.
    pub digest: Digest,
    /// The body's size in bytes.
    pub size: u64,
    /// The validator the server sent, for `If-None-Match`.
    pub etag: Option<String>,
    /// The `Last-Modified` header, for `If-Modified-Since` and the file's mtime.
    pub last_modified: Option<String>,
    /// The file name from `Content-Disposition`, if the server sent one.
    pub disposition: Option<String>,
}

impl Download {
    /// The file name to save the body as: `Content-Disposition`'s, else the URL path's last
    /// segment, else `__unnamed__`.
    // Compat: BuildKit httpSourceHandler: the filename attribute wins, then the header, then
    // the URL.
    pub fn filename(&self) -> String {
        if let Some(name) = &self.disposition {
            return name.clone();
        }
        url_filename(&self.url).unwrap_or_else(|| "__unnamed__".to_owned())
    }

    /// The mtime the saved file gets: `Last-Modified` in seconds since the epoch, if it
    /// parses.
    pub fn mtime(&self) -> Option<i64> {
        let header = self.last_modified.as_deref()?;
        jiff::fmt::rfc2822::parse(header)
            .ok()
            .map(|zoned| zoned.timestamp().as_second())
    }
}

/// The last segment of a URL's path, if it has one.
pub fn url_filename(url: &str) -> Option<String> {
    let without_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = without_scheme
        .split(['?', '#'])
        .next()
        .and_then(|s| s.split_once('/'))
        .map_or("", |(_, path)| path);
    let name = path.rsplit('/').next().unwrap_or_default();
    let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
    (!name.is_empty() && name != "." && name != "..").then(|| name.into_owned())
}

/// Downloads cached under the state root.
#[derive(Debug, Clone)]
pub struct Http {
    dir: PathBuf,
}

impl Http {
    /// A cache under `state/http`.
    pub fn new(state: &Path) -> Self {
        Self {
            dir: state.join("http"),
        }
    }

    /// The file holding a download's bytes.
    pub fn path(&self, download: &Download) -> PathBuf {
        self.dir.join("blobs").join(download.digest.hex())
    }

    fn record(&self, url: &str) -> PathBuf {
        let key = Digest::of(url.as_bytes()).hex();
        self.dir.join("urls").join(format!("{}.json", &key[..32]))
    }

    /// The download of `url`, revalidated with the server: a `304` keeps the stored bytes,
    /// anything new replaces them. `checksum` (`sha256:...`) must match what is returned.
    pub fn fetch(&self, url: &str, checksum: Option<&str>) -> Result<Download> {
        for dir in [self.dir.join("blobs"), self.dir.join("urls")] {
            std::fs::create_dir_all(&dir).map_err(io_error("create", &dir))?;
        }
        let record = self.record(url);
        let previous: Option<Download> = std::fs::read(&record)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .filter(|d: &Download| self.path(d).is_file());
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .user_agent(concat!("bake/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let mut request = agent.get(url);
        if let Some(previous) = &previous {
            if let Some(etag) = &previous.etag {
                request = request.header("If-None-Match", etag);
            }
            if let Some(modified) = &previous.last_modified {
                request = request.header("If-Modified-Since", modified);
            }
        }
        let response = request.call().map_err(|source| Error::Http {
            url: url.to_owned(),
            source: Box::new(source),
        })?;
        let status = response.status().as_u16();
        if status == 304
            && let Some(previous) = previous
        {
            check(url, checksum, &previous.digest)?;
            return Ok(previous);
        }
        if !(200..300).contains(&status) {
            return Err(Error::HttpStatus {
                url: url.to_owned(),
                status,
            });
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let etag = header("etag");
        let last_modified = header("last-modified");
        let disposition = header("content-disposition").and_then(|v| disposition_filename(&v));
        let mut temporary = tempfile::NamedTempFile::new_in(self.dir.join("blobs"))
            .map_err(io_error("create a file in", &self.dir))?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut body = response.into_body().into_reader();
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let read = body.read(&mut buffer).map_err(|e| Error::Http {
                url: url.to_owned(),
                source: Box::new(ureq::Error::Io(e)),
            })?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
            size += read as u64;
            temporary
                .write_all(&buffer[..read])
                .map_err(io_error("write", temporary.path()))?;
        }
        let digest = Digest::from_bytes(hasher.finalize().into());
        check(url, checksum, &digest)?;
        let download = Download {
            url: url.to_owned(),
            digest,
            size,
            etag,
            last_modified,
            disposition,
        };
        let blob = self.path(&download);
        temporary
            .as_file()
            .sync_all()
            .map_err(io_error("write", &blob))?;
        temporary
            .persist(&blob)
            .map_err(|e| io_error("write", &blob)(e.error))?;
        let mut record_file = tempfile::NamedTempFile::new_in(self.dir.join("urls"))
            .map_err(io_error("create a file in", &self.dir))?;
        let json = serde_json::to_vec(&download).unwrap_or_default();
        record_file
            .write_all(&json)
            .map_err(io_error("write", &record))?;
        record_file
            .persist(&record)
            .map_err(|e| io_error("write", &record)(e.error))?;
        Ok(download)
    }
}

/// Fails when `checksum` is given and `digest` is not it, naming both.
fn check(url: &str, checksum: Option<&str>, digest: &Digest) -> Result<()> {
    match checksum {
        Some(expected) if expected != digest.to_string() => Err(Error::Checksum {
            url: url.to_owned(),
            expected: expected.to_owned(),
            actual: digest.to_string(),
        }),
        _ => Ok(()),
    }
}

/// The `filename` of a `Content-Disposition` header, without any directory part.
fn disposition_filename(header: &str) -> Option<String> {
    let mut plain = None;
    for part in header.split(';').map(str::trim) {
        let Some((key, value)) = part.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match key.trim().to_ascii_lowercase().as_str() {
            "filename*" => {
                // RFC 5987: `UTF-8''name%20here`.
                let encoded = value.rsplit("''").next().unwrap_or(value);
                let decoded = percent_encoding::percent_decode_str(encoded).decode_utf8_lossy();
                return base_name(&decoded);
            }
            "filename" => plain = base_name(value.trim_matches('"')),
            _ => {}
        }
    }
    plain
}

fn base_name(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    (!base.is_empty() && base != "." && base != "..").then(|| base.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_come_from_the_disposition_header_or_the_url() {
        assert_eq!(
            disposition_filename(r#"attachment; filename="../tool.tar.gz""#).as_deref(),
            Some("tool.tar.gz")
        );
        assert_eq!(
            disposition_filename("attachment; filename=a.txt; filename*=UTF-8''b%20c.txt")
                .as_deref(),
            Some("b c.txt")
        );
        assert_eq!(disposition_filename("inline"), None);
        assert_eq!(
            url_filename("https://host/dir/file%201.tgz?x=1#f").as_deref(),
            Some("file 1.tgz")
        );
        assert_eq!(url_filename("https://host/"), None);
        assert_eq!(url_filename("https://host"), None);
    }

    #[test]
    fn last_modified_becomes_the_mtime() {
        let download = Download {
            url: "http://h/f".to_owned(),
            digest: Digest::of(b""),
            size: 0,
            etag: None,
            last_modified: Some("Tue, 14 Nov 2023 22:13:20 GMT".to_owned()),
            disposition: None,
        };
        assert_eq!(download.mtime(), Some(1_700_000_000));
        assert_eq!(download.filename(), "f");
    }

    #[test]
    fn a_wrong_checksum_names_both_digests() {
        let digest = Digest::of(b"x");
        let wrong = format!("sha256:{}", "0".repeat(64));
        let error = check("http://h/f", Some(&wrong), &digest).unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains(&wrong) && text.contains(&digest.to_string()),
            "{text}"
        );
        assert!(check("http://h/f", Some(&digest.to_string()), &digest).is_ok());
    }
}
