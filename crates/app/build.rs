//! Records the commit the binary was built from, for `graver --version`, and on
//! Windows embeds the icon, version information and manifest into `graver.exe`.

#[path = "../../packaging/windows/resources.rs"]
mod resources;

fn main() {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=10", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown commit".into());
    println!("cargo:rustc-env=GRAVER_COMMIT={commit}");
    println!("cargo:rerun-if-changed=../../.git/HEAD");
    println!("cargo:rerun-if-changed=../../.git/refs/heads");

    let exe = resources::Executable {
        name: "graver",
        description: "Graver — disk image writer",
        manifest: "packaging/windows/graver.exe.manifest",
        execution_level: None,
    };
    if let Err(message) = resources::embed(&exe) {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}
