//! The session's secrets (`moby.buildkit.secrets.v1.Secrets/GetSecret`): a target's
//! `secret` entries by id, each read from its file or variable when the daemon asks, so a
//! file changed between two builds gives its new value. Part of `remote`.

use std::collections::BTreeMap;

use tonic::Status;

use crate::buildflags::{Secret, Unavailable};

/// A target's secrets by id.
#[derive(Debug, Default)]
pub(crate) struct Secrets(BTreeMap<String, Secret>);

impl Secrets {
    /// Checks that every entry can be read now, so a missing file or variable fails before
    /// anything is sent; the values are read again when the daemon asks.
    pub(crate) fn resolve(entries: &[Secret]) -> Result<Self, Unavailable> {
        let mut out = BTreeMap::new();
        for secret in entries {
            secret.read()?;
            // Compat: buildx Secrets: a later entry with the same id replaces an earlier one.
            out.insert(secret.id.clone(), secret.clone());
        }
        Ok(Self(out))
    }

    /// Whether there is anything to serve (the method is announced only then).
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of secret `id`, read now.
    // Compat: buildkit secretsprovider fileStore.GetSecret: an unknown id is NotFound, which
    // the daemon turns into "secret not found" or skips for `required=false`.
    pub(crate) async fn get(&self, id: &str) -> Result<Vec<u8>, Status> {
        let secret = self
            .0
            .get(id)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("secret `{id}` not found")))?;
        tokio::task::spawn_blocking(move || secret.read())
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| Status::internal(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unknown_id_is_not_found_and_known_ids_read_at_call_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tok");
        std::fs::write(&path, "first").unwrap();
        let entry = Secret::parse(&format!("id=tok,src={}", path.display())).unwrap();
        let secrets = Secrets::resolve(&[entry]).unwrap();
        assert_eq!(secrets.get("tok").await.unwrap(), b"first");
        std::fs::write(&path, "second").unwrap();
        assert_eq!(secrets.get("tok").await.unwrap(), b"second");
        let missing = secrets.get("other").await.unwrap_err();
        assert_eq!(missing.code(), tonic::Code::NotFound);
        assert!(missing.message().contains("`other`"));
    }

    #[test]
    fn unreadable_entry_fails_before_the_build() {
        let entry = Secret::parse("id=tok,src=/nonexistent/bake-secret").unwrap();
        let error = Secrets::resolve(&[entry]).unwrap_err().to_string();
        assert!(error.contains("secret `tok`"), "{error}");
    }
}
