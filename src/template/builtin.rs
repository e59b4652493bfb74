//! Templates compiled into the binary, by name (their path under templates/).

macro_rules! builtin {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../templates/", $name)))),*]
    };
}

static BUILTIN: &[(&str, &str)] = builtin![
    "monitoring/prometheus/prometheus.yml.j2",
    "monitoring/prometheus/alerts.yml.j2",
    "monitoring/alertmanager/alertmanager.yml.j2",
    "monitoring/grafana/_panels.j2",
    "monitoring/grafana/provisioning/datasources.yml.j2",
    "monitoring/grafana/provisioning/dashboards.yml.j2",
    "monitoring/grafana/dashboards/api-performance.json.j2",
    "monitoring/grafana/dashboards/system.json.j2",
    "monitoring/grafana/dashboards/business.json.j2",
    "monitoring/grafana/dashboards/security-logs.json.j2",
    "monitoring/loki/loki.yml.j2",
    "monitoring/promtail/promtail.yml.j2",
    "monitoring/alloy/config.alloy.j2",
    "monitoring/stack.yml.j2",
    "edge/nginx.conf.j2",
    "edge/stack.yml.j2",
];

pub fn get(name: &str) -> Option<&'static str> {
    BUILTIN.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

#[cfg(test)]
pub fn names() -> impl Iterator<Item = &'static str> {
    BUILTIN.iter().map(|(n, _)| *n)
}
