//! Real OpenSSH daemons (and agents) on loopback for the transport tests.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use slipway::transport::{ConnectSpec, HostKeyPolicy};

pub const SSHD: &str = "/usr/sbin/sshd";

/// The tests need a real sshd; missing, they fail (never pass vacuously).
pub fn require_sshd() {
    assert!(
        Path::new(SSHD).exists(),
        "{SSHD} is missing: install openssh-server (apt-get install openssh-server) to run the SSH transport tests"
    );
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes a fresh key pair (`path`, `path.pub`).
pub fn keygen(path: &Path, kind: &str, passphrase: &str) {
    let _ = fs::remove_file(path);
    let _ = fs::remove_file(path.with_extension("pub"));
    let mut cmd = Command::new("ssh-keygen");
    cmd.args([
        "-q",
        "-t",
        kind,
        "-N",
        passphrase,
        "-C",
        "slipway-test",
        "-f",
    ])
    .arg(path);
    if kind == "rsa" {
        cmd.args(["-b", "3072"]);
    }
    run(&mut cmd);
}

pub fn pub_path(key: &Path) -> PathBuf {
    let mut p = key.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

/// `SHA256:...` as OpenSSH itself computes it.
pub fn ssh_keygen_fingerprint(key: &Path) -> String {
    let out = run(Command::new("ssh-keygen")
        .args(["-E", "sha256", "-lf"])
        .arg(pub_path(key)));
    out.split_whitespace()
        .nth(1)
        .expect("fingerprint field")
        .to_string()
}

pub fn current_user() -> String {
    run(Command::new("id").arg("-un")).trim().to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free loopback port")
}

/// An `sshd -D` on 127.0.0.1, killed on drop. Its files live in `dir`.
pub struct Sshd {
    pub dir: PathBuf,
    pub port: u16,
    pub host_key: PathBuf,
    extra: String,
    child: Option<Child>,
}

impl Sshd {
    /// Starts a daemon accepting the public halves of `user_keys`.
    pub fn start(dir: &Path, user_keys: &[&Path], extra: &str) -> Sshd {
        require_sshd();
        // Debian's sshd refuses to start without its privilege separation dir.
        let _ = fs::create_dir_all("/run/sshd");
        let host_key = dir.join("ssh_host_ed25519_key");
        keygen(&host_key, "ed25519", "");
        let mut authorized = String::new();
        for key in user_keys {
            authorized.push_str(&fs::read_to_string(pub_path(key)).expect("user public key"));
        }
        fs::write(dir.join("authorized_keys"), authorized).unwrap();
        let mut sshd = Sshd {
            dir: dir.to_path_buf(),
            port: 0,
            host_key,
            extra: extra.to_string(),
            child: None,
        };
        // Another test may grab the port between our probe and sshd's bind.
        for _ in 0..5 {
            sshd.port = free_port();
            if sshd.spawn() {
                return sshd;
            }
        }
        panic!("sshd would not start:\n{}", sshd.log());
    }

    /// Restarts on the same port with a brand-new host key.
    pub fn regenerate_host_key(&mut self) {
        self.stop();
        keygen(&self.host_key, "ed25519", "");
        assert!(self.spawn(), "sshd would not restart:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    fn spawn(&mut self) -> bool {
        let config = self.dir.join("sshd_config");
        fs::write(
            &config,
            format!(
                // sshd keeps the first value it reads: extras go first to win.
                // MaxAuthTries: a developer's ssh-agent may offer many keys first.
                "{extra}\nPort {port}\nListenAddress 127.0.0.1\nHostKey {key}\nAuthorizedKeysFile {dir}/authorized_keys\n\
                 PidFile {dir}/sshd.pid\nUsePAM no\nStrictModes no\nPermitRootLogin yes\n\
                 KbdInteractiveAuthentication no\nLogLevel VERBOSE\n\
                 MaxAuthTries 50\n",
                port = self.port,
                key = self.host_key.display(),
                dir = self.dir.display(),
                extra = self.extra,
            ),
        )
        .unwrap();
        let log = fs::File::create(self.dir.join("sshd.log")).unwrap();
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn sshd");
        self.child = Some(child);
        self.wait_ready()
    }

    /// Ready once it greets us; false if it died (a port clash, say).
    fn wait_ready(&mut self) -> bool {
        use std::io::Read;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && child.try_wait().ok().flatten().is_some()
            {
                self.child = None;
                return false;
            }
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut greeting = [0u8; 4];
                if s.read_exact(&mut greeting).is_ok() && &greeting == b"SSH-" {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An `ssh-agent -D` holding the given keys, killed on drop.
pub struct Agent {
    pub socket: PathBuf,
    child: Child,
}

impl Agent {
    pub fn start(dir: &Path, keys: &[&Path]) -> Agent {
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ssh-agent (package openssh-client)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "ssh-agent did not create its socket"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        for key in keys {
            run(Command::new("ssh-add")
                .arg(key)
                .env("SSH_AUTH_SOCK", &socket));
        }
        Agent { socket, child }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn spec(port: u16, keys: &[&Path], known_hosts: &Path, policy: HostKeyPolicy) -> ConnectSpec {
    ConnectSpec {
        name: format!("test-{port}"),
        address: "127.0.0.1".into(),
        port,
        user: current_user(),
        identity_files: keys.iter().map(|k| k.to_path_buf()).collect(),
        password: None,
        known_hosts: known_hosts.to_path_buf(),
        host_key_policy: policy,
        connect_timeout: Duration::from_secs(10),
        keepalive_interval: Duration::from_secs(15),
        proxy_jump: None,
    }
}
