//! macOS: the `osascript` source, the socket's place and what osascript's
//! failures mean, as plain functions compiled in every test build, so the quoting
//! rules are tested on every OS.

use std::path::{Path, PathBuf};

use crate::LaunchError;

/// The longest socket path macOS accepts: `sun_path` holds 104 bytes, NUL included.
pub(crate) const MAX_SOCKET_PATH: usize = 103;

/// `s` as one word for `/bin/sh`: in single quotes, where only `'` itself needs care.
pub(crate) fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `s` as an AppleScript string literal.
pub(crate) fn applescript_string(s: &str) -> String {
    let mut quoted = String::with_capacity(s.len() + 2);
    quoted.push('"');
    for c in s.chars() {
        match c {
            '\\' => quoted.push_str(r"\\"),
            '"' => quoted.push_str("\\\""),
            '\n' => quoted.push_str(r"\n"),
            '\r' => quoted.push_str(r"\r"),
            '\t' => quoted.push_str(r"\t"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// The shell command run as root: the worker in the background, its output
/// discarded, so `do shell script` returns as soon as it has started.
pub(crate) fn worker_shell_command(worker: &str, socket: &str, token: &str, unsafe_mode: bool) -> String {
    format!(
        "{} {} --connect-unix {} --token {} </dev/null >/dev/null 2>&1 &",
        shell_quote(worker),
        crate::launch::worker_mode(unsafe_mode),
        shell_quote(socket),
        shell_quote(token)
    )
}

/// The AppleScript for `osascript -e`: the system's administrator prompt, then the worker.
pub(crate) fn osascript_source(worker: &str, socket: &str, token: &str, unsafe_mode: bool) -> String {
    format!(
        "do shell script {} with prompt {} with administrator privileges",
        applescript_string(&worker_shell_command(worker, socket, token, unsafe_mode)),
        applescript_string("Graver needs administrator rights to write to the drive.")
    )
}

/// The private directory that holds the socket: in `temp` (a per-user
/// directory on macOS), or in `/tmp` when that would make the socket path too
/// long. The token's first 16 hex digits keep two launches apart.
pub(crate) fn socket_dir(temp: &Path, token: &str) -> PathBuf {
    let name = format!("graver-{}", token.get(..16).unwrap_or(token));
    let preferred = temp.join(&name);
    if socket_path(&preferred).as_os_str().len() <= MAX_SOCKET_PATH {
        preferred
    } else {
        Path::new("/tmp").join(name)
    }
}

/// The socket inside `dir`.
pub(crate) fn socket_path(dir: &Path) -> PathBuf {
    dir.join("w.sock")
}

/// What `osascript`'s failure means to the user.
pub(crate) fn explain_osascript_failure(code: Option<i32>, stderr: &str) -> LaunchError {
    let said = stderr.trim();
    if said.contains("-128") || said.contains("User canceled") || said.contains("User cancelled") {
        return LaunchError::Cancelled;
    }
    if said.contains("-60005") || said.contains("-60007") {
        return LaunchError::PasswordRejected;
    }
    match (code, said.is_empty()) {
        (Some(code), true) => LaunchError::OsascriptExit(code),
        (None, true) => LaunchError::OsascriptInterrupted,
        (_, false) => LaunchError::OsascriptFailed(said.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Reads an AppleScript string literal back.
    fn unquote_applescript(literal: &str) -> String {
        let inner = literal
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .expect("a quoted literal");
        let mut text = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next().expect("an escape is complete") {
                    'n' => text.push('\n'),
                    'r' => text.push('\r'),
                    't' => text.push('\t'),
                    other => text.push(other),
                }
            } else {
                assert_ne!(c, '"', "an unescaped quote ends the literal early: {literal}");
                text.push(c);
            }
        }
        text
    }

    const AWKWARD: [&str; 9] = [
        "/Applications/Graver.app/Contents/MacOS/graver-writer",
        "/Volumes/My Disk/Graver.app/graver-writer",
        "/Users/o'brien/it's \"here\"/graver-writer",
        r"/tmp/back\slash\\/and\",
        "/tmp/$(touch pwned)/`id`/$HOME/*",
        "/tmp/new\nline\ttab",
        "",
        "'",
        "\\'\"",
    ];

    #[test]
    fn applescript_strings_read_back_exactly() {
        for text in AWKWARD {
            assert_eq!(unquote_applescript(&applescript_string(text)), text);
        }
    }

    #[cfg(unix)]
    #[test]
    fn shell_quoting_survives_the_shell() {
        for text in AWKWARD {
            let output = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(format!("printf '%s' {}", shell_quote(text)))
                .output()
                .expect("sh runs");
            assert_eq!(String::from_utf8_lossy(&output.stdout), text);
        }
    }

    #[test]
    fn the_osascript_runs_the_worker_in_the_background_as_administrator() {
        let worker = "/Volumes/My \"Disk\"/Gr'aver.app/Contents/MacOS/graver-writer";
        let socket = r"/private/var/folders/x\y/T/graver-0011223344556677/w.sock";
        let source = osascript_source(worker, socket, "00112233445566778899aabbccddeeff", false);
        let literal = source
            .strip_prefix("do shell script ")
            .and_then(|s| s.split(" with prompt ").next())
            .expect("a do shell script command");
        assert_eq!(
            unquote_applescript(literal),
            format!(
                "{} --serve --connect-unix {} --token '00112233445566778899aabbccddeeff' </dev/null >/dev/null 2>&1 &",
                shell_quote(worker),
                shell_quote(socket)
            )
        );
        assert!(source.ends_with(" with administrator privileges"), "{source}");
    }

    #[cfg(unix)]
    #[test]
    fn the_background_command_passes_awkward_paths_as_single_arguments() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let worker = dir.path().join("a 'worker' \"with\" \\ odd name");
        std::fs::write(
            &worker,
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s|' \"$a\"; done > \"$(dirname \"$0\")/args\"\n",
        )
        .expect("write the fake worker");
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&worker)
            .status()
            .expect("chmod");
        let worker = worker.to_str().expect("utf-8");
        let command = worker_shell_command(worker, "/tmp/so ck'et", "abc", true);
        std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("{command} wait"))
            .status()
            .expect("sh runs");
        let args = std::fs::read_to_string(dir.path().join("args")).expect("the fake worker ran");
        assert_eq!(args, "--serve-unsafe|--connect-unix|/tmp/so ck'et|--token|abc|");
    }

    #[test]
    fn the_socket_stays_short_enough_for_macos() {
        let token = "00112233445566778899aabbccddeeff";
        let temp = Path::new("/var/folders/zz/zyxvpxvq6csfxvn_n0000000000000/T/");
        let dir = socket_dir(temp, token);
        assert_eq!(dir, temp.join("graver-0011223344556677"));
        assert_eq!(socket_path(&dir), dir.join("w.sock"));
        let long = Path::new("/Users").join("x".repeat(100));
        assert_eq!(socket_dir(&long, token), Path::new("/tmp/graver-0011223344556677"));
    }

    #[test]
    fn osascript_failures_are_explained() {
        let explain = |code, stderr| explain_osascript_failure(code, stderr).to_string();
        let cancelled = explain(Some(1), "0:223: execution error: User canceled. (-128)\n");
        assert_eq!(cancelled, "the administrator prompt was cancelled; nothing was written");
        let denied = explain(
            Some(1),
            "execution error: The administrator user name or password was incorrect. (-60005)",
        );
        assert!(denied.contains("password was not accepted"), "{denied}");
        let other = explain(Some(1), "execution error: sh: bad (1)");
        assert_eq!(
            other,
            "the macOS administrator prompt failed: execution error: sh: bad (1); nothing was written"
        );
        assert!(explain(Some(3), "").contains("exit code 3"));
    }
}
