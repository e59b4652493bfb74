//! The webhook receiver of lab tests (alerts, apply notifications).

use super::lab::Lab;
use super::registry::LabRegistry;

/// The webhook receiver: a container of the lab's `receiver` image on the lab's network,
/// outside the swarm, as a chat service would be. Labelled as part of the lab, so the lab's
/// teardown removes it.
pub struct Receiver {
    pub url: String,
    pub container: String,
}

impl Receiver {
    pub fn start(lab: &Lab, reg: &LabRegistry) -> Receiver {
        let net = lab.hosts[0].ip.rsplit_once('.').unwrap().0;
        let ip = format!("{net}.250");
        let container = format!("{}-receiver", lab.name);
        let mut cmd = std::process::Command::new("docker");
        cmd.args(["run", "-d", "--name", &container])
            .args(["--label", "slipway-lab=1"])
            .arg(format!("--label=slipway-lab.name={}", lab.name))
            .arg(format!("--network=slipway-{}", lab.name))
            .arg(format!("--ip={ip}"));
        if let Ok(run_id) = std::env::var("SLIPWAY_LAB_RUN") {
            cmd.arg(format!("--label=slipway-lab.run={run_id}"));
        }
        let out = cmd.arg(reg.local_image("receiver")).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        Receiver {
            url: format!("http://{ip}:8080/hook"),
            container,
        }
    }

    /// Every payload received so far.
    pub fn received(&self) -> Vec<serde_json::Value> {
        let out = std::process::Command::new("docker")
            .args(["exec", &self.container, "wget", "-q", "-O-"])
            .arg("http://127.0.0.1:8080/received")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}
