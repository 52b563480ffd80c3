//! Image archives on the Docker engine, whose BuildKit has no `oci` or `docker` exporter:
//! the image is exported into the engine under an internal name, read back with
//! `docker save`, written by bake's exporter, and removed. Part of `remote`.

use std::collections::BTreeMap;

use base64::Engine as _;
use tokio::io::AsyncWriteExt as _;

use crate::buildflags::ExportEntry;
use crate::remote::error::{Error, Result};
use crate::remote::transport::{Dialer, engine_request, remove_image};

/// A name for an image the engine keeps only during this build: a prefix no user image
/// has, and a fresh id, so concurrent builds never share one.
pub(crate) fn internal_image_name(purpose: &str) -> String {
    format!("bake-internal/{purpose}:{}", uuid::Uuid::new_v4().simple())
}

/// Writes the engine's image `name` as `entry` asks, from `docker save`, then removes the
/// image from the engine (only bake knew its name). Returns the exporter response and, for
/// `dest=-`, the bytes for stdout.
pub(crate) async fn save(
    dialer: &Dialer,
    target: &str,
    name: &str,
    entry: &ExportEntry,
) -> Result<(BTreeMap<String, String>, Option<Vec<u8>>)> {
    let target = target.to_owned();
    let scratch = tempfile::tempdir().map_err(|source| Error::Export {
        target: target.clone(),
        path: std::env::temp_dir(),
        source,
    })?;
    let saved_path = scratch.path().join("saved.tar");
    let fetched = async {
        let mut file = tokio::fs::File::create(&saved_path).await?;
        let path = format!("/images/{name}/get");
        let status = engine_request(dialer, "GET", &path, &mut file).await?;
        file.flush().await?;
        if status != 200 {
            let message = std::fs::read_to_string(&saved_path).unwrap_or_default();
            return Err(std::io::Error::other(format!(
                "the engine answered HTTP {status} to `GET {path}`: {}",
                message.trim()
            )));
        }
        Ok(())
    }
    .await;
    // The image is removed whatever happens next.
    remove_image(dialer, name).await;
    fetched.map_err(|source| Error::Export {
        target: target.clone(),
        path: entry.destination.clone().into(),
        source,
    })?;
    let entry = entry.clone();
    let destination = entry.destination.clone();
    let docker_archive = entry.kind == "docker";
    let converted = tokio::task::spawn_blocking(move || {
        let saved = std::fs::File::open(&saved_path)?;
        let mut stdout = Vec::new();
        let response = crate::exporter::export_saved(
            std::io::BufReader::new(saved),
            &entry,
            docker_archive,
            &scratch.path().join("work"),
            &mut stdout,
        )
        .map_err(std::io::Error::other)?;
        let to_stdout = entry.destination.is_empty() || entry.destination == "-";
        Ok::<_, std::io::Error>((response, to_stdout.then_some(stdout)))
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|converted| converted);
    let (response, stdout) = converted.map_err(|source| Error::Export {
        target: target.clone(),
        path: destination.into(),
        source,
    })?;
    let response = response
        .metadata
        .into_iter()
        .map(|(key, value)| {
            let value = match value {
                serde_json::Value::String(text) => text,
                other => base64::engine::general_purpose::STANDARD.encode(other.to_string()),
            };
            (key, value)
        })
        .collect();
    Ok((response, stdout))
}
