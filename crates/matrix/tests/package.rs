//! The Debian package (issue 33, point 5): `scripts/package` builds it around a binary; the
//! package carries the binary, the systemd unit and a private example settings file, the
//! packaged binary runs, and the unit passes `systemd-analyze verify` where that exists.
//! (The test packages the debug binary the tests built: what is checked is the packaging.)

use std::path::Path;
use std::process::Command;

fn run(command: &mut Command) -> String {
    let output = command.output().expect("runs");
    assert!(
        output.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_package_carries_a_working_binary_a_verified_unit_and_private_settings() {
    if !have("dpkg-deb") {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs on Debian: dpkg-deb must be there"
        );
        eprintln!("no dpkg-deb on this machine: the package is not built here");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = tempfile::tempdir().expect("tempdir");
    let deb = run(Command::new(root.join("scripts/package"))
        .args([
            "--fast",
            "--binary",
            env!("CARGO_BIN_EXE_lambda-matrix"),
            "--out",
        ])
        .arg(out.path()));
    let deb = deb.trim();
    assert!(deb.ends_with(".deb") && Path::new(deb).exists(), "{deb}");

    let info = run(Command::new("dpkg-deb").args(["--info", deb]));
    assert!(info.contains("Package: lambda-matrix"), "{info}");
    assert!(
        info.contains(&format!("Version: {}", env!("CARGO_PKG_VERSION"))),
        "{info}"
    );
    let contents = run(Command::new("dpkg-deb").args(["--contents", deb]));
    let settings = contents
        .lines()
        .find(|l| l.ends_with("./etc/lambda-matrix/lambda-matrix.env"))
        .unwrap_or_else(|| panic!("no settings file: {contents}"));
    assert!(settings.starts_with("-rw------- root/root"), "{settings}");
    let conffiles = run(Command::new("dpkg-deb").args(["--info", deb, "conffiles"]));
    assert_eq!(conffiles.trim(), "/etc/lambda-matrix/lambda-matrix.env");

    let unpacked = tempfile::tempdir().expect("tempdir");
    run(Command::new("dpkg-deb")
        .args(["-x", deb])
        .arg(unpacked.path()));
    let binary = unpacked.path().join("usr/bin/lambda-matrix");
    let version = run(Command::new(&binary).arg("--version"));
    assert!(
        version.starts_with(&format!(
            "lambda-matrix {} (commit ",
            env!("CARGO_PKG_VERSION")
        )),
        "{version}"
    );
    let help = run(Command::new(&binary).args(["check", "--help"]));
    assert!(help.contains("--json"), "{help}");
    let example =
        std::fs::read_to_string(unpacked.path().join("etc/lambda-matrix/lambda-matrix.env"))
            .expect("settings");
    for var in [
        "MATRIX_HOMESERVER=",
        "MATRIX_USER=",
        "MATRIX_PASSWORD=",
        "MATRIX_ACCESS_TOKEN=",
    ] {
        assert!(example.contains(var), "{var} in the example settings");
    }
    assert!(
        !example.contains("change-me"),
        "no sample password that would be tried"
    );

    let unit = std::fs::read_to_string(
        unpacked
            .path()
            .join("lib/systemd/system/lambda-matrix.service"),
    )
    .expect("unit");
    for line in [
        "ExecStart=/usr/bin/lambda-matrix run",
        "EnvironmentFile=/etc/lambda-matrix/lambda-matrix.env",
        "DynamicUser=yes",
        "StateDirectory=lambda-matrix",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "Restart=on-failure",
        "RestartPreventExitStatus=2 3",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit lacks {line}");
    }
    let stop: u64 = unit
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .and_then(|v| v.trim_end_matches('s').parse().ok())
        .expect("TimeoutStopSec in seconds");
    let grace = humantime::parse_duration(lambda_matrix::config::defaults::of(
        lambda_matrix::config::vars::SHUTDOWN_GRACE,
    ))
    .expect("grace");
    assert!(
        stop > grace.as_secs() + 5,
        "TimeoutStopSec above MATRIX_SHUTDOWN_GRACE"
    );

    if have("systemd-analyze") {
        // Verified with ExecStart pointing at the unpacked binary (it must exist).
        let copy = unpacked.path().join("lambda-matrix.service");
        std::fs::write(
            &copy,
            unit.replace("/usr/bin/lambda-matrix", &binary.display().to_string()),
        )
        .expect("write");
        let output = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&copy)
            .output()
            .expect("systemd-analyze runs");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success() && said.trim().is_empty(), "{said}");
    }
}
