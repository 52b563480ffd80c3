//! Pushing: blob existence checks (`HEAD`), cross-repository mounts, monolithic uploads for
//! small blobs and chunked ones (`PATCH` with `Content-Range`) for large layers, and manifests
//! under a tag or digest. Part of `registry`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use ureq::SendBody;
use ureq::http::Response;

use super::client::Client;
use super::error::{Error, Result};
use super::pull::with_auth;
use super::reference::Reference;
use super::transport::{Endpoint, error_message};
use crate::content::Store;
use crate::digest::Digest;

/// What pushing one blob took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobPush {
    /// The registry already had it.
    Existed,
    /// It was mounted from another repository of the same registry.
    Mounted,
    /// It was uploaded.
    Uploaded,
}

/// What the registry answered to an upload's start.
enum Started {
    /// The blob was mounted from the other repository.
    Mounted,
    /// An upload session, at this location.
    Upload(String),
}

impl Client {
    /// Reports whether the repository of `target` holds the blob `digest`.
    pub fn blob_exists(&self, target: &Reference, digest: &Digest) -> Result<bool> {
        let endpoint = self.push_endpoint(target);
        let url = endpoint.url(&target.repository, &format!("blobs/{digest}"));
        let response = self.transport.send(
            &endpoint,
            &push_scopes(target, None),
            &target.name(),
            "check a blob on",
            &|agent, auth| with_auth(agent.head(&url), auth).call(),
        )?;
        match response.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            status => Err(status_error("check blob", target, status, response)),
        }
    }

    /// Mounts the blob `digest` into the repository of `target` from the repository of
    /// `from` on the same registry; `false` when the registry did not mount it (it lacks the
    /// blob there, or does not mount across repositories).
    pub fn mount_blob(
        &self,
        target: &Reference,
        digest: &Digest,
        from: &Reference,
    ) -> Result<bool> {
        if from.registry != target.registry || from.repository == target.repository {
            return Ok(false);
        }
        match self.start_upload(target, digest, Some(from))? {
            Started::Mounted => Ok(true),
            Started::Upload(location) => {
                // The registry opened an upload instead; nothing will be sent to it, so
                // cancel it rather than leave it to expire.
                let endpoint = self.push_endpoint(target);
                let _ = self.transport.send(
                    &endpoint,
                    &push_scopes(target, Some(from)),
                    &target.name(),
                    "cancel an upload on",
                    &|agent, auth| with_auth(agent.delete(&location), auth).call(),
                );
                Ok(false)
            }
        }
    }

    /// Opens an upload of `digest` to `target`'s repository, asking to mount it from
    /// `mount_from` (same registry, another repository) instead.
    fn start_upload(
        &self,
        target: &Reference,
        digest: &Digest,
        mount_from: Option<&Reference>,
    ) -> Result<Started> {
        let endpoint = self.push_endpoint(target);
        let scopes = push_scopes(target, mount_from);
        let uploads = endpoint.url(&target.repository, "blobs/uploads/");
        let digest_text = digest.to_string();
        let response = self.transport.send(
            &endpoint,
            &scopes,
            &target.name(),
            "start an upload on",
            &|agent, auth| {
                let mut request = with_auth(agent.post(&uploads), auth);
                if let Some(from) = mount_from {
                    request = request
                        .query("mount", &digest_text)
                        .query("from", &from.repository);
                }
                request.header("Content-Length", "0").send_empty()
            },
        )?;
        match response.status().as_u16() {
            201 if mount_from.is_some() => Ok(Started::Mounted),
            202 => Ok(Started::Upload(location(&endpoint, &response, target)?)),
            status => Err(status_error("start blob upload", target, status, response)),
        }
    }

    /// Pushes the blob `digest` (`size` bytes, read from `store`) to the repository of
    /// `target`, mounting it from `mount_from` (same registry) when that repository has it.
    pub fn push_blob(
        &self,
        target: &Reference,
        digest: &Digest,
        size: u64,
        store: &Store,
        mount_from: Option<&Reference>,
    ) -> Result<BlobPush> {
        if self.blob_exists(target, digest)? {
            return Ok(BlobPush::Existed);
        }
        let mount_from = mount_from.filter(|from| {
            from.registry == target.registry && from.repository != target.repository
        });
        let location = match self.start_upload(target, digest, mount_from)? {
            Started::Mounted => return Ok(BlobPush::Mounted),
            Started::Upload(location) => location,
        };
        let endpoint = self.push_endpoint(target);
        let scopes = push_scopes(target, mount_from);
        let digest_text = digest.to_string();
        let path = store.blob_path(digest);
        let location = if size > self.options.chunk_size {
            self.upload_chunks(&endpoint, target, &scopes, location, &path, size)?
        } else {
            location
        };
        // The final PUT carries the whole blob (monolithic) or nothing (after the chunks).
        let (offset, length) = if size > self.options.chunk_size {
            (size, 0)
        } else {
            (0, size)
        };
        let response = self.transport.send(
            &endpoint,
            &scopes,
            &target.name(),
            "upload a blob to",
            &|agent, auth| {
                let reader = open_range(&path, offset, length).map_err(ureq::Error::Io)?;
                with_auth(agent.put(&location), auth)
                    .query("digest", &digest_text)
                    .header("Content-Length", length.to_string())
                    .header("Content-Type", "application/octet-stream")
                    .send(SendBody::from_owned_reader(reader))
            },
        )?;
        match response.status().as_u16() {
            201 | 204 => Ok(BlobPush::Uploaded),
            status => Err(status_error("upload blob", target, status, response)),
        }
    }

    /// Sends the blob at `path` in `chunk_size` pieces; returns the location for the final PUT.
    // Compat: distribution spec "pushing a blob in chunks" (PATCH with inclusive
    // `Content-Range: start-end`, each answer giving the next location).
    fn upload_chunks(
        &self,
        endpoint: &Endpoint,
        target: &Reference,
        scopes: &[String],
        mut location: String,
        path: &std::path::Path,
        size: u64,
    ) -> Result<String> {
        let mut offset = 0;
        while offset < size {
            let length = self.options.chunk_size.min(size - offset);
            let response = self.transport.send(
                endpoint,
                scopes,
                &target.name(),
                "upload a chunk to",
                &|agent, auth| {
                    let reader = open_range(path, offset, length).map_err(ureq::Error::Io)?;
                    with_auth(agent.patch(&location), auth)
                        .header("Content-Length", length.to_string())
                        .header("Content-Range", format!("{offset}-{}", offset + length - 1))
                        .header("Content-Type", "application/octet-stream")
                        .send(SendBody::from_owned_reader(reader))
                },
            )?;
            location = match response.status().as_u16() {
                202 => self::location(endpoint, &response, target)?,
                status => return Err(status_error("upload blob chunk", target, status, response)),
            };
            offset += length;
        }
        Ok(location)
    }

    /// Puts a manifest or index under `target`'s tag or digest; returns its digest.
    pub fn push_manifest(
        &self,
        target: &Reference,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest> {
        let endpoint = self.push_endpoint(target);
        let url = endpoint.url(
            &target.repository,
            &format!("manifests/{}", target.object()),
        );
        let response = self.transport.send(
            &endpoint,
            &push_scopes(target, None),
            &target.name(),
            "push a manifest to",
            &|agent, auth| {
                with_auth(agent.put(&url), auth)
                    .header("Content-Type", media_type)
                    .send(bytes)
            },
        )?;
        match response.status().as_u16() {
            200 | 201 | 202 | 204 => Ok(Digest::of(bytes)),
            status => Err(status_error("push manifest", target, status, response)),
        }
    }

    fn push_endpoint(&self, target: &Reference) -> Endpoint {
        let mut endpoints = self.transport.endpoints(&target.registry, false);
        endpoints.remove(0)
    }
}

fn push_scopes(target: &Reference, mount_from: Option<&Reference>) -> Vec<String> {
    let mut scopes = vec![format!("repository:{}:pull,push", target.repository)];
    if let Some(from) = mount_from {
        scopes.push(format!("repository:{}:pull", from.repository));
    }
    scopes
}

fn location(
    endpoint: &Endpoint,
    response: &Response<ureq::Body>,
    target: &Reference,
) -> Result<String> {
    response
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .map(|value| endpoint.absolute(value))
        .ok_or_else(|| Error::Status {
            action: "upload blob",
            name: target.name(),
            status: response.status().as_u16(),
            message: ": the registry sent no upload location".to_owned(),
        })
}

fn status_error(
    action: &'static str,
    target: &Reference,
    status: u16,
    response: Response<ureq::Body>,
) -> Error {
    let message = error_message(response);
    if status == 403 {
        return Error::Denied {
            name: target.name(),
            message: message.trim_start_matches(": ").to_owned(),
        };
    }
    Error::Status {
        action,
        name: target.name(),
        status,
        message,
    }
}

/// Opens `length` bytes of `path` from `offset`, for one request body.
fn open_range(
    path: &std::path::Path,
    offset: u64,
    length: u64,
) -> std::io::Result<std::io::Take<File>> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    Ok(file.take(length))
}
