//! The session's registry credentials (`moby.filesync.v1.Auth`): `Credentials` answers
//! with what the host's Docker config holds for the registry the daemon pulls from or
//! pushes to, found the way bake's own registry client finds it. Part of `remote`.
//!
//! bake keeps no token authority, so `GetTokenAuthority`, `FetchToken` and
//! `VerifyTokenAuthority` answer Unimplemented: BuildKit then asks `Credentials` and
//! fetches registry tokens itself, as it does for buildx with client tokens turned off.

use std::sync::Arc;

use tonic::Status;

use crate::registry::{Credentials, DOCKER_HUB, DockerConfig};
use crate::remote::proto::CredentialsResponse;

/// The host BuildKit names for Docker Hub; its credentials are stored under `docker.io`'s
/// key (`https://index.docker.io/v1/`).
// Compat: buildkit authprovider dockerHubRegistryHost.
const DOCKER_HUB_HOST: &str = "registry-1.docker.io";

/// The registry name bake's credential lookup takes for the host the daemon asks about.
pub(crate) fn registry_name(host: &str) -> &str {
    if host == DOCKER_HUB_HOST {
        DOCKER_HUB
    } else {
        host
    }
}

/// The credentials for `host`; none (anonymous) when the config has none.
// Compat: buildkit authprovider.credentials: an identity token goes as the secret with no
// user name.
pub(crate) async fn credentials(
    config: Arc<DockerConfig>,
    host: String,
) -> Result<CredentialsResponse, Status> {
    let found = tokio::task::spawn_blocking(move || config.credentials(registry_name(&host)))
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(|e| Status::unavailable(e.to_string()))?;
    Ok(match found {
        None => CredentialsResponse::default(),
        Some(Credentials::Basic { username, password }) => CredentialsResponse {
            username,
            secret: password.expose().to_owned(),
        },
        Some(Credentials::IdentityToken(token)) => CredentialsResponse {
            username: String::new(),
            secret: token.expose().to_owned(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_host_is_looked_up_as_docker_io() {
        assert_eq!(registry_name("registry-1.docker.io"), "docker.io");
        assert_eq!(registry_name("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(registry_name("ghcr.io"), "ghcr.io");
    }

    #[tokio::test]
    async fn hub_credentials_come_from_the_index_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"Ym9iOnB3"},
                "127.0.0.1:5000":{"identitytoken":"tok"}}}"#,
        )
        .unwrap();
        let config = Arc::new(DockerConfig::load(&path).unwrap());
        let hub = credentials(config.clone(), "registry-1.docker.io".into())
            .await
            .unwrap();
        assert_eq!((hub.username.as_str(), hub.secret.as_str()), ("bob", "pw"));
        let local = credentials(config.clone(), "127.0.0.1:5000".into())
            .await
            .unwrap();
        assert_eq!(
            (local.username.as_str(), local.secret.as_str()),
            ("", "tok")
        );
        let none = credentials(config, "ghcr.io".into()).await.unwrap();
        assert!(none.secret.is_empty());
    }
}
