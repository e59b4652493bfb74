//! The SSH transport against real OpenSSH daemons on 127.0.0.1.

#[path = "transport/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::{Agent, Sshd, keygen, spec, ssh_keygen_fingerprint};
use sha2::{Digest, Sha256};
use slipway::transport::ssh::{KeyPassphrase, SshTransport, connect, connect_with};
use slipway::transport::ssh_config::{
    JumpHost, SshConfigEntry, lookup, lookup_with_home, parse_jump,
};
use slipway::transport::{Held, HostKeyPolicy, Transport, TransportError};
use tempfile::TempDir;

/// Generous: a hang (a deadlock) should fail the test, not stall the suite.
const LIMIT: Duration = Duration::from_secs(120);

async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("test timed out (deadlock?)")
}

/// A daemon accepting one fresh user key of `kind`.
fn server_with_key(kind: &str) -> (TempDir, Sshd, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join(format!("id_{kind}"));
    keygen(&key, kind, "");
    let sshd = Sshd::start(dir.path(), &[&key], "");
    (dir, sshd, key)
}

async fn connect_new(sshd: &Sshd, key: &Path) -> SshTransport {
    let known = sshd.dir.join("known_hosts");
    let spec = spec(sshd.port, &[key], &known, HostKeyPolicy::AcceptNew);
    connect(&spec)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", sshd.log()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ed25519_key_exec_returns_output_and_status() {
    let (_dir, sshd, key) = server_with_key("ed25519");
    within(async {
        let t = connect_new(&sshd, &key).await;
        let out = t.exec("echo out; echo err >&2; exit 3", b"").await.unwrap();
        assert_eq!(
            (
                out.status,
                out.stdout_str().as_str(),
                out.stderr_str().as_str()
            ),
            (3, "out\n", "err\n")
        );
        let out = t.exec("tr a-z A-Z", b"shout").await.unwrap();
        assert!(out.success());
        assert_eq!(out.stdout_str(), "SHOUT");
        // A signal is reported the way a shell would: 128 + signal number.
        let out = t.exec("kill -TERM $$", b"").await.unwrap();
        assert_eq!(out.status, 143);
        t.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_key_signs_with_sha2() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id_rsa");
    keygen(&key, "rsa", "");
    // Spelled out so the test means the same on an OpenSSH that still
    // accepted SHA-1 by default.
    let sshd = Sshd::start(
        dir.path(),
        &[&key],
        "PubkeyAcceptedAlgorithms rsa-sha2-512,rsa-sha2-256\nLogLevel DEBUG1",
    );
    within(async {
        let t = connect_new(&sshd, &key).await;
        assert_eq!(t.exec("echo rsa", b"").await.unwrap().stdout_str(), "rsa\n");
    })
    .await;
    assert!(sshd.log().contains("pkalg rsa-sha2-"), "{}", sshd.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecdsa_key_authenticates() {
    let (_dir, sshd, key) = server_with_key("ecdsa");
    within(async {
        let t = connect_new(&sshd, &key).await;
        assert_eq!(
            t.exec("echo ecdsa", b"").await.unwrap().stdout_str(),
            "ecdsa\n"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_key_needs_its_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id_locked");
    keygen(&key, "ed25519", "correct horse");
    let sshd = Sshd::start(dir.path(), &[&key], "");
    let known = dir.path().join("known_hosts");
    let spec = spec(sshd.port, &[&key], &known, HostKeyPolicy::AcceptNew);
    within(async {
        let given = KeyPassphrase::Given("correct horse".into());
        let t = connect_with(&spec, &given).await.unwrap();
        assert_eq!(
            t.exec("echo unlocked", b"").await.unwrap().stdout_str(),
            "unlocked\n"
        );

        let wrong = KeyPassphrase::Given("battery staple".into());
        let err = connect_with(&spec, &wrong)
            .await
            .err()
            .expect("wrong passphrase must fail");
        let msg = err.to_string();
        assert!(matches!(err, TransportError::Auth { .. }), "{msg}");
        assert!(
            msg.contains("wrong passphrase") && msg.contains("id_locked"),
            "{msg}"
        );
        assert!(
            !msg.contains("battery") && !msg.contains("horse"),
            "secret leaked: {msg}"
        );

        let err = connect_with(&spec, &KeyPassphrase::Unavailable)
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("SLIPWAY_KEY_PASSPHRASE"), "{err}");
    })
    .await;
    // The variable is read from the environment: set it in a child process
    // only, since changing this process's environment races other tests.
    let out = run_child(
        &spec,
        &[("SLIPWAY_KEY_PASSPHRASE", "correct horse".as_ref())],
    )
    .await;
    assert!(out.contains("1 passed"), "child connect failed:\n{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_agent_keys_are_tried_first() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id_agent_rsa");
    keygen(&key, "rsa", "");
    let sshd = Sshd::start(
        dir.path(),
        &[&key],
        "PubkeyAcceptedAlgorithms rsa-sha2-512,rsa-sha2-256",
    );
    let agent = Agent::start(dir.path(), &[&key]);
    let known = dir.path().join("known_hosts");
    // No identity file at all: only the agent can get us in.
    let spec = spec(sshd.port, &[], &known, HostKeyPolicy::AcceptNew);
    let out = run_child(&spec, &[("SSH_AUTH_SOCK", agent.socket.as_os_str())]).await;
    assert!(
        out.contains("1 passed"),
        "child connect via agent failed:\n{out}\n{}",
        sshd.log()
    );
}

/// Runs [`child_connect`] in a fresh process of this test binary with `env`.
async fn run_child(
    spec: &slipway::transport::ConnectSpec,
    env: &[(&str, &std::ffi::OsStr)],
) -> String {
    let keys: Vec<String> = spec
        .identity_files
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let mut cmd = tokio::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "child_connect",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env_remove("SSH_AUTH_SOCK")
    .env_remove("SLIPWAY_KEY_PASSPHRASE")
    .env("SLIPWAY_CHILD_PORT", spec.port.to_string())
    .env("SLIPWAY_CHILD_KEYS", keys.join("\n"))
    .env("SLIPWAY_CHILD_KNOWN_HOSTS", &spec.known_hosts)
    .stdin(std::process::Stdio::null());
    for (name, value) in env {
        cmd.env(name, value);
    }
    let out = within(cmd.output()).await.unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Not a test of its own: the child half of the environment-variable tests.
#[test]
#[ignore = "run in a child process by the agent and passphrase tests"]
fn child_connect() {
    let Ok(port) = std::env::var("SLIPWAY_CHILD_PORT") else {
        return;
    };
    let keys: Vec<PathBuf> = std::env::var("SLIPWAY_CHILD_KEYS")
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(PathBuf::from)
        .collect();
    let keys: Vec<&Path> = keys.iter().map(PathBuf::as_path).collect();
    let known = PathBuf::from(std::env::var("SLIPWAY_CHILD_KNOWN_HOSTS").unwrap());
    let spec = spec(
        port.parse().unwrap(),
        &keys,
        &known,
        HostKeyPolicy::AcceptNew,
    );
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let t = connect(&spec).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            t.exec("echo child", b"").await.unwrap().stdout_str(),
            "child\n"
        );
    });
}

/// 8 MiB of bytes that are not all alike, without a random-number crate.
fn big_input() -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..8 * 1024 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_stdin_round_trips_without_deadlock() {
    let (_dir, sshd, key) = server_with_key("ed25519");
    let data = big_input();
    within(async {
        let t = connect_new(&sshd, &key).await;
        // cat echoes as it reads: both directions are full at once.
        let out = t.exec("cat", &data).await.unwrap();
        assert!(out.success());
        assert_eq!(out.stdout.len(), data.len());
        assert!(out.stdout == data, "cat changed the data");

        let out = t.exec("sha256sum", &data).await.unwrap();
        let expected = hex::encode(Sha256::digest(&data));
        assert_eq!(
            out.stdout_str().split_whitespace().next(),
            Some(expected.as_str())
        );

        // A command that ignores its input must not leave us waiting to send it.
        let out = t.exec("echo early; exit 0", &data).await.unwrap();
        assert_eq!(out.stdout_str(), "early\n");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_execs_share_one_connection() {
    let (_dir, sshd, key) = server_with_key("ed25519");
    within(async {
        let t = Arc::new(connect_new(&sshd, &key).await);
        let mut tasks = tokio::task::JoinSet::new();
        // More than sshd's MaxSessions (10) at once.
        for i in 0..30 {
            let t = t.clone();
            tasks.spawn(async move {
                let input = format!("{i}\n");
                let out = t
                    .exec("sleep 0.2; cat; echo $SSH_CONNECTION", input.as_bytes())
                    .await;
                (i, out)
            });
        }
        let mut connections = std::collections::BTreeSet::new();
        while let Some(joined) = tasks.join_next().await {
            let (i, out) = joined.unwrap();
            let out = out.unwrap_or_else(|e| panic!("exec {i}: {e}"));
            let text = out.stdout_str();
            let mut lines = text.lines();
            assert_eq!(lines.next(), Some(i.to_string().as_str()));
            connections.insert(lines.next().unwrap().to_string());
        }
        assert_eq!(connections.len(), 1, "{connections:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_keeps_a_flock_until_released() {
    let (dir, sshd, key) = server_with_key("ed25519");
    let lock = dir.path().join("host.lock");
    let hold_cmd = format!("flock -n {} sh -c 'echo locked; exec cat'", lock.display());
    within(async {
        let t = connect_new(&sshd, &key).await;
        let Held::Running { first_line, guard } = t.hold(&hold_cmd, b"").await.unwrap() else {
            panic!("first hold should run");
        };
        assert_eq!(first_line, "locked");

        match t.hold(&hold_cmd, b"").await.unwrap() {
            Held::Exited(out) => assert_eq!(out.status, 1),
            Held::Running { .. } => panic!("second hold on a held lock must exit"),
        }
        // Other commands still run while the lock is held.
        assert_eq!(
            t.exec("echo meanwhile", b"").await.unwrap().stdout_str(),
            "meanwhile\n"
        );

        guard.release().await;
        let Held::Running { guard, .. } = t.hold(&hold_cmd, b"").await.unwrap() else {
            panic!("lock not free after release");
        };
        // Dropped without release: the channel is still closed for us.
        drop(guard);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match t.hold(&hold_cmd, b"").await.unwrap() {
                Held::Running { guard, .. } => {
                    guard.release().await;
                    break;
                }
                Held::Exited(_) => {
                    assert!(
                        Instant::now() < deadline,
                        "lock still held after the guard was dropped"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }

        // stdin reaches the command (a sudo password, say), but no EOF:
        // `cat` keeps the command alive until release.
        let cmd = "read -r pw; echo \"got $pw\"; exec cat";
        let Held::Running { first_line, guard } = t.hold(cmd, b"s3cret\n").await.unwrap() else {
            panic!("the command should still run");
        };
        assert_eq!(first_line, "got s3cret");
        guard.release().await;

        match t.hold("echo -n partial; exit 4", b"").await.unwrap() {
            Held::Exited(out) => {
                assert_eq!((out.status, out.stdout_str().as_str()), (4, "partial"))
            }
            Held::Running { .. } => panic!("no full line was printed"),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_refuses_an_unknown_host_key() {
    let (dir, sshd, key) = server_with_key("ed25519");
    let known = dir.path().join("known_hosts");
    let spec = spec(sshd.port, &[&key], &known, HostKeyPolicy::Strict);
    let err = within(connect(&spec))
        .await
        .err()
        .expect("unknown key must be refused");
    let fingerprint = ssh_keygen_fingerprint(&sshd.host_key);
    match &err {
        TransportError::HostKeyUnknown { fingerprint: f, .. } => assert_eq!(f, &fingerprint),
        other => panic!("expected HostKeyUnknown, got {other}"),
    }
    assert!(err.to_string().contains(&fingerprint), "{err}");
    assert!(
        err.to_string().contains(&known.display().to_string()),
        "{err}"
    );
    assert!(!known.exists(), "strict must not write known_hosts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_new_records_the_key_for_strict_later() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, sshd, key) = server_with_key("ed25519");
    let known = dir.path().join("fresh").join("known_hosts");
    within(async {
        let learn = spec(sshd.port, &[&key], &known, HostKeyPolicy::AcceptNew);
        connect(&learn).await.unwrap().close().await;
        let strict = spec(sshd.port, &[&key], &known, HostKeyPolicy::Strict);
        let t = connect(&strict).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(t.exec("true", b"").await.unwrap().success());
    })
    .await;
    let mode = std::fs::metadata(&known).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // OpenSSH's own tools find the entry under the name it would use.
    let found = harness::run(
        std::process::Command::new("ssh-keygen")
            .arg("-F")
            .arg(format!("[127.0.0.1]:{}", sshd.port))
            .arg("-f")
            .arg(&known),
    );
    assert!(found.contains("ssh-ed25519"), "{found}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_host_key_is_refused_under_both_policies() {
    let (dir, mut sshd, key) = server_with_key("ed25519");
    let known = dir.path().join("known_hosts");
    // Lines before ours, comments included, to check the reported line.
    std::fs::write(&known, "# managed by hand\nexample.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ\n# ours follows\n").unwrap();
    within(async {
        let learn = spec(sshd.port, &[&key], &known, HostKeyPolicy::AcceptNew);
        connect(&learn).await.unwrap().close().await;
    })
    .await;
    let text = std::fs::read_to_string(&known).unwrap();
    let our_line = text
        .lines()
        .position(|l| l.starts_with(&format!("[127.0.0.1]:{} ", sshd.port)))
        .unwrap()
        + 1;

    sshd.regenerate_host_key();
    let fingerprint = ssh_keygen_fingerprint(&sshd.host_key);
    for policy in [HostKeyPolicy::Strict, HostKeyPolicy::AcceptNew] {
        let spec = spec(sshd.port, &[&key], &known, policy);
        let err = within(connect(&spec))
            .await
            .err()
            .expect("changed key must be refused");
        match &err {
            TransportError::HostKeyChanged {
                fingerprint: f,
                known_hosts,
                line,
                ..
            } => {
                assert_eq!(f, &fingerprint);
                assert_eq!(known_hosts, &known.display().to_string());
                assert_eq!(*line, our_line);
            }
            other => panic!("{policy:?}: expected HostKeyChanged, got {other}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("{}:{our_line}", known.display())),
            "{msg}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(&known).unwrap(),
        text,
        "known_hosts must not change"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_times_out_on_a_silent_server() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts and never says a word, like a hung host behind a firewall.
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec(
        port,
        &[],
        &dir.path().join("known_hosts"),
        HostKeyPolicy::Strict,
    );
    spec.connect_timeout = Duration::from_secs(2);
    let started = Instant::now();
    let err = within(connect(&spec)).await.err().expect("must time out");
    let took = started.elapsed();
    silent.abort();
    assert!(
        matches!(err, TransportError::Timeout { secs: 2, .. }),
        "{err}"
    );
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_port_is_a_connect_error() {
    // Bound but not listening: connections to it are refused at once.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = socket.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(
        port,
        &[],
        &dir.path().join("known_hosts"),
        HostKeyPolicy::Strict,
    );
    let err = within(connect(&spec)).await.err().expect("must be refused");
    assert!(matches!(err, TransportError::Connect { .. }), "{err}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    drop(socket);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_key_and_password_are_an_auth_error() {
    let (dir, sshd, _key) = {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id_right");
        keygen(&key, "ed25519", "");
        let sshd = Sshd::start(dir.path(), &[&key], "PasswordAuthentication yes");
        (dir, sshd, key)
    };
    let wrong = dir.path().join("id_wrong");
    keygen(&wrong, "ed25519", "");
    let missing = dir.path().join("id_missing");
    let known = dir.path().join("known_hosts");
    let mut spec = spec(
        sshd.port,
        &[&missing, &wrong],
        &known,
        HostKeyPolicy::AcceptNew,
    );
    spec.password = Some("hunter2-not-the-password".into());
    let err = within(connect(&spec)).await.err().expect("must be refused");
    let msg = err.to_string();
    assert!(matches!(err, TransportError::Auth { .. }), "{msg}");
    assert!(
        msg.contains(&format!("{} (not found)", missing.display())),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("{} (rejected)", wrong.display())),
        "{msg}"
    );
    assert!(msg.contains("password (rejected)"), "{msg}");
    assert!(!msg.contains("hunter2"), "secret leaked: {msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dying_connection_is_broken_not_a_status() {
    let (_dir, sshd, key) = server_with_key("ed25519");
    within(async {
        let t = connect_new(&sshd, &key).await;
        // $PPID is the sshd process serving this connection.
        let err = t
            .exec("kill -KILL $PPID; sleep 5", b"")
            .await
            .expect_err("must break");
        // Broken under a running command: what it printed so far comes along.
        assert!(matches!(err, TransportError::Interrupted { .. }), "{err}");
        assert!(
            err.to_string().contains("broke while a command ran"),
            "{err}"
        );
        let err = t.exec("true", b"").await.expect_err("connection is gone");
        assert!(matches!(err, TransportError::Broken { .. }), "{err}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_jump_tunnels_through_a_second_sshd() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id_ed25519");
    keygen(&key, "ed25519", "");
    let jump_dir = dir.path().join("jump");
    let closed_dir = dir.path().join("closed");
    let target_dir = dir.path().join("target");
    for d in [&jump_dir, &closed_dir, &target_dir] {
        std::fs::create_dir(d).unwrap();
    }
    let jump = Sshd::start(
        &jump_dir,
        &[&key],
        "AllowTcpForwarding yes\nLogLevel DEBUG1",
    );
    let closed = Sshd::start(&closed_dir, &[&key], "AllowTcpForwarding no");
    let target = Sshd::start(&target_dir, &[&key], "AllowTcpForwarding no");
    let known = dir.path().join("known_hosts");
    let jump_spec = spec(jump.port, &[&key], &known, HostKeyPolicy::AcceptNew);
    let mut target_spec = spec(target.port, &[&key], &known, HostKeyPolicy::AcceptNew);
    target_spec.proxy_jump = Some(Box::new(jump_spec));
    within(async {
        let t = connect(&target_spec)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", jump.log()));
        assert_eq!(
            t.exec("echo via-jump", b"").await.unwrap().stdout_str(),
            "via-jump\n"
        );
        t.close().await;

        // Through a jump host that does not forward, there is no way in:
        // proof that the connection above really went through the jump.
        let mut blocked = target_spec.clone();
        blocked.proxy_jump = Some(Box::new(spec(
            closed.port,
            &[&key],
            &known,
            HostKeyPolicy::AcceptNew,
        )));
        let err = connect(&blocked).await.err().expect("forwarding is off");
        assert!(matches!(err, TransportError::Connect { .. }), "{err}");
        assert!(err.to_string().contains("jump host"), "{err}");
    })
    .await;
    let forwarded = format!("target 127.0.0.1 port {}", target.port);
    assert!(jump.log().contains(&forwarded), "{}", jump.log());
}

#[test]
fn ssh_config_lookup_resolves_an_alias() {
    let home = tempfile::tempdir().unwrap();
    let ssh_dir = home.path().join(".ssh");
    std::fs::create_dir(&ssh_dir).unwrap();
    // A relative Include resolves under ~/.ssh, as with OpenSSH.
    std::fs::write(
        ssh_dir.join("extra.conf"),
        "Host included\n  HostName 192.0.2.9\n  User inc\n",
    )
    .unwrap();
    let config = ssh_dir.join("config");
    std::fs::write(
        &config,
        "Include extra.conf\n\
         \n\
         Host web1\n  HostName 192.0.2.10\n  User deploy\n  Port 2222\n  IdentityFile ~/.ssh/id_web\n  IdentityFile %d/keys/%h.key\n  ProxyJump admin@bastion.example:2200,second\n  SomeFutureOption yes\n\
         \n\
         Host *.lan\n  HostName %h.example.net\n\
         \n\
         Host nojump\n  ProxyJump none\n\
         \n\
         Host *\n  User fallback\n  ProxyJump default-jump\n",
    )
    .unwrap();
    let home_path = home.path();
    let web1 = lookup_with_home(&config, "web1", Some(home_path)).unwrap();
    assert_eq!(
        web1,
        SshConfigEntry {
            host_name: Some("192.0.2.10".into()),
            user: Some("deploy".into()),
            port: Some(2222),
            identity_files: vec![
                home_path.join(".ssh/id_web"),
                home_path.join("keys/192.0.2.10.key"),
            ],
            proxy_jump: Some("admin@bastion.example:2200".into()),
        }
    );
    assert_eq!(
        parse_jump(web1.proxy_jump.as_deref().unwrap()).unwrap(),
        JumpHost {
            user: Some("admin".into()),
            host: "bastion.example".into(),
            port: Some(2200)
        }
    );

    let lan = lookup_with_home(&config, "db.lan", Some(home_path)).unwrap();
    assert_eq!(lan.host_name.as_deref(), Some("db.lan.example.net"));
    assert_eq!(lan.user.as_deref(), Some("fallback"));

    let inc = lookup_with_home(&config, "included", Some(home_path)).unwrap();
    assert_eq!(
        (inc.host_name.as_deref(), inc.user.as_deref()),
        (Some("192.0.2.9"), Some("inc"))
    );

    // First match wins, so `none` beats the catch-all jump.
    assert_eq!(
        lookup_with_home(&config, "nojump", Some(home_path))
            .unwrap()
            .proxy_jump,
        None
    );
    let other = lookup_with_home(&config, "other", Some(home_path)).unwrap();
    assert_eq!(other.proxy_jump.as_deref(), Some("default-jump"));
    assert_eq!(other.host_name, None);
}

#[test]
fn ssh_config_missing_file_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let entry = lookup(&dir.path().join("nope"), "web1").unwrap();
    assert_eq!(entry, SshConfigEntry::default());
}

#[test]
fn ssh_config_bad_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::write(&config, "Host web1\n  Port notanumber\n").unwrap();
    let err = lookup(&config, "web1").unwrap_err();
    assert!(err.contains(&config.display().to_string()), "{err}");
}

#[test]
fn proxy_jump_hops_parse() {
    let hop = |user: Option<&str>, host: &str, port: Option<u16>| JumpHost {
        user: user.map(String::from),
        host: host.into(),
        port,
    };
    assert_eq!(parse_jump("bastion").unwrap(), hop(None, "bastion", None));
    assert_eq!(
        parse_jump("me@bastion").unwrap(),
        hop(Some("me"), "bastion", None)
    );
    assert_eq!(
        parse_jump("bastion:22").unwrap(),
        hop(None, "bastion", Some(22))
    );
    assert_eq!(
        parse_jump("ssh://me@bastion:2022").unwrap(),
        hop(Some("me"), "bastion", Some(2022))
    );
    assert_eq!(
        parse_jump("me@[2001:db8::1]:2022").unwrap(),
        hop(Some("me"), "2001:db8::1", Some(2022))
    );
    assert_eq!(
        parse_jump("2001:db8::1").unwrap(),
        hop(None, "2001:db8::1", None)
    );
    assert!(parse_jump("bastion:port").is_err());
    assert!(parse_jump("@bastion").is_err());
    assert!(parse_jump("me@").is_err());
}
