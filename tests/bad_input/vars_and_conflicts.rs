//! Role variables nothing reads, unknown keys in a role variable's tables,
//! errors about a role variable's value (pointing where the value that won
//! was set), resources that manage the same thing, and kinds a playbook
//! cannot write. Each is refused before any connection; the controls show
//! what stays allowed.

use super::*;

/// A public key the roles accept.
const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHRlc3Qga2V5IGZvciBzbGlwd2F5 ops@test";

/// The good playbook, its play running `roles` with `vars` (the inside of an
/// inline table, may be empty); returns what was written.
fn with_roles(p: &Project, roles: &[&str], vars: &str) -> String {
    let roles: Vec<String> = roles.iter().map(|r| format!("\"{r}\"")).collect();
    let mut head = format!("hosts = \"all\"\nroles = [{}]\n", roles.join(", "));
    if !vars.is_empty() {
        head.push_str(&format!("vars = {{ {vars} }}\n"));
    }
    p.file(PB, &GOOD_PB.replacen("hosts = \"all\"\n", &head, 1))
}

/// The good playbook with `roles` and `vars`, plus `extra` appended.
fn with_roles_plus(p: &Project, roles: &[&str], vars: &str, extra: &str) -> String {
    let pb = with_roles(p, roles, vars);
    p.file(PB, &format!("{pb}{extra}"))
}

/// The good inventory with `vars` (TOML lines) added to its `[vars]`.
fn inventory_vars(p: &Project, vars: &str) -> String {
    p.inventory_with("motd = \"welcome\"", &format!("motd = \"welcome\"\n{vars}"))
}

/// The good inventory with `vars` (the inside of an inline table) as db1's vars.
fn host_vars(p: &Project, vars: &str) -> String {
    p.inventory_with(
        "[hosts.db1]\naddress = \"127.0.0.1\"",
        &format!("[hosts.db1]\naddress = \"127.0.0.1\"\nvars = {{ {vars} }}"),
    )
}

/// The good inventory with `vars` (the inside of an inline table) as the web group's.
fn group_vars(p: &Project, vars: &str) -> String {
    p.inventory_with(
        "vars = { site = \"example.org\" }",
        &format!("vars = {{ site = \"example.org\", {vars} }}"),
    )
}

/// `check` accepts the project (exit 0) and shows no secret.
fn accepted(p: &Project, args: &[&str]) {
    let mut all = vec!["check", "-i", INV, PB];
    all.extend_from_slice(args);
    let r = p.run(&all);
    assert_eq!(r.code, Some(0), "expected check to pass\n{}", r.dump());
    r.shows_no_secret();
}

// ------------------------------------------------- misspelt role variables

#[test]
fn misspelt_firewall_ssh_from_in_inventory_vars() {
    let p = Project::new();
    let inv = inventory_vars(&p, "firewall_ssh_form = [\"10.0.0.0/8\"]");
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "firewall_ssh_form")])
        .mentions(&[
            "`firewall_ssh_form` is set",
            "did you mean `firewall_ssh_from`?",
        ])
        .plans_nothing();
}

#[test]
fn ssh_port_typo_in_host_vars() {
    let p = Project::new();
    let inv = host_vars(&p, "ssh_port_typo = 1");
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "ssh_port_typo")])
        .mentions(&["ssh_port_typo", "did you mean `ssh_port`?"]);
}

#[test]
fn firewall_allow_in_group_vars() {
    let p = Project::new();
    let inv = group_vars(&p, "firewall_allow = []");
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "firewall_allow")])
        .mentions(&["firewall_allow", "no role has a variable of that name"]);
}

#[test]
fn misspelt_deploy_user_in_play_vars() {
    let p = Project::new();
    let pb = with_roles(&p, &[], "deploy_usr = \"ops\"");
    p.refused(&[])
        .fails_at(PB, &[loc(&pb, "deploy_usr")])
        .mentions(&["deploy_usr", "did you mean `deploy_user`?"]);
}

#[test]
fn misspelt_variable_given_with_e() {
    let p = Project::new();
    p.refused(&["-e", "ssh_port_typo=2222"])
        .fails()
        .mentions(&["-e ssh_port_typo", "did you mean `ssh_port`?"]);
}

#[test]
fn misspelt_variable_of_a_role_no_play_uses() {
    // A monitoring variable, in a project without the monitoring role: still a typo.
    let p = Project::new();
    let inv = inventory_vars(&p, "grafana_admin_user_name = \"ops\"");
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "grafana_admin_user_name")])
        .mentions(&["did you mean `grafana_admin_user`?"]);
}

#[test]
fn misspelt_secret_variable_shows_no_secret() {
    let p = Project::new();
    let inv = host_vars(
        &p,
        "alertmanager_smtp_auth_pasword = { secret = true, env = \"SLIPWAY_BAD_INPUT_SECRET\" }",
    );
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "alertmanager_smtp_auth_pasword")])
        .mentions(&["did you mean `alertmanager_smtp_auth_password`?"]);
}

#[test]
fn misspelt_alert_threshold() {
    let p = Project::new();
    let inv = inventory_vars(&p, "alert_cpu_percnt = 95");
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "alert_cpu_percnt")])
        .mentions(&["did you mean `alert_cpu_percent`?"]);
}

#[test]
fn misspelt_promtail_log_dir() {
    let p = Project::new();
    let inv = host_vars(&p, "promtail_app_logdir = \"/srv/logs\"");
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "promtail_app_logdir")])
        .mentions(&["did you mean `promtail_app_log_dir`?"]);
}

#[test]
fn sysctl_setting_without_its_s() {
    let p = Project::new();
    let inv = inventory_vars(&p, "sysctl_setting = { \"vm.swappiness\" = 10 }");
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "sysctl_setting ")])
        .mentions(&["did you mean `sysctl_settings`?"]);
}

#[test]
fn misspelt_docker_daemon_options() {
    let p = Project::new();
    let pb = with_roles(&p, &["docker"], "docker_daemon_option = { debug = true }");
    p.refused(&[])
        .fails_at(PB, &[loc(&pb, "docker_daemon_option")])
        .mentions(&["did you mean `docker_daemon_options`?"]);
}

#[test]
fn misspelt_fail2ban_maxretry() {
    let p = Project::new();
    let inv = group_vars(&p, "fail2ban_max_retry = 3");
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "fail2ban_max_retry")])
        .mentions(&["did you mean `fail2ban_maxretry`?"]);
}

#[test]
fn app_log_path_without_its_s() {
    let p = Project::new();
    let inv = inventory_vars(&p, "app_log_path = [\"/srv/app/*.log\"]");
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "app_log_path")])
        .mentions(&["did you mean `app_log_paths`?"]);
}

#[test]
fn misspelt_variable_in_a_later_play() {
    let p = Project::new();
    let pb = p.file(
        PB,
        &format!(
            "{GOOD_PB}\n[[play]]\nname = \"web\"\nhosts = \"web\"\n\n[play.vars]\nswarm_ready_timout = 120\n"
        ),
    );
    p.refused(&[])
        .fails_at(PB, &[loc(&pb, "swarm_ready_timout")])
        .mentions(&["did you mean `swarm_ready_timeout`?"]);
}

#[test]
fn a_template_reading_a_different_name_does_not_excuse_a_typo() {
    let p = Project::new();
    p.file(
        "templates/banner.j2",
        "{{ firewall_ssh_from | join(\",\") }}\n",
    );
    let inv = inventory_vars(&p, "firewall_ssh_form = [\"10.0.0.0/8\"]");
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "firewall_ssh_form")])
        .mentions(&["did you mean `firewall_ssh_from`?"]);
}

#[test]
fn control_prefixed_variable_read_by_an_inline_string() {
    let p = Project::new();
    inventory_vars(&p, "ssh_banner = \"authorised use only\"");
    p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/issue.net\"\ncontent = \"{{ ssh_banner }}\\n\"\n",
    );
    accepted(&p, &[]);
}

#[test]
fn control_prefixed_variable_read_by_a_template_file() {
    // Any template of the templates directory counts, rendered or not.
    let p = Project::new();
    p.file(
        "templates/banner.j2",
        "{% if firewall_note is defined %}{{ firewall_note }}{% endif %}\n",
    );
    host_vars(&p, "firewall_note = \"behind the office VPN\"");
    accepted(&p, &[]);
}

#[test]
fn control_free_names_and_role_variables_of_other_plays() {
    // No role prefix: the user's own. A role variable with no role in the play: fine.
    let p = Project::new();
    inventory_vars(
        &p,
        "mysite_name = \"shop\"\nfirewall_ssh_from = [\"10.0.0.0/8\"]\ngrafana_admin_user = \"ops\"",
    );
    accepted(&p, &["-e", "release=v1.2"]);
}

// ---------------------------------------- unknown keys in role variables

#[test]
fn swarm_network_with_a_misspelt_key() {
    let p = Project::new();
    let inv = inventory_vars(
        &p,
        "swarm_networks = [{ name = \"backend\" }, { name = \"front\", atachable = true }]",
    );
    with_roles(&p, &["swarm_cluster"], "swarm_managers_group = \"web\"");
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "atachable")])
        .mentions(&[
            "role swarm_cluster on web1",
            "swarm_networks[1].atachable",
            "unknown field `atachable`",
        ]);
}

#[test]
fn firewall_rule_with_an_unknown_key() {
    let p = Project::new();
    let inv = group_vars(
        &p,
        "firewall_rules = [{ port = 443, source = \"10.0.0.0/8\" }]",
    );
    with_roles(&p, &["firewall"], "");
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "source")])
        .mentions(&["firewall_rules[0].source", "unknown field `source`"]);
}

#[test]
fn published_port_with_an_unknown_key() {
    let p = Project::new();
    let pb = with_roles(
        &p,
        &["firewall"],
        "firewall_docker_published = [{ port = 8080, to = \"10.0.0.0/8\" }]",
    );
    p.refused(&[])
        .fails_at(PB, &[loc(&pb, "to = ")])
        .mentions(&["firewall_docker_published[0].to", "unknown field `to`"]);
}

#[test]
fn monitoring_image_of_an_unknown_service() {
    let p = Project::new();
    let inv = inventory_vars(
        &p,
        "monitoring_images = { grafanna = \"grafana/grafana:11\" }",
    );
    with_roles(&p, &["monitoring"], "swarm_managers_group = \"web\"");
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "grafanna")])
        .mentions(&["monitoring_images.grafanna", "unknown field `grafanna`"]);
}

#[test]
fn monitoring_memory_limit_of_an_unknown_service() {
    let p = Project::new();
    let inv = host_vars(&p, "monitoring_memory_limits = { prometheuss = \"1G\" }");
    with_roles(&p, &["monitoring"], "swarm_managers_group = \"web\"");
    p.refused(&["--limit", "db1"])
        .fails_at(INV, &[loc(&inv, "prometheuss")])
        .mentions(&["unknown field `prometheuss`"]);
}

#[test]
fn swarm_network_with_an_unknown_key_given_with_e() {
    let p = Project::new();
    with_roles(&p, &["swarm_cluster"], "swarm_managers_group = \"web\"");
    p.refused(&["-e", "swarm_networks=[{ name = \"a\", internal = true }]"])
        .fails()
        .mentions(&["-e swarm_networks", "unknown field `internal`"]);
}

#[test]
fn control_free_form_maps_take_any_key() {
    let p = Project::new();
    inventory_vars(
        &p,
        "swarm_node_labels = { zone = \"a\", \"tier.kind\" = \"db\" }\nsysctl_settings = { \"vm.swappiness\" = 10 }\ndocker_daemon_options = { debug = true }",
    );
    with_roles(
        &p,
        &["sysctl", "docker", "swarm_cluster"],
        "swarm_managers_group = \"web\"",
    );
    accepted(&p, &[]);
}

// ------------------------------------ errors point at the value that won

#[test]
fn ssh_port_of_the_wrong_type_in_group_vars() {
    let p = Project::new();
    let inv = group_vars(&p, "ssh_port = \"ssh\"");
    with_roles(&p, &["fail2ban"], "");
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "\"ssh\"")])
        .mentions(&[
            "role fail2ban on web1",
            "variable `ssh_port`",
            "expected u16",
        ]);
}

#[test]
fn the_host_value_wins_and_is_the_one_named() {
    let p = Project::new();
    inventory_vars(&p, "ssh_port = 2222");
    let inv = host_vars(&p, "ssh_port = \"twenty-two\"");
    with_roles(&p, &["fail2ban"], "");
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "\"twenty-two\"")])
        .mentions(&["role fail2ban on db1", "variable `ssh_port`"]);
}

#[test]
fn control_a_bad_play_value_under_a_good_inventory_value() {
    // Play vars sit below the inventory: the inventory's value is the one used.
    let p = Project::new();
    inventory_vars(&p, "ssh_port = 2222");
    with_roles(&p, &["fail2ban"], "ssh_port = \"bad\"");
    accepted(&p, &[]);
}

#[test]
fn ssh_port_of_the_wrong_type_given_with_e() {
    let p = Project::new();
    inventory_vars(&p, "ssh_port = 2222");
    with_roles(&p, &["fail2ban"], "");
    p.refused(&["-e", "ssh_port=abc"]).fails().mentions(&[
        "-e ssh_port",
        "variable `ssh_port`",
        "expected u16",
    ]);
}

#[test]
fn firewall_rule_port_out_of_range_points_at_the_port() {
    let p = Project::new();
    let inv = inventory_vars(&p, "firewall_rules = [{ port = 443 }, { port = 70000 }]");
    with_roles(&p, &["firewall"], "");
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "70000")])
        .mentions(&["firewall_rules[1].port", "70000"]);
}

#[test]
fn firewall_ssh_from_with_host_bits_points_at_the_item() {
    let p = Project::new();
    let inv = group_vars(&p, "firewall_ssh_from = [\"10.0.0.0/8\", \"192.0.2.1/24\"]");
    with_roles(&p, &["firewall"], "");
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "\"192.0.2.1/24\"")])
        .mentions(&["firewall_ssh_from[1]", "192.0.2.1/24"]);
}

#[test]
fn empty_firewall_ssh_from_points_at_the_empty_list() {
    let p = Project::new();
    let inv = host_vars(&p, "firewall_ssh_from = []");
    with_roles(&p, &["firewall"], "");
    p.refused(&["--limit", "db1"])
        .fails_at(INV, &[loc(&inv, "[] }")])
        .mentions(&["firewall_ssh_from is empty"]);
}

#[test]
fn docker_repo_url_over_http_in_play_vars() {
    let p = Project::new();
    let pb = with_roles(
        &p,
        &["docker"],
        "docker_repo_url = \"http://mirror.example/docker\"",
    );
    p.refused(&[])
        .fails_at(PB, &[loc(&pb, "\"http://mirror.example/docker\"")])
        .mentions(&["docker_repo_url must be an https:// URL"]);
}

#[test]
fn relative_app_log_path_points_at_the_item() {
    let p = Project::new();
    let inv = inventory_vars(&p, "app_log_paths = [\"/srv/app/*.log\", \"logs/*.log\"]");
    with_roles(&p, &["logrotate"], "");
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "\"logs/*.log\"")])
        .mentions(&["app_log_paths", "logs/*.log", "absolute"]);
}

#[test]
fn deploy_key_that_is_not_a_key_points_at_the_item() {
    let p = Project::new();
    let inv = inventory_vars(&p, &format!("deploy_keys = [\"{KEY}\", \"my laptop key\"]"));
    with_roles(&p, &["deploy_user"], "");
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "\"my laptop key\"")])
        .mentions(&["not an SSH public key"]);
}

#[test]
fn monitoring_resolve_image_that_is_not_a_choice() {
    let p = Project::new();
    let inv = group_vars(&p, "monitoring_resolve_image = \"sometimes\"");
    with_roles(&p, &["monitoring"], "swarm_managers_group = \"web\"");
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "\"sometimes\"")])
        .mentions(&["monitoring_resolve_image", "always, changed, never"]);
}

#[test]
fn swarm_network_name_with_a_space_points_at_the_name() {
    let p = Project::new();
    let inv = inventory_vars(&p, "swarm_networks = [{ name = \"back end\" }]");
    with_roles(&p, &["swarm_cluster"], "swarm_managers_group = \"web\"");
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "\"back end\"")])
        .mentions(&["swarm_networks[0].name", "not a valid network name"]);
}

#[test]
fn secret_of_the_wrong_type_is_named_not_shown() {
    let p = Project::new();
    let inv = host_vars(
        &p,
        "fail2ban_maxretry = { secret = true, env = \"SLIPWAY_BAD_INPUT_SECRET\" }",
    );
    with_roles(&p, &["fail2ban"], "");
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "fail2ban_maxretry")])
        .mentions(&["variable `fail2ban_maxretry`", "(sensitive)"]);
}

#[test]
fn ssh_revert_window_too_short_in_host_vars() {
    let p = Project::new();
    let inv = host_vars(&p, "ssh_revert_window = 5");
    with_roles(
        &p,
        &["ssh_hardening"],
        &format!("deploy_keys = [\"{KEY}\"]"),
    );
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "5 }")])
        .mentions(&["role ssh_hardening on db1", "ssh_revert_window"]);
}

#[test]
fn ssh_allow_users_without_the_deploy_user() {
    let p = Project::new();
    let inv = inventory_vars(&p, "ssh_allow_users = [\"ops\"]");
    with_roles(
        &p,
        &["ssh_hardening"],
        &format!("deploy_keys = [\"{KEY}\"]"),
    );
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "[\"ops\"]")])
        .mentions(&["ssh_allow_users must include the deploy user"]);
}

#[test]
fn fail2ban_maxretry_below_zero() {
    let p = Project::new();
    let pb = with_roles(&p, &["fail2ban"], "fail2ban_maxretry = -1");
    p.refused(&[])
        .fails_at(PB, &[loc(&pb, "-1")])
        .mentions(&["variable `fail2ban_maxretry`"]);
}

#[test]
fn swarm_advertise_addr_that_is_not_an_ip() {
    let p = Project::new();
    let inv = p.inventory_with(
        "groups = [\"web\"]",
        "groups = [\"web\"]\nvars = { swarm_advertise_addr = \"web-one.internal\" }",
    );
    with_roles(&p, &["swarm"], "swarm_managers_group = \"web\"");
    p.refused(&["--limit", "web1"])
        .fails_at(INV, &[loc(&inv, "\"web-one.internal\"")])
        .mentions(&["no IP address to advertise", "web-one.internal"]);
}

#[test]
fn swarm_node_label_that_is_not_a_string() {
    let p = Project::new();
    let inv = p.inventory_with(
        "groups = [\"web\"]",
        "groups = [\"web\"]\nvars = { swarm_node_labels = { db = true } }",
    );
    with_roles(&p, &["swarm_cluster"], "swarm_managers_group = \"web\"");
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "true }")])
        .mentions(&["swarm_node_labels.db"]);
}

// ---------------------------------------------------- one owner per thing

#[test]
fn inline_file_at_the_hardening_drop_in() {
    let p = Project::new();
    let pb = with_roles_plus(
        &p,
        &["ssh_hardening"],
        &format!("deploy_keys = [\"{KEY}\"]"),
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/ssh/sshd_config.d/00-slipway-hardening.conf\"\ncontent = \"PermitRootLogin yes\\n\"\n",
    );
    p.refused(&[])
        .fails_at(
            PB,
            &[loc(
                &pb,
                "\"/etc/ssh/sshd_config.d/00-slipway-hardening.conf\"",
            )],
        )
        .mentions(&[
            "00-slipway-hardening.conf",
            "is already managed by role ssh_hardening (play 1)",
        ]);
}

#[test]
fn two_inline_files_at_one_path() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/motd\" # again\ncontent = \"hi\\n\"\n",
    );
    let first = loc_in(&pb, "path = \"/etc/motd\"\n", "\"/etc/motd\"");
    p.refused(&[])
        .fails_at(PB, &[loc_in(&pb, "\"/etc/motd\" # again", "\"/etc/motd\"")])
        .mentions(&[
            "path `/etc/motd`",
            &format!("the file resource at {PB}:{}:{}", first.line, first.col),
        ]);
}

#[test]
fn the_same_path_in_two_plays() {
    let p = Project::new();
    let pb = p.file(
        PB,
        &format!(
            "{GOOD_PB}\n[[play]]\nname = \"web\"\nhosts = \"web\"\n\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/motd\" # web\ncontent = \"web\\n\"\n"
        ),
    );
    p.refused(&[])
        .fails_at(PB, &[loc_in(&pb, "\"/etc/motd\" # web", "\"/etc/motd\"")])
        .mentions(&[
            "path `/etc/motd` is already managed by the file resource",
            "on web1",
        ]);
}

#[test]
fn a_directory_where_a_file_is_managed() {
    let p = Project::new();
    let pb =
        p.playbook_plus("\n[[play.resources]]\ntype = \"directory\"\npath = \"/etc/motd\" # dir\n");
    p.refused(&[])
        .fails_at(PB, &[loc_in(&pb, "\"/etc/motd\" # dir", "\"/etc/motd\"")])
        .mentions(&["path `/etc/motd`"]);
}

#[test]
fn package_removed_that_a_role_installs() {
    let p = Project::new();
    let pb = with_roles_plus(
        &p,
        &["base"],
        "",
        "\n[[play.resources]]\ntype = \"package\"\nname = [\"jq\", \"curl\"]\nstate = \"absent\"\n",
    );
    p.refused(&[])
        .fails_at(PB, &[loc(&pb, "\"curl\"")])
        .mentions(&[
            "package `curl` is wanted absent here",
            "role base (play 1) wants it installed",
        ]);
}

#[test]
fn package_removed_before_a_later_play_installs_it() {
    // The error still points at the inline resource, which came first.
    let p = Project::new();
    let pb = p.file(
        PB,
        &format!(
            "{GOOD_PB}\n[[play.resources]]\ntype = \"package\"\nname = \"sudo\"\nstate = \"absent\"\n\n[[play]]\nname = \"accounts\"\nhosts = \"all\"\nroles = [\"deploy_user\"]\nvars = {{ deploy_keys = [\"{KEY}\"] }}\n"
        ),
    );
    p.refused(&[])
        .fails_at(PB, &[loc(&pb, "\"sudo\"")])
        .mentions(&[
            "package `sudo`",
            "role deploy_user (play 2) wants it installed",
        ]);
}

#[test]
fn two_services_for_one_unit() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"service\"\nname = \"nginx\"\nstate = \"running\"\n\n[[play.resources]]\ntype = \"service\"\nname = \"nginx\" # again\nstate = \"stopped\"\n",
    );
    p.refused(&[])
        .fails_at(PB, &[loc_in(&pb, "\"nginx\" # again", "\"nginx\"")])
        .mentions(&["systemd unit `nginx`", "the service resource at"]);
}

#[test]
fn service_stopping_the_unit_a_role_runs() {
    let p = Project::new();
    let pb = with_roles_plus(
        &p,
        &["fail2ban"],
        "",
        "\n[[play.resources]]\ntype = \"service\"\nname = \"fail2ban\"\nstate = \"stopped\"\n",
    );
    p.refused(&[])
        .fails_at(PB, &[loc(&pb, "\"fail2ban\"\nstate")])
        .mentions(&["systemd unit `fail2ban`", "role fail2ban (play 1)"]);
}

#[test]
fn user_account_managed_by_deploy_user_and_inline() {
    let p = Project::new();
    let pb = with_roles_plus(
        &p,
        &["deploy_user"],
        &format!("deploy_keys = [\"{KEY}\"]"),
        "\n[[play.resources]]\ntype = \"user\"\nname = \"deploy\"\nshell = \"/bin/sh\"\n",
    );
    p.refused(&[])
        .fails_at(PB, &[loc(&pb, "\"deploy\"\nshell")])
        .mentions(&["user `deploy`", "role deploy_user (play 1)"]);
}

#[test]
fn two_groups_of_one_name() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"group\"\nname = \"app\"\n\n[[play.resources]]\ntype = \"group\"\nname = \"app\"\ngid = 1500\n",
    );
    p.refused(&[])
        .fails_at(PB, &[loc(&pb, "\"app\"\ngid")])
        .mentions(&["group `app`"]);
}

#[test]
fn sysctl_key_the_hardening_role_sets() {
    let p = Project::new();
    let pb = with_roles_plus(
        &p,
        &["sysctl"],
        "",
        "\n[[play.resources]]\ntype = \"sysctl\"\nname = \"app\"\nsettings = { \"vm.swappiness\" = 10, \"net.ipv4.ip_forward\" = 0 }\n",
    );
    p.refused(&[])
        .fails_at(PB, &[loc(&pb, "\"net.ipv4.ip_forward\"")])
        .mentions(&[
            "sysctl key `net.ipv4.ip_forward`",
            "role sysctl (play 1)",
            "sysctl_settings",
        ]);
}

#[test]
fn sysctl_drop_in_named_like_the_roles() {
    let p = Project::new();
    let pb = with_roles_plus(
        &p,
        &["sysctl"],
        "",
        "\n[[play.resources]]\ntype = \"sysctl\"\nname = \"slipway-hardening\"\nsettings = { \"vm.swappiness\" = 10 }\n",
    );
    p.refused(&[])
        .fails_at(PB, &[loc(&pb, "\"slipway-hardening\"")])
        .mentions(&["/etc/sysctl.d/60-slipway-hardening.conf"]);
}

#[test]
fn inline_daemon_json_beside_the_docker_role() {
    let p = Project::new();
    let pb = with_roles_plus(
        &p,
        &["docker", "logrotate"],
        "",
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/docker/daemon.json\"\ncontent = \"{}\"\n",
    );
    p.refused(&[])
        .fails_at(PB, &[loc(&pb, "\"/etc/docker/daemon.json\"")])
        .mentions(&["path `/etc/docker/daemon.json`", "role docker (play 1)"]);
}

#[test]
fn inline_after_rules_beside_the_firewall_role() {
    let p = Project::new();
    let pb = with_roles_plus(
        &p,
        &["firewall"],
        "",
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/ufw/after.rules\"\ncontent = \"*filter\\nCOMMIT\\n\"\n",
    );
    p.refused(&[])
        .fails_at(PB, &[loc(&pb, "\"/etc/ufw/after.rules\"")])
        .mentions(&["role firewall (play 1)"]);
}

#[test]
fn a_role_listed_twice_for_one_host() {
    // Two roles, no inline resource: the error names both, with no file location.
    let p = Project::new();
    p.file(
        PB,
        &format!(
            "{GOOD_PB}\n[[play]]\nname = \"tools\"\nhosts = \"all\"\nroles = [\"logrotate\"]\n\n[[play]]\nname = \"again\"\nhosts = \"web\"\nroles = [\"logrotate\"]\n"
        ),
    );
    p.refused(&[]).fails().mentions(&[
        "role logrotate (play 2)",
        "role logrotate (play 3)",
        "on web1",
    ]);
}

#[test]
fn control_shared_packages_memberships_and_handlers() {
    // A package both want installed, the docker role's membership beside the
    // deploy user's account, a handler beside a service of its unit.
    let p = Project::new();
    with_roles_plus(
        &p,
        &["base", "deploy_user", "docker", "logrotate"],
        &format!("deploy_keys = [\"{KEY}\"]"),
        "\n[[play.resources]]\ntype = \"package\"\nname = [\"curl\", \"jq\"]\nstate = \"latest\"\n\n[[play.resources]]\ntype = \"user\"\nname = \"deploy\"\ngroups = [\"adm\"]\n\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/ssh/sshd_config.d/10-app.conf\"\ncontent = \"ClientAliveInterval 60\\n\"\nnotify = [\"ssh\"]\n\n[[play.resources]]\ntype = \"service\"\nname = \"ssh\"\nstate = \"running\"\n",
    );
    accepted(&p, &[]);
}

// ------------------------------------------------------------------ kinds

#[test]
fn a_kind_only_roles_make() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"sshd\"\npath = \"/etc/ssh/sshd_config.d/10-x.conf\"\n",
    );
    p.refused(&[])
        .fails_at(PB, &[loc(&pb, "\"sshd\"")])
        .mentions(&["resource type `sshd` is made by built-in roles only"]);
}

#[test]
fn an_unknown_kind_lists_the_kinds_a_playbook_can_write() {
    let p = Project::new();
    let pb = p.playbook_plus("\n[[play.resources]]\ntype = \"cron\"\nname = \"x\"\n");
    p.refused(&[])
        .fails_at(PB, &[loc(&pb, "\"cron\"")])
        .mentions(&[
            "unknown resource type `cron`",
            "file, directory, package, service, user, group, command, sysctl",
        ]);
}
