//! Values that parse but make no sense, secrets in places where they would
//! be shown, and input that once made slipway panic or flood the terminal:
//! each refused before any host is contacted, at its file:line:col where it
//! has one, and without a secret in any output.

use super::*;

/// A public key, for the roles that refuse to run without one.
const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBcd ops@laptop";

/// The good inventory with `extra` lines added to its `[vars]`.
fn inventory_vars(p: &Project, extra: &str) -> String {
    p.inventory_with(
        "motd = \"welcome\"",
        &format!("motd = \"welcome\"\n{extra}"),
    )
}

/// The good playbook whose play also has `lines` (roles, vars) after `hosts`.
fn play_with(p: &Project, lines: &str) -> String {
    p.file(
        PB,
        &GOOD_PB.replace("hosts = \"all\"", &format!("hosts = \"all\"\n{lines}")),
    )
}

/// The location of a quoted value: its opening quote or its first character.
fn value_at(text: &str, anchor: &str, value: &str) -> [Loc; 2] {
    let at = loc_in(text, anchor, value);
    [at, at.plus(1)]
}

/// Writes `bytes` as they are (not UTF-8 text) to `name`.
fn raw_file(p: &Project, name: &str, bytes: &[u8]) {
    let path = p.path().join(name);
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, bytes).expect("write fixture");
}

impl Run {
    /// The error stayed short: no input line echoed whole.
    fn is_short(&self) -> &Self {
        assert!(
            self.stderr.len() < 20_000 && self.stdout.len() < 20_000,
            "the error is {} bytes long\n{}",
            self.stderr.len(),
            &self.stderr[..self.stderr.len().min(3_000)]
        );
        self
    }

    /// Exit 0: offline commands only warn.
    fn succeeds(&self) -> &Self {
        assert_eq!(self.code, Some(0), "expected success\n{}", self.dump());
        self
    }
}

// ------------------------------------------------------- deploy_user

#[test]
fn deploy_user_root_in_the_inventory() {
    let p = Project::new();
    let inv = inventory_vars(&p, "deploy_user = \"root\"");
    play_with(&p, "roles = [\"deploy_user\"]");
    p.refused(&[])
        .fails_at(INV, &value_at(&inv, "deploy_user = \"root\"", "\"root\""))
        .mentions(&["deploy_user", "root"])
        .plans_nothing();
}

#[test]
fn deploy_user_root_in_play_vars_for_ssh_hardening() {
    let p = Project::new();
    inventory_vars(&p, &format!("deploy_keys = [\"{KEY}\"]"));
    let pb = play_with(
        &p,
        "roles = [\"ssh_hardening\"]\nvars = { deploy_user = \"root\" }",
    );
    p.refused(&[])
        .fails_at(PB, &value_at(&pb, "deploy_user = \"root\"", "\"root\""))
        .mentions(&["ssh_hardening", "deploy_user", "root"]);
}

#[test]
fn deploy_user_root_from_an_extra_var() {
    let p = Project::new();
    play_with(&p, "roles = [\"deploy_user\"]");
    p.refused(&["-e", "deploy_user=root"])
        .fails()
        .mentions(&["-e deploy_user", "root"])
        .plans_nothing();
}

#[test]
fn deploy_user_from_an_env_secret() {
    let p = Project::new();
    let inv = inventory_vars(
        &p,
        "deploy_user = { secret = true, env = \"SLIPWAY_BAD_INPUT_SECRET\" }",
    );
    play_with(&p, "roles = [\"deploy_user\"]");
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "deploy_user = {")])
        .mentions(&["deploy_user", "secret"]);
}

#[test]
fn deploy_user_from_a_file_secret_for_ssh_hardening() {
    let p = Project::new();
    let inv = inventory_vars(
        &p,
        &format!(
            "deploy_keys = [\"{KEY}\"]\ndeploy_user = {{ secret = true, file = \"backup_password.txt\" }}"
        ),
    );
    play_with(&p, "roles = [\"ssh_hardening\"]");
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "deploy_user = {")])
        .mentions(&["secret"]);
}

#[test]
fn ssh_port_from_an_env_secret() {
    let p = Project::new();
    let inv = inventory_vars(
        &p,
        &format!(
            "deploy_keys = [\"{KEY}\"]\nssh_port = {{ secret = true, env = \"SLIPWAY_BAD_INPUT_SECRET\" }}"
        ),
    );
    play_with(&p, "roles = [\"ssh_hardening\"]");
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "ssh_port = {")])
        .mentions(&["ssh_port", "(sensitive)"]);
}

// --------------------------------------------------- connection settings

#[test]
fn port_zero_in_defaults() {
    let p = Project::new();
    let inv = p.inventory_with("port = @PORT@", "port = 0");
    p.refused(&[])
        .fails_at(INV, &[loc_in(&inv, "port = 0", "0")])
        .mentions(&["port 0"])
        .plans_nothing();
}

#[test]
fn port_zero_on_a_host() {
    let p = Project::new();
    let inv = p.inventory_with(
        "[hosts.db1]\naddress = \"127.0.0.1\"",
        "[hosts.db1]\naddress = \"127.0.0.1\"\nport = 0",
    );
    p.refused(&[])
        .fails_at(INV, &[loc_in(&inv, "port = 0", "0")])
        .mentions(&["port 0"]);
}

#[test]
fn empty_user_in_defaults() {
    let p = Project::new();
    let inv = p.inventory_with("user = \"root\"", "user = \"\"");
    p.refused(&[])
        .fails_at(INV, &value_at(&inv, "user = \"\"", "\"\""))
        .mentions(&["user", "empty"]);
}

#[test]
fn user_with_a_space_on_a_host() {
    let p = Project::new();
    let inv = p.inventory_with(
        "[hosts.db1]\naddress = \"127.0.0.1\"",
        "[hosts.db1]\naddress = \"127.0.0.1\"\nuser = \"de ploy\"",
    );
    p.refused(&[])
        .fails_at(INV, &value_at(&inv, "user = \"de ploy\"", "\"de ploy\""))
        .mentions(&["de ploy"]);
}

#[test]
fn empty_address() {
    let p = Project::new();
    let inv = p.inventory_with(
        "[hosts.db1]\naddress = \"127.0.0.1\"",
        "[hosts.db1]\naddress = \"\"",
    );
    p.refused(&[])
        .fails_at(INV, &value_at(&inv, "address = \"\"", "\"\""))
        .mentions(&["address", "empty"])
        .plans_nothing();
}

#[test]
fn address_with_a_port() {
    let p = Project::new();
    let inv = p.inventory_with(
        "address = \"127.0.0.1\"\ngroups",
        "address = \"127.0.0.1:2222\"\ngroups",
    );
    p.refused(&[])
        .fails_at(INV, &value_at(&inv, "\"127.0.0.1:2222\"", "\""))
        .mentions(&["127.0.0.1:2222", "port = 2222"]);
}

#[test]
fn bracketed_ipv6_address_with_a_port() {
    let p = Project::new();
    let inv = p.inventory_with(
        "[hosts.db1]\naddress = \"127.0.0.1\"",
        "[hosts.db1]\naddress = \"[::1]:2222\"",
    );
    p.refused(&[])
        .fails_at(INV, &value_at(&inv, "\"[::1]:2222\"", "\""))
        .mentions(&["[::1]:2222", "port"]);
}

#[test]
fn address_with_a_user() {
    let p = Project::new();
    let inv = p.inventory_with(
        "[hosts.db1]\naddress = \"127.0.0.1\"",
        "[hosts.db1]\naddress = \"ops@127.0.0.1\"",
    );
    p.refused(&[])
        .fails_at(INV, &value_at(&inv, "\"ops@127.0.0.1\"", "\""))
        .mentions(&["ops@127.0.0.1", "user"]);
}

#[test]
fn empty_user_on_the_command_line() {
    let p = Project::new();
    p.refused(&["--user", ""])
        .fails()
        .mentions(&["--user", "empty"])
        .plans_nothing();
    p.apply(&["--user", ""]).fails().mentions(&["--user"]);
}

#[test]
fn user_with_a_space_on_the_command_line() {
    let p = Project::new();
    p.refused(&["--user", "de ploy"])
        .fails()
        .mentions(&["--user", "de ploy"]);
}

#[test]
fn missing_identity_file_fails_plan_and_apply_but_check_warns() {
    let p = Project::new();
    let inv = p.inventory_with(
        "user = \"root\"",
        "user = \"root\"\nidentity_file = \"keys/missing_ed25519\"",
    );
    let at = value_at(&inv, "identity_file = \"keys", "\"keys");
    p.plan(&[])
        .fails_at(INV, &at)
        .mentions(&["identity_file", "does not exist"])
        .shows_no_secret()
        .plans_nothing();
    p.plan(&["--format", "json", "-vv"])
        .fails()
        .shows_no_secret();
    p.apply(&[]).fails_at(INV, &at).plans_nothing();
    for offline in [
        vec!["check", "-i", INV, PB],
        vec!["render", "-i", INV, PB, "--out", "out"],
    ] {
        p.run(&offline)
            .succeeds()
            .mentions(&["identity_file", "does not exist"])
            .shows_no_secret();
    }
}

#[test]
fn identity_file_that_is_a_directory() {
    let p = Project::new();
    fs::create_dir_all(p.path().join("keys")).expect("mkdir");
    let inv = p.inventory_with(
        "[hosts.db1]\naddress = \"127.0.0.1\"",
        "[hosts.db1]\naddress = \"127.0.0.1\"\nidentity_file = \"keys\"",
    );
    p.plan(&["--limit", "db1"])
        .fails_at(INV, &value_at(&inv, "identity_file = \"keys\"", "\"keys\""))
        .mentions(&["not a file"]);
}

#[test]
fn proxy_jump_with_a_space_in_the_host() {
    let p = Project::new();
    let inv = p.inventory_with(
        "user = \"root\"",
        "user = \"root\"\nproxy_jump = \"bastion host\"",
    );
    p.refused(&[])
        .fails_at(INV, &value_at(&inv, "\"bastion host\"", "\""))
        .mentions(&["proxy_jump", "bastion host"]);
}

#[test]
fn proxy_jump_with_a_port_that_is_not_a_number() {
    let p = Project::new();
    let inv = p.inventory_with(
        "[hosts.db1]\naddress = \"127.0.0.1\"",
        "[hosts.db1]\naddress = \"127.0.0.1\"\nproxy_jump = \"ops@bastion:ssh\"",
    );
    p.refused(&[])
        .fails_at(INV, &value_at(&inv, "\"ops@bastion:ssh\"", "\""))
        .mentions(&["proxy_jump", "port"]);
}

#[test]
fn proxy_jump_with_an_empty_hop() {
    let p = Project::new();
    let inv = p.inventory_with(
        "[hosts.db1]\naddress = \"127.0.0.1\"",
        "[hosts.db1]\naddress = \"127.0.0.1\"\nproxy_jump = \"ops@bastion,,gate\"",
    );
    p.refused(&[])
        .fails_at(INV, &value_at(&inv, "\"ops@bastion,,gate\"", "\""))
        .mentions(&["proxy_jump", "empty host"]);
}

#[test]
fn empty_proxy_jump() {
    let p = Project::new();
    let inv = p.inventory_with("user = \"root\"", "user = \"root\"\nproxy_jump = \"\"");
    p.refused(&[])
        .fails_at(INV, &value_at(&inv, "proxy_jump = \"\"", "\"\""))
        .mentions(&["proxy_jump", "empty"]);
}

// ------------------------------------------------- selecting nothing

#[test]
fn play_hosts_empty() {
    let p = Project::new();
    let pb = p.file(PB, &GOOD_PB.replace("hosts = \"all\"", "hosts = \"\""));
    p.refused(&[])
        .fails_at(PB, &value_at(&pb, "hosts = \"\"", "\"\""))
        .mentions(&["hosts", "names no host"])
        .plans_nothing();
}

#[test]
fn play_hosts_only_commas() {
    let p = Project::new();
    let pb = p.file(PB, &GOOD_PB.replace("hosts = \"all\"", "hosts = \" , \""));
    p.refused(&[])
        .fails_at(PB, &value_at(&pb, "hosts = \" , \"", "\" , \""))
        .mentions(&["names no host"]);
}

#[test]
fn empty_limit() {
    let p = Project::new();
    p.refused(&["--limit", ""])
        .fails()
        .mentions(&["--limit", "names no host"])
        .plans_nothing();
}

#[test]
fn limit_of_only_commas() {
    let p = Project::new();
    p.refused(&["--limit", ",,"])
        .fails()
        .mentions(&["--limit", "\",,\""])
        .plans_nothing();
}

#[test]
fn detailed_exitcode_with_an_empty_limit_is_an_error_not_no_changes() {
    let p = Project::new();
    let run = p.plan(&["--limit", "", "--detailed-exitcode"]);
    run.fails().plans_nothing();
    assert!(!run.stdout.contains("No changes"), "{}", run.dump());
}

#[test]
fn zero_forks() {
    let p = Project::new();
    p.plan(&["--forks", "0"])
        .fails()
        .mentions(&["--forks"])
        .plans_nothing();
    p.apply(&["--forks", "0"]).fails().plans_nothing();
}

// --------------------------------------------------------------- paths

#[test]
fn file_path_with_dot_dot() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/../etc/shadow\"\ncontent = \"x\"\n",
    );
    p.refused(&[])
        .fails_at(PB, &value_at(&pb, "\"/etc/../etc/shadow\"", "\""))
        .mentions(&["`..`"]);
}

#[test]
fn directory_path_with_a_trailing_slash() {
    let p = Project::new();
    let pb = p.playbook_plus("\n[[play.resources]]\ntype = \"directory\"\npath = \"/srv/app/\"\n");
    p.refused(&[])
        .fails_at(PB, &value_at(&pb, "\"/srv/app/\"", "\""))
        .mentions(&["/srv/app/", "ends with"]);
}

#[test]
fn file_path_with_a_newline() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/motd.d/a\\nb\"\ncontent = \"x\"\n",
    );
    p.refused(&[])
        .fails_at(PB, &value_at(&pb, "\"/etc/motd.d/a", "\""))
        .mentions(&["control character"]);
}

#[test]
fn relative_directory_path() {
    let p = Project::new();
    let pb = p.playbook_plus("\n[[play.resources]]\ntype = \"directory\"\npath = \"srv/app\"\n");
    p.refused(&[])
        .fails_at(PB, &value_at(&pb, "\"srv/app\"", "\""))
        .mentions(&["srv/app", "absolute"]);
}

#[test]
fn templated_path_that_turns_into_dot_dot() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/{{ motd }}/../passwd\"\ncontent = \"x\"\n",
    );
    p.refused(&[])
        .fails_at(PB, &value_at(&pb, "\"/etc/{{ motd", "\""))
        .mentions(&["/etc/welcome/../passwd"]);
}

#[test]
fn command_creates_with_dot_dot() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"command\"\nrun = \"touch /var/lib/done\"\ncreates = \"/var/lib/x/../done\"\n",
    );
    p.refused(&[])
        .fails_at(PB, &value_at(&pb, "\"/var/lib/x/../done\"", "\""))
        .mentions(&["`..`"]);
}

#[test]
fn user_home_that_is_relative() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"user\"\nname = \"app\"\nhome = \"home/app\"\n",
    );
    p.refused(&[])
        .fails_at(PB, &value_at(&pb, "\"home/app\"", "\""))
        .mentions(&["home", "absolute"]);
}

// ------------------------------------------------------- sysctl role

#[test]
fn sysctl_role_key_with_a_shell_command() {
    let p = Project::new();
    let inv = inventory_vars(
        &p,
        "sysctl_settings = { \"vm.swappiness; touch /tmp/x\" = 1 }",
    );
    play_with(&p, "roles = [\"sysctl\"]");
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "\"vm.swappiness; touch /tmp/x\"")])
        .mentions(&["vm.swappiness; touch /tmp/x", "not a sysctl key"]);
}

#[test]
fn sysctl_role_value_of_two_lines() {
    let p = Project::new();
    let inv = inventory_vars(
        &p,
        "sysctl_settings = { \"vm.swappiness\" = \"10\\nkernel.modules_disabled = 1\" }",
    );
    play_with(&p, "roles = [\"sysctl\"]");
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "\"10\\nkernel")])
        .mentions(&["vm.swappiness", "one line"]);
}

#[test]
fn sysctl_role_key_from_an_extra_var() {
    let p = Project::new();
    play_with(&p, "roles = [\"sysctl\"]");
    p.refused(&["-e", "sysctl_settings={ \"vm.a b\" = 1 }"])
        .fails()
        .mentions(&["-e sysctl_settings", "vm.a b"]);
}

// ------------------------------------------------------- plain names

#[test]
fn file_owner_with_a_space() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/issue\"\ncontent = \"x\"\nowner = \"www data\"\n",
    );
    p.refused(&[])
        .fails_at(PB, &value_at(&pb, "\"www data\"", "\""))
        .mentions(&["owner", "www data"]);
}

#[test]
fn directory_group_with_a_colon() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"directory\"\npath = \"/srv/app\"\ngroup = \"root:root\"\n",
    );
    p.refused(&[])
        .fails_at(PB, &value_at(&pb, "\"root:root\"", "\""))
        .mentions(&["group", "root:root"]);
}

#[test]
fn file_notify_that_is_not_a_unit_name() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/issue\"\ncontent = \"x\"\nnotify = [\"nginx\", \"nginx; reboot\"]\n",
    );
    p.refused(&[])
        .fails_at(PB, &value_at(&pb, "\"nginx; reboot\"", "\""))
        .mentions(&["notify", "nginx; reboot"]);
}

#[test]
fn command_notify_with_a_space() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"command\"\nrun = \"true\"\nnotify = [\"nginx reload\"]\n",
    );
    p.refused(&[])
        .fails_at(PB, &value_at(&pb, "\"nginx reload\"", "\""))
        .mentions(&["notify", "nginx reload"]);
}

// ------------------------------------------------------------------ -e

#[test]
fn extra_var_with_an_unclosed_list() {
    let p = Project::new();
    p.refused(&["-e", "x=[1,"])
        .fails()
        .mentions(&["-e x", "does not parse"])
        .plans_nothing();
}

#[test]
fn extra_var_with_an_unclosed_table() {
    let p = Project::new();
    p.refused(&["-e", "opts={ a = "])
        .fails()
        .mentions(&["-e opts", "does not parse"]);
}

#[test]
fn extra_var_with_an_unclosed_double_quote() {
    let p = Project::new();
    p.refused(&["-e", "motd=\"hello"])
        .fails()
        .mentions(&["-e motd", "does not parse"]);
}

#[test]
fn extra_var_with_an_unclosed_single_quote() {
    let p = Project::new();
    p.refused(&["-e", "motd='hello"])
        .fails()
        .mentions(&["-e motd", "does not parse"]);
}

#[test]
fn extra_var_plain_words_stay_strings() {
    let p = Project::new();
    p.run(&[
        "check",
        "-i",
        INV,
        PB,
        "-e",
        "motd=hello world",
        "-e",
        "v=1.2.3",
    ])
    .succeeds();
}

// ---------------------------------------------------------- plan --out

#[test]
fn plan_out_into_a_missing_directory() {
    let p = Project::new();
    p.refused(&["--out", "no/such/dir/plan.json"])
        .fails()
        .mentions(&["--out", "cannot save the plan"])
        .plans_nothing();
    assert!(!p.path().join("no").exists());
}

#[test]
fn plan_out_that_is_a_directory() {
    let p = Project::new();
    fs::create_dir_all(p.path().join("plans")).expect("mkdir");
    p.plan(&["--out", "plans"])
        .fails()
        .mentions(&["--out plans", "directory"])
        .plans_nothing();
}

// ------------------------------------------ secrets in error messages

#[test]
fn invalid_mode_from_an_inline_secret() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/issue\"\ncontent = \"x\"\nmode = \"{{ smtp_password }}\"\n",
    );
    p.refused(&[])
        .fails_at(PB, &value_at(&pb, "\"{{ smtp_password }}\"", "\""))
        .mentions(&["invalid mode", "(sensitive)"]);
}

#[test]
fn relative_path_from_a_file_secret() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"{{ backup_password }}\"\ncontent = \"x\"\n",
    );
    p.refused(&[])
        .fails_at(PB, &value_at(&pb, "\"{{ backup_password }}\"", "\""))
        .mentions(&["`path` comes from a secret"]);
}

#[test]
fn package_name_from_an_env_secret() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"package\"\nname = [\"curl\", \"{{ api_token }}\"]\n",
    );
    p.refused(&[])
        .fails_at(PB, &value_at(&pb, "\"{{ api_token }}\"", "\""))
        .mentions(&["`name` comes from a secret"]);
}

#[test]
fn user_name_from_an_inline_secret() {
    let p = Project::new();
    let pb =
        p.playbook_plus("\n[[play.resources]]\ntype = \"user\"\nname = \"{{ smtp_password }}\"\n");
    p.refused(&[])
        .fails_at(PB, &value_at(&pb, "\"{{ smtp_password }}\"", "\""))
        .mentions(&["secret"]);
}

#[test]
fn group_name_from_a_file_secret() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"group\"\nname = \"{{ backup_password }}\"\n",
    );
    p.refused(&[])
        .fails_at(PB, &value_at(&pb, "\"{{ backup_password }}\"", "\""))
        .mentions(&["secret"]);
}

#[test]
fn service_unit_from_an_env_secret() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"service\"\nname = \"{{ api_token }}.service\"\nenabled = true\n",
    );
    p.refused(&[])
        .fails_at(PB, &value_at(&pb, "\"{{ api_token }}.service\"", "\""))
        .mentions(&["secret"]);
}

#[test]
fn template_name_from_an_env_secret() {
    let p = Project::new();
    p.file("templates/issue.j2", "hi\n");
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/issue\"\ntemplate = \"{{ api_token }}.j2\"\n",
    );
    p.refused(&[])
        .fails_at(PB, &value_at(&pb, "\"{{ api_token }}.j2\"", "\""))
        .mentions(&["`template` comes from a secret"]);
}

#[test]
fn include_name_from_an_inline_secret() {
    let p = Project::new();
    let tmpl = p.file("templates/issue.j2", "hello\n{% include smtp_password %}\n");
    p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/issue\"\ntemplate = \"issue.j2\"\n",
    );
    let at = loc_in(&tmpl, "{% include", "include");
    p.refused(&[])
        .fails_at("templates/issue.j2", &[at, loc(&tmpl, "{% include")])
        .mentions(&["(sensitive)", "not found"]);
}

#[test]
fn toml_syntax_error_next_to_an_inline_secret() {
    let p = Project::new();
    let inv = p.inventory_with(
        "smtp_password = { secret = true, value = \"inline-Secret-Value-3\" }",
        "smtp_password = { secret = true, value = \"inline-Secret-Value-3\" }\nbroken = [oops",
    );
    let at = loc(&inv, "[oops");
    let run = p.refused(&[]);
    run.fails_at(INV, &[at, at.plus(1)]);
    assert!(
        run.stderr.contains("value = \"(sensitive)\""),
        "the snippet should show the masked secret\n{}",
        run.dump()
    );
}

#[test]
fn toml_syntax_error_inside_an_inline_secret() {
    let p = Project::new();
    p.inventory_with(
        "smtp_password = { secret = true, value = \"inline-Secret-Value-3\" }",
        "smtp_password = { secret = true, value = \"inline-Secret-Value-3\" oops }",
    );
    p.refused(&[]).fails().mentions(&["inventory.toml:"]);
}

#[test]
fn secret_declared_as_a_table_with_an_unknown_key() {
    let p = Project::new();
    p.inventory_with(
        "smtp_password = { secret = true, value = \"inline-Secret-Value-3\" }\n",
        "\n[vars.smtp_password]\nsecret = true\nvalue = \"inline-Secret-Value-3\"\ncolour = 3\n",
    );
    let run = p.refused(&[]);
    run.fails().mentions(&["smtp_password", "colour"]);
    assert!(
        run.headline().starts_with("inventory.toml:"),
        "{}",
        run.dump()
    );
}

#[test]
fn secret_in_a_file_path() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/app/{{ smtp_password }}.conf\"\ncontent = \"x\"\n",
    );
    p.refused(&[])
        .fails_at(PB, &value_at(&pb, "\"/etc/app/{{", "\""))
        .mentions(&["`path` comes from a secret"]);
}

#[test]
fn secret_in_a_directory_path() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"directory\"\npath = \"/srv/{{ api_token }}\"\n",
    );
    p.refused(&[])
        .fails_at(PB, &value_at(&pb, "\"/srv/{{ api_token }}\"", "\""))
        .mentions(&["`path` comes from a secret"]);
}

#[test]
fn secret_as_a_file_owner() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/issue\"\ncontent = \"x\"\nowner = \"{{ backup_password }}\"\n",
    );
    p.refused(&[])
        .fails_at(PB, &value_at(&pb, "\"{{ backup_password }}\"", "\""))
        .mentions(&["`owner` comes from a secret"]);
}

#[test]
fn secret_as_a_directory_group() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"directory\"\npath = \"/srv/app\"\ngroup = \"{{ api_token }}\"\n",
    );
    p.refused(&[])
        .fails_at(PB, &value_at(&pb, "\"{{ api_token }}\"", "\""))
        .mentions(&["`group` comes from a secret"]);
}

#[test]
fn secret_in_notify() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/issue\"\ncontent = \"x\"\nnotify = [\"{{ smtp_password }}\"]\n",
    );
    p.refused(&[])
        .fails_at(PB, &value_at(&pb, "\"{{ smtp_password }}\"", "\""))
        .mentions(&["`notify` comes from a secret"]);
}

#[test]
fn secret_as_a_sysctl_resource_name() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"sysctl\"\nname = \"{{ api_token }}\"\nsettings = { \"vm.swappiness\" = 10 }\n",
    );
    p.refused(&[])
        .fails_at(PB, &value_at(&pb, "\"{{ api_token }}\"", "\""))
        .mentions(&["`name` comes from a secret"]);
}

#[test]
fn secret_in_command_creates() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"command\"\nrun = \"true\"\ncreates = \"/var/lib/{{ backup_password }}\"\n",
    );
    p.refused(&[])
        .fails_at(PB, &value_at(&pb, "\"/var/lib/{{", "\""))
        .mentions(&["`creates` comes from a secret"]);
}

#[test]
fn secret_flag_written_as_a_string() {
    let p = Project::new();
    let inv = p.inventory_with(
        "smtp_password = { secret = true,",
        "smtp_password = { secret = \"true\",",
    );
    let key = loc(&inv, "smtp_password = ");
    p.refused(&[])
        .fails_at(INV, &[key, key.plus("smtp_password = ".len())])
        .mentions(&["smtp_password", "must be true"]);
}

#[test]
fn secret_flag_written_as_a_number() {
    let p = Project::new();
    let inv = p.inventory_with("api_token = { secret = true,", "api_token = { secret = 1,");
    let key = loc(&inv, "api_token = ");
    p.refused(&[])
        .fails_at(INV, &[key, key.plus("api_token = ".len())])
        .mentions(&["api_token", "must be true"]);
}

#[test]
fn secret_flag_false_with_a_file() {
    let p = Project::new();
    let inv = p.inventory_with(
        "backup_password = { secret = true,",
        "backup_password = { secret = false,",
    );
    let key = loc(&inv, "backup_password = ");
    p.refused(&[])
        .fails_at(INV, &[key, key.plus("backup_password = ".len())])
        .mentions(&["backup_password", "secret = false"]);
}

#[test]
fn secret_nested_in_a_table() {
    // Declared inside a variable's value, a secret is one like any other...
    let p = Project::new();
    inventory_vars(
        &p,
        "mail = { host = \"smtp.example.org\", password = { secret = true, value = \"inline-Secret-Value-3\" } }",
    );
    let r = p.run(&["check", "-i", INV, PB]);
    assert_eq!(r.code, Some(0), "{}", r.dump());
    r.shows_no_secret();
    // ...and a mistaken declaration there is refused at the variable's name.
    let p = Project::new();
    let inv = inventory_vars(
        &p,
        "mail = { host = \"smtp.example.org\", password = { secret = \"yes\", value = \"inline-Secret-Value-3\" } }",
    );
    let key = loc(&inv, "mail = ");
    p.refused(&[])
        .fails_at(INV, &[key, key.plus("mail = ".len())])
        .mentions(&["mail", "`secret` must be true"]);
}

// ------------------------------------------------- no panic, no flood

/// A minified JSON document with `typo` at about column 70,000 of its one line.
fn minified_json(typo: &str) -> String {
    let mut s = String::from("{");
    let mut i = 0;
    while s.len() < 70_000 {
        s.push_str(&format!("\"key{i}\":\"value {i}\","));
        i += 1;
    }
    s.push_str(&format!("\"last\":\"{{{{ {typo} }}}}\""));
    for j in 0..200 {
        s.push_str(&format!(",\"more{j}\":{j}"));
    }
    s.push_str("}\n");
    s
}

#[test]
fn minified_json_template_with_a_typo_past_column_65535() {
    let p = Project::new();
    let tmpl = p.file("templates/app.json.j2", &minified_json("motdd"));
    p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/app.json\"\ntemplate = \"app.json.j2\"\n",
    );
    let at = loc(&tmpl, "motdd");
    assert!(at.col > 65_535);
    p.refused(&[])
        .fails_at("templates/app.json.j2", &[at])
        .mentions(&["motdd", "\u{2026}"])
        .is_short();
}

#[test]
fn twenty_megabyte_line_is_not_echoed_whole() {
    let p = Project::new();
    let filler = "a".repeat(10 * 1024 * 1024);
    let pb = p.playbook_plus(&format!(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/big\"\ncontent = \"{filler}{{{{ typo_var }}}}{filler}\"\n"
    ));
    let at = loc(&pb, "typo_var");
    p.refused(&[])
        .fails_at(PB, &[at])
        .mentions(&["typo_var"])
        .is_short();
}

#[test]
fn toml_syntax_error_far_along_a_long_line() {
    let p = Project::new();
    let names: Vec<String> = (0..8_000).map(|i| format!("\"pkg{i}\"")).collect();
    let pb = p.playbook_plus(&format!(
        "\n[[play.resources]]\ntype = \"package\"\nname = [{}, oops]\n",
        names.join(", ")
    ));
    let at = loc(&pb, "oops");
    assert!(at.col > 65_535);
    p.refused(&[])
        .fails_at(PB, &[at, at.plus(4), at.plus(1)])
        .is_short();
}

#[test]
fn invalid_utf8_in_the_playbook() {
    let p = Project::new();
    raw_file(
        &p,
        PB,
        b"[[play]]\nname = \"base\"\nhosts = \"all\" # caf\xe9\n",
    );
    p.refused(&[])
        .fails_at(
            PB,
            &[Loc {
                line: 3,
                col: "hosts = \"all\" # caf".len() + 1,
            }],
        )
        .mentions(&["not UTF-8", "0xe9"])
        .plans_nothing();
}

#[test]
fn invalid_utf8_in_the_inventory() {
    let p = Project::new();
    let text = GOOD_INV
        .replace("@PORT@", &p.port.to_string())
        .replace("motd = \"welcome\"", "motd = \"welcome @\"");
    let at = text.find("welcome @").expect("marker") + "welcome ".len();
    let mut bytes = text.clone().into_bytes();
    bytes[at] = 0xbf;
    raw_file(&p, INV, &bytes);
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    p.refused(&[])
        .fails_at(INV, &[Loc { line, col }])
        .mentions(&["not UTF-8", "0xbf"]);
}

#[test]
fn invalid_utf8_in_a_template() {
    let p = Project::new();
    raw_file(
        &p,
        "templates/issue.j2",
        b"Welcome\n\n  to \xc3\x28 {{ motd }}\n",
    );
    p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/issue\"\ntemplate = \"issue.j2\"\n",
    );
    p.refused(&[])
        .fails_at("templates/issue.j2", &[Loc { line: 3, col: 6 }])
        .mentions(&["not UTF-8", "0xc3"]);
}

#[test]
fn invalid_utf8_in_an_included_template() {
    let p = Project::new();
    p.file(
        "templates/outer.j2",
        "{{ motd }}\n{% include \"inner.j2\" %}\n",
    );
    raw_file(&p, "templates/inner.j2", b"ok\n\xff\n");
    p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/issue\"\ntemplate = \"outer.j2\"\n",
    );
    p.refused(&[])
        .fails_at("templates/inner.j2", &[Loc { line: 2, col: 1 }])
        .mentions(&["not UTF-8"]);
}

#[test]
fn undefined_variable_in_an_included_template() {
    let p = Project::new();
    p.file(
        "templates/outer.j2",
        "{{ motd }}\n{% include \"inner.j2\" %}\n",
    );
    let inner = p.file("templates/inner.j2", "first\nsecond {{ owner_mail }}\n");
    p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/issue\"\ntemplate = \"outer.j2\"\n",
    );
    p.refused(&[])
        .fails_at("templates/inner.j2", &[loc(&inner, "owner_mail")])
        .mentions(&[
            "owner_mail",
            "undefined",
            "included from templates/outer.j2:2",
        ]);
}

#[test]
fn undefined_variable_in_a_template_included_from_inline_content() {
    let p = Project::new();
    let inner = p.file("templates/inner.j2", "{{ owner_mail }}\n");
    p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/issue\"\ncontent = \"{% include 'inner.j2' %}\"\n",
    );
    p.refused(&[])
        .fails_at("templates/inner.j2", &[loc(&inner, "owner_mail")])
        .mentions(&["owner_mail", "included from playbook.toml"]);
}

#[test]
fn template_not_found_names_the_templates_directory() {
    let p = Project::new();
    p.file("templates/issue.j2", "hi\n");
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/issue\"\ntemplate = \"isue.j2\"\n",
    );
    p.refused(&[])
        .fails_at(PB, &value_at(&pb, "\"isue.j2\"", "\""))
        .mentions(&["isue.j2", "not found in templates", "built-in"]);
}

#[test]
fn template_not_found_without_a_templates_directory_names_where_it_looked() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/issue\"\ntemplate = \"issue.j2\"\n",
    );
    p.refused(&[])
        .fails_at(PB, &value_at(&pb, "\"issue.j2\"", "\""))
        .mentions(&["issue.j2", "looked for templates and ../templates"]);
}

#[test]
fn include_of_a_missing_template() {
    let p = Project::new();
    let tmpl = p.file("templates/issue.j2", "hi\n{% include \"footer.j2\" %}\n");
    p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/issue\"\ntemplate = \"issue.j2\"\n",
    );
    p.refused(&[])
        .fails_at(
            "templates/issue.j2",
            &[
                loc_in(&tmpl, "{% include", "include"),
                loc(&tmpl, "{% include"),
            ],
        )
        .mentions(&["footer.j2", "not found in templates"]);
}

#[test]
fn unclosed_if_points_at_the_if() {
    let p = Project::new();
    let tmpl = p.file(
        "templates/issue.j2",
        "Welcome\n{% if motd %}\n{{ motd }}\nmore\nand more\n",
    );
    p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/issue\"\ntemplate = \"issue.j2\"\n",
    );
    p.refused(&[])
        .fails_at("templates/issue.j2", &[loc(&tmpl, "{% if motd %}")])
        .mentions(&["syntax error", "{% endif %}"]);
}

#[test]
fn unclosed_for_after_a_closed_if() {
    let p = Project::new();
    let tmpl = p.file(
        "templates/issue.j2",
        "{% if motd %}\n{{ motd }}\n{% endif %}\n{% for h in hosts %}\n{{ h.name }}\n",
    );
    p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/issue\"\ntemplate = \"issue.j2\"\n",
    );
    p.refused(&[])
        .fails_at("templates/issue.j2", &[loc(&tmpl, "{% for h")])
        .mentions(&["{% endfor %}"]);
}

#[test]
fn unclosed_if_in_inline_content() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/issue\"\ncontent = \"{% if motd %}yes\"\n",
    );
    p.refused(&[])
        .fails_at(PB, &[loc(&pb, "{% if motd %}")])
        .mentions(&["never closed"]);
}
