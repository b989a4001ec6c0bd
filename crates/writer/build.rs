//! On Windows, embeds the icon, version information and manifest into
//! `graver-writer.exe` (see `packaging/windows/resources.rs`).

#[path = "../../packaging/windows/resources.rs"]
mod resources;

fn main() {
    // Release builds ask for administrator rights in the manifest. Debug builds,
    // which tests start as a plain child process (tests/worker.rs here, and
    // `Launch::Subprocess` in crates/client/tests/worker.rs), run as invoked: Windows refuses to CreateProcess a
    // requireAdministrator program from an unelevated one (ERROR_ELEVATION_REQUIRED).
    // The front end starts the worker with ShellExecuteExW "runas", which elevates
    // either way. (So `cargo test --release` on Windows has to run elevated.)
    let release = std::env::var("PROFILE").as_deref() == Ok("release");
    let exe = resources::Executable {
        name: "graver-writer",
        description: "Graver privileged writer",
        manifest: "packaging/windows/graver-writer.exe.manifest",
        execution_level: (!release).then_some("asInvoker"),
    };
    if let Err(message) = resources::embed(&exe) {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}
