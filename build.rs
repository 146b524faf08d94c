//! Builds the chat widget and demo bundles (npm + esbuild, from `package.json`)
//! into `$OUT_DIR/web`, where `web::assets` embeds them: one binary serves all.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    for path in [
        "static/src",
        "static/build.mjs",
        "package.json",
        "package-lock.json",
    ] {
        println!("cargo:rerun-if-changed={path}");
    }
    match build() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("\nerror: building the web widget failed: {message}\n");
            ExitCode::FAILURE
        }
    }
}

fn build() -> Result<(), String> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let out = PathBuf::from(std::env::var("OUT_DIR").map_err(|e| e.to_string())?).join("web");
    let npm_ok = Command::new("npm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !npm_ok {
        return Err(
            "`npm` was not found. copilot-server bundles its chat widget and demo \
                    with npm; install Node.js 18+ and npm (Debian: `apt-get install nodejs npm`) \
                    and build again."
                .to_owned(),
        );
    }
    if needs_install(&root) {
        run(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&root))?;
    }
    run(Command::new("node")
        .arg("static/build.mjs")
        .arg("--outdir")
        .arg(&out)
        .current_dir(&root))
}

/// `npm ci` when node_modules is missing or older than the lock file.
fn needs_install(root: &Path) -> bool {
    let modified = |p: PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (
        modified(root.join("node_modules/.package-lock.json")),
        modified(root.join("package-lock.json")),
    ) {
        (Some(installed), Some(lock)) => installed < lock,
        _ => true,
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let status = command
        .status()
        .map_err(|e| format!("could not run {command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed with {status}"))
    }
}
