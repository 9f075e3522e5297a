//! A Synapse of our own: pinned version from PyPI (via `scripts/synapse-venv`), its own temp
//! dir, a free loopback port, raised rate limits (or real ones), and shared-secret registration.

use anyhow::{bail, Context};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The project's `scripts/` folder.
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts")
}

/// The venv's python, installing Synapse on first use.
fn synapse_python() -> anyhow::Result<PathBuf> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let out = Command::new("bash")
                .arg(scripts_dir().join("synapse-venv"))
                .stderr(Stdio::inherit())
                .output()
                .map_err(|e| format!("cannot run scripts/synapse-venv: {e}"))?;
            if !out.status.success() {
                return Err(format!("scripts/synapse-venv failed: {}", out.status));
            }
            Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// A free TCP port on loopback (bound, then released for the server to take), claimed across
/// the test processes running at once: between the release and the server's own bind, another
/// process could be handed the same port, and then one test talked to the other's homeserver
/// (a CI run saw registration fail with "HMAC incorrect"). A claim is a file in the temporary
/// folder, made with `create_new`; claims older than [`CLAIM_KEPT`] are stale (their process is
/// long done) and taken over.
pub fn free_port() -> anyhow::Result<u16> {
    let claims = std::env::temp_dir().join("lm-test-ports");
    std::fs::create_dir_all(&claims)?;
    for _ in 0..100 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let claim = claims.join(port.to_string());
        let stale = std::fs::metadata(&claim)
            .and_then(|m| m.modified())
            .is_ok_and(|at| at.elapsed().is_ok_and(|age| age > CLAIM_KEPT));
        if stale {
            let _ = std::fs::remove_file(&claim);
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&claim)
        {
            Ok(_) => return Ok(port),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(error.into()),
        }
    }
    bail!("no loopback port free of other test processes' claims after 100 tries")
}

/// How long a claimed port stays another process's ([`free_port`]).
const CLAIM_KEPT: Duration = Duration::from_secs(3600);

/// A user registered on the test homeserver.
#[derive(Clone, Debug)]
pub struct Registered {
    /// Full user id.
    pub user_id: String,
    /// Localpart.
    pub localpart: String,
    /// Password.
    pub password: String,
    /// An access token from the registration (a device of its own).
    pub access_token: String,
}

/// A running Synapse; killed when dropped.
#[derive(Debug)]
pub struct Synapse {
    dir: tempfile::TempDir,
    port: u16,
    server_name: String,
    child: Option<Child>,
    http: reqwest::Client,
    admin: OnceLock<Registered>,
}

impl Synapse {
    /// Starts a Synapse with raised rate limits.
    pub async fn start() -> anyhow::Result<Synapse> {
        Self::start_with(false).await
    }

    /// Starts a Synapse with its real rate limits.
    pub async fn start_with_real_limits() -> anyhow::Result<Synapse> {
        Self::start_with(true).await
    }

    /// Starts a Synapse that federates over loopback with other federating ones (server name
    /// `127.0.0.1:<federation port>`, TLS with a self-signed certificate).
    pub async fn start_federating() -> anyhow::Result<Synapse> {
        Self::start_configured(false, Some(free_port()?)).await
    }

    async fn start_with(real_limits: bool) -> anyhow::Result<Synapse> {
        Self::start_configured(real_limits, None).await
    }

    async fn start_configured(
        real_limits: bool,
        federation_port: Option<u16>,
    ) -> anyhow::Result<Synapse> {
        let dir = tempfile::Builder::new().prefix("lm-synapse-").tempdir()?;
        let port = free_port()?;
        let server_name = match federation_port {
            Some(federation) => format!("127.0.0.1:{federation}"),
            None => "localhost".to_owned(),
        };
        let mut config = Command::new("bash");
        config
            .arg(scripts_dir().join("synapse-config"))
            .arg(dir.path())
            .arg(port.to_string())
            .arg(&server_name);
        if let Some(federation) = federation_port {
            config.env("SYNAPSE_FEDERATION_PORT", federation.to_string());
        }
        if real_limits {
            config.arg("--real-limits");
        }
        let status = config
            .status()
            .context("cannot run scripts/synapse-config")?;
        if !status.success() {
            bail!("scripts/synapse-config failed: {status}");
        }
        let mut synapse = Synapse {
            dir,
            port,
            server_name,
            child: None,
            http: reqwest::Client::new(),
            admin: OnceLock::new(),
        };
        synapse.resume().await?;
        Ok(synapse)
    }

    /// Stops the server (SIGKILL), keeping its data for [`Synapse::resume`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data, and waits until it serves.
    pub async fn resume(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            return Ok(());
        }
        let python = synapse_python()?;
        let child = Command::new(python)
            .args(["-m", "synapse.app.homeserver", "-c"])
            .arg(self.dir.path().join("homeserver.yaml"))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start Synapse")?;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(60)).await
    }

    async fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        let url = format!("{}/_matrix/client/versions", self.url());
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    bail!(
                        "Synapse exited with {status} at start:\n{}",
                        self.log_tail()
                    );
                }
            }
            if let Ok(response) = self.http.get(&url).send().await {
                if response.status().is_success() {
                    return Ok(());
                }
            }
            if started.elapsed() > limit {
                bail!(
                    "Synapse did not answer within {limit:?}:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last lines of Synapse's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log =
            std::fs::read_to_string(self.dir.path().join("homeserver.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Base URL, e.g. `http://127.0.0.1:38125`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server name users live on.
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// The server's data folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Registers a user (password = `<localpart>-pw`) with the shared secret.
    pub async fn register(&self, localpart: &str) -> anyhow::Result<Registered> {
        self.register_as(localpart, false).await
    }

    /// An admin account, registered on first use.
    pub async fn admin(&self) -> anyhow::Result<Registered> {
        if let Some(admin) = self.admin.get() {
            return Ok(admin.clone());
        }
        let admin = self.register_as("lm-admin", true).await?;
        Ok(self.admin.get_or_init(|| admin).clone())
    }

    async fn register_as(&self, localpart: &str, admin: bool) -> anyhow::Result<Registered> {
        let secret = std::fs::read_to_string(self.dir.path().join("registration_secret"))?;
        let url = format!("{}/_synapse/admin/v1/register", self.url());
        let nonce: serde_json::Value = self.http.get(&url).send().await?.json().await?;
        let nonce = nonce["nonce"].as_str().context("no nonce")?.to_owned();
        let password = format!("{localpart}-pw");
        let mut mac = Hmac::<Sha1>::new_from_slice(secret.trim().as_bytes())?;
        let kind = if admin { "admin" } else { "notadmin" };
        for (i, part) in [nonce.as_str(), localpart, &password, kind]
            .iter()
            .enumerate()
        {
            if i > 0 {
                mac.update(b"\0");
            }
            mac.update(part.as_bytes());
        }
        let body = serde_json::json!({
            "nonce": nonce,
            "username": localpart,
            "password": password,
            "admin": admin,
            "mac": hex::encode(mac.finalize().into_bytes()),
        });
        let response = self.http.post(&url).json(&body).send().await?;
        let status = response.status();
        let reply: serde_json::Value = response.json().await?;
        if !status.is_success() {
            bail!("registering {localpart} failed: {status} {reply}");
        }
        Ok(Registered {
            user_id: reply["user_id"].as_str().context("no user_id")?.to_owned(),
            localpart: localpart.to_owned(),
            password,
            access_token: reply["access_token"]
                .as_str()
                .context("no token")?
                .to_owned(),
        })
    }

    /// Calls the admin API (GET) and returns its JSON.
    pub async fn admin_get(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        let admin = self.admin().await?;
        let response = self
            .http
            .get(format!("{}{path}", self.url()))
            .bearer_auth(&admin.access_token)
            .send()
            .await?;
        let status = response.status();
        let body: serde_json::Value = response.json().await?;
        if !status.is_success() {
            bail!("GET {path}: {status} {body}");
        }
        Ok(body)
    }

    /// `account`'s room account data of `event_type` in `room_id`, read with its own token;
    /// `None` if it has none.
    pub async fn room_account_data(
        &self,
        account: &Registered,
        room_id: &str,
        event_type: &str,
    ) -> anyhow::Result<Option<serde_json::Value>> {
        let response = self
            .http
            .get(format!(
                "{}/_matrix/client/v3/user/{}/rooms/{room_id}/account_data/{event_type}",
                self.url(),
                account.user_id
            ))
            .bearer_auth(&account.access_token)
            .send()
            .await?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body: serde_json::Value = response.json().await?;
        if !status.is_success() {
            bail!("GET account data {event_type}: {status} {body}");
        }
        Ok(Some(body))
    }

    /// Logs `account` in with its password as `device` (a new device, no keys yet) and returns
    /// the access token: what an operator mints for a bot that must not hold a password.
    pub async fn log_in_device(
        &self,
        account: &Registered,
        device: &str,
    ) -> anyhow::Result<String> {
        let response = self
            .http
            .post(format!("{}/_matrix/client/v3/login", self.url()))
            .json(&serde_json::json!({
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": account.localpart},
                "password": account.password,
                "device_id": device,
            }))
            .send()
            .await?;
        let status = response.status();
        let body: serde_json::Value = response.json().await?;
        if !status.is_success() {
            bail!("login as {device}: {status} {body}");
        }
        Ok(body["access_token"]
            .as_str()
            .context("no access token")?
            .to_owned())
    }

    /// Calls the admin API (DELETE), e.g. to log a device out as an admin would.
    pub async fn admin_delete(&self, path: &str) -> anyhow::Result<()> {
        let admin = self.admin().await?;
        let response = self
            .http
            .delete(format!("{}{path}", self.url()))
            .bearer_auth(&admin.access_token)
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            bail!("DELETE {path}: {status} {}", response.text().await?);
        }
        Ok(())
    }

    /// Logs out `device` of `user_id` (its access tokens stop working at once).
    pub async fn delete_device(&self, user_id: &str, device: &str) -> anyhow::Result<()> {
        self.admin_delete(&format!(
            "/_synapse/admin/v2/users/{user_id}/devices/{device}"
        ))
        .await
    }

    /// The devices a user has on the server.
    pub async fn devices(&self, user_id: &str) -> anyhow::Result<Vec<String>> {
        let body = self
            .admin_get(&format!("/_synapse/admin/v2/users/{user_id}/devices"))
            .await?;
        Ok(body["devices"]
            .as_array()
            .map(|devices| {
                devices
                    .iter()
                    .filter_map(|d| d["device_id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Every room on the server (ids, up to 10,000).
    pub async fn rooms(&self) -> anyhow::Result<Vec<String>> {
        let body = self
            .admin_get("/_synapse/admin/v1/rooms?limit=10000")
            .await?;
        Ok(body["rooms"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|room| room["room_id"].as_str().map(str::to_owned))
            .collect())
    }

    /// A room's current state events, as the server holds them.
    pub async fn room_state(&self, room_id: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        let body = self
            .admin_get(&format!("/_synapse/admin/v1/rooms/{room_id}/state"))
            .await?;
        Ok(body["state"].as_array().cloned().unwrap_or_default())
    }

    /// How many rooms exist on the server.
    pub async fn room_count(&self) -> anyhow::Result<u64> {
        let body = self.admin_get("/_synapse/admin/v1/rooms?limit=1").await?;
        body["total_rooms"].as_u64().context("no total_rooms")
    }
}

impl Drop for Synapse {
    fn drop(&mut self) {
        self.stop();
    }
}
