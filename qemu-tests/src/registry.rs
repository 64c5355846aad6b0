//! A real OCI registry for tests: Debian's `docker-registry` (distribution 2.8) started as
//! a child on a free loopback port with its own config, storage and log in a temp dir,
//! filled with `skopeo copy` (`apt-get install docker-registry skopeo`; scripts/common.sh
//! installs both). Used by runtime's registry tests on the host and by the QEMU tests,
//! whose guests reach it through a guestfwd address.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::Digest;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn tool(name: &str) -> &str {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{name} is not installed: apt-get install docker-registry skopeo (scripts/common.sh)"
    );
    name
}

/// A docker-registry child on 127.0.0.1, with its config, storage and log in a temp dir.
pub struct Registry {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    /// `user:password` when the registry takes basic auth only.
    creds: Option<String>,
}

impl Registry {
    pub fn start() -> Self {
        Self::new(None, None)
    }

    /// With htpasswd auth: `user` and `password` are the only credentials it takes.
    pub fn with_auth(user: &str, password: &str) -> Self {
        Self::new(Some((user, password)), None)
    }

    /// HTTPS with this certificate and key (PEM), written as `cert.pem` and `key.pem`.
    pub fn with_tls(cert: &str, key: &str) -> Self {
        Self::new(None, Some((cert, key)))
    }

    pub fn new(auth: Option<(&str, &str)>, tls: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("storage").display()
        );
        // (Inside `http:`, so before `auth:`.)
        if let Some((cert, key)) = tls {
            fs::write(dir.path().join("cert.pem"), cert).unwrap();
            fs::write(dir.path().join("key.pem"), key).unwrap();
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                dir.path().join("cert.pem").display(),
                dir.path().join("key.pem").display()
            ));
        }
        if let Some((user, password)) = auth {
            // distribution takes bcrypt lines only (what `htpasswd -B` writes).
            let line = format!("{user}:{}\n", bcrypt::hash(password, 4).unwrap());
            fs::write(dir.path().join("htpasswd"), line).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: fluxnode-test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            ));
        }
        fs::write(dir.path().join("config.yml"), config).unwrap();
        let mut r = Registry {
            dir,
            port,
            child: None,
            creds: auth.map(|(u, p)| format!("{u}:{p}")),
        };
        r.run();
        r
    }

    /// Starts the registry (again) on its port, and waits until it answers.
    pub fn run(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let child = Command::new(tool("docker-registry"))
            .arg("serve")
            .arg(self.dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let t = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "the registry did not listen on {}: {}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap(); // SIGKILL
            c.wait().unwrap();
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// `skopeo copy` of the layout's image `tag` to `repo:tag` here (`--all`: an index too).
    pub fn push(&self, layout: &Path, tag: &str, repo_tag: &str) {
        let mut cmd = Command::new(tool("skopeo"));
        cmd.args([
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ]);
        if let Some(c) = &self.creds {
            cmd.args(["--dest-creds", c]);
        }
        let out = cmd
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{repo_tag}", self.host()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo copy: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Where the registry keeps a blob's bytes.
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = &digest["sha256:".len()..];
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// PUTs a manifest as it is (skopeo would not push one that lies about sizes).
    pub fn put_manifest(&self, repo_tag: &str, manifest: &[u8]) -> String {
        let (repo, tag) = repo_tag.split_once(':').unwrap();
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "PUT /v2/{repo}/manifests/{tag} HTTP/1.1\r\nHost: {}\r\n\
             Content-Type: application/vnd.oci.image.manifest.v1+json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.host(),
            manifest.len()
        )
        .unwrap();
        s.write_all(manifest).unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 201"), "{reply}");
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(manifest)))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}
