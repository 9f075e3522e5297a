//! Names the commit the binary is built from, for `lambda-matrix --version` ("unknown" outside
//! a git checkout, e.g. from a source package).

use std::path::PathBuf;
use std::process::Command;

/// `git <args>`'s output, trimmed; `None` outside a checkout or without git.
fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|text| !text.is_empty())
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=LAMBDA_MATRIX_COMMIT={commit}");
    // Where HEAD and the branches live: `.git` in a clone; in a worktree its own HEAD and the
    // main checkout's refs. Rebuilt when they move.
    let dirs = [
        git(&["rev-parse", "--git-dir"]),
        git(&["rev-parse", "--git-common-dir"]),
    ];
    if let [Some(git_dir), Some(common)] = dirs {
        let (git_dir, common) = (PathBuf::from(git_dir), PathBuf::from(common));
        for path in [
            git_dir.join("HEAD"),
            common.join("refs/heads"),
            common.join("packed-refs"),
        ] {
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
