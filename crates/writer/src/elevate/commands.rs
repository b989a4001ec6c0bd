//! The scripts, names, command lines and messages of the macOS and Windows
//! launches, as plain functions: each OS's half is compiled on that OS and in
//! every test build, so the quoting rules are tested on every OS.

/// macOS: the `osascript` source, the socket's place and what osascript's failures mean.
#[cfg(any(target_os = "macos", test))]
pub(crate) mod macos {
    use std::path::{Path, PathBuf};

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
    pub(crate) fn worker_shell_command(worker: &str, socket: &str, token: &str) -> String {
        format!(
            "{} --connect-unix {} --token {} </dev/null >/dev/null 2>&1 &",
            shell_quote(worker),
            shell_quote(socket),
            shell_quote(token)
        )
    }

    /// The AppleScript for `osascript -e`: the system's administrator prompt, then the worker.
    pub(crate) fn osascript_source(worker: &str, socket: &str, token: &str) -> String {
        format!(
            "do shell script {} with prompt {} with administrator privileges",
            applescript_string(&worker_shell_command(worker, socket, token)),
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
    pub(crate) fn explain_osascript_failure(code: Option<i32>, stderr: &str) -> String {
        let said = stderr.trim();
        if said.contains("-128") || said.contains("User canceled") || said.contains("User cancelled") {
            return "the administrator prompt was cancelled; nothing was written".into();
        }
        if said.contains("-60005") || said.contains("-60007") {
            return "the administrator name or password was not accepted; nothing was written".into();
        }
        match (code, said.is_empty()) {
            (Some(code), true) => {
                format!("the macOS administrator prompt failed (osascript exit code {code}); nothing was written")
            }
            (None, true) => "the macOS administrator prompt was interrupted; nothing was written".into(),
            (_, false) => format!("the macOS administrator prompt failed: {said}; nothing was written"),
        }
    }
}

/// Windows: the pipe's name and protection, the `ShellExecuteExW` parameters, and what failures mean.
#[cfg(any(windows, test))]
pub(crate) mod windows {
    use std::path::Path;

    /// `ERROR_FILE_NOT_FOUND`.
    const FILE_NOT_FOUND: u32 = 2;
    /// `ERROR_PATH_NOT_FOUND`.
    const PATH_NOT_FOUND: u32 = 3;
    /// `ERROR_ACCESS_DENIED`.
    const ACCESS_DENIED: u32 = 5;
    /// `ERROR_BAD_EXE_FORMAT`.
    const BAD_EXE_FORMAT: u32 = 193;
    /// `ERROR_CANCELLED`: the user said no to the UAC prompt.
    const CANCELLED: u32 = 1223;

    /// The pipe the worker connects to: `\\.\pipe\graver-writer-<first 16 hex digits of the token>`.
    pub(crate) fn pipe_name(token: &str) -> String {
        format!(r"\\.\pipe\graver-writer-{}", token.get(..16).unwrap_or(token))
    }

    /// The pipe's security descriptor: protected (no inherited entries), full
    /// access for the user's SID and nobody else.
    pub(crate) fn pipe_sddl(user_sid: &str) -> String {
        format!("D:P(A;;GA;;;{user_sid})")
    }

    /// `arg` quoted for a command line that `CommandLineToArgvW` and the C
    /// runtime split back into exactly `arg`: bare when it has nothing special,
    /// otherwise in double quotes with the backslashes before a quote (or the
    /// closing quote) doubled.
    pub(crate) fn quote_arg(arg: &str) -> String {
        if !arg.is_empty() && !arg.contains([' ', '\t', '\n', '\u{b}', '"']) {
            return arg.to_owned();
        }
        let mut quoted = String::with_capacity(arg.len() + 2);
        quoted.push('"');
        let mut backslashes = 0;
        for c in arg.chars() {
            match c {
                '\\' => backslashes += 1,
                '"' => {
                    quoted.extend(std::iter::repeat_n('\\', 2 * backslashes + 1));
                    quoted.push('"');
                    backslashes = 0;
                }
                c => {
                    quoted.extend(std::iter::repeat_n('\\', backslashes));
                    quoted.push(c);
                    backslashes = 0;
                }
            }
        }
        quoted.extend(std::iter::repeat_n('\\', 2 * backslashes));
        quoted.push('"');
        quoted
    }

    /// `ShellExecuteExW`'s `lpParameters`: the worker's arguments after its own name.
    pub(crate) fn worker_parameters(pipe: &str, token: &str) -> String {
        ["--connect-pipe", pipe, "--token", token].map(quote_arg).join(" ")
    }

    /// What a failed `ShellExecuteExW` (its `GetLastError` code) means to the user.
    pub(crate) fn explain_shell_execute_error(code: u32, worker: &Path) -> String {
        match code {
            CANCELLED => "the administrator prompt was cancelled; nothing was written".into(),
            FILE_NOT_FOUND | PATH_NOT_FOUND => {
                format!("the writer program {} is missing; reinstall Graver", worker.display())
            }
            BAD_EXE_FORMAT => format!(
                "the writer program {} is damaged or not for this Windows; reinstall Graver",
                worker.display()
            ),
            ACCESS_DENIED => format!(
                "Windows refused to start the writer program {} as administrator (access denied); \
                 ask an administrator, or check that security software is not blocking it",
                worker.display()
            ),
            code => format!(
                "Windows could not start the writer program as administrator: {} (error {code}); \
                 nothing was written",
                std::io::Error::from_raw_os_error(i32::from_ne_bytes(code.to_ne_bytes()))
            ),
        }
    }

    /// The writer process ended before it connected to the pipe.
    pub(crate) fn explain_early_exit(exit_code: u32) -> String {
        format!(
            "the writer process ended before connecting (exit code {exit_code}); nothing was written. \
             If you signed in as a different administrator in the prompt, run Graver from that account instead"
        )
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{macos, windows};

    /// Splits the arguments of a Windows command line the way `CommandLineToArgvW`
    /// does after the program name (the rules since 2008: `""` inside quotes is a quote).
    fn split_windows_args(line: &str) -> Vec<String> {
        let mut args = Vec::new();
        let mut chars = line.chars().peekable();
        loop {
            while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
            if chars.peek().is_none() {
                return args;
            }
            let mut arg = String::new();
            let mut quoted = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        let mut count = 1;
                        while chars.next_if_eq(&'\\').is_some() {
                            count += 1;
                        }
                        if chars.peek() == Some(&'"') {
                            arg.extend(std::iter::repeat_n('\\', count / 2));
                            if count % 2 == 1 {
                                arg.push('"');
                                chars.next();
                            }
                        } else {
                            arg.extend(std::iter::repeat_n('\\', count));
                        }
                    }
                    '"' if quoted && chars.peek() == Some(&'"') => {
                        arg.push('"');
                        chars.next();
                    }
                    '"' => quoted = !quoted,
                    ' ' | '\t' if !quoted => break,
                    c => arg.push(c),
                }
            }
            args.push(arg);
        }
    }

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
            assert_eq!(unquote_applescript(&macos::applescript_string(text)), text);
        }
    }

    #[cfg(unix)]
    #[test]
    fn shell_quoting_survives_the_shell() {
        for text in AWKWARD {
            let output = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(format!("printf '%s' {}", macos::shell_quote(text)))
                .output()
                .expect("sh runs");
            assert_eq!(String::from_utf8_lossy(&output.stdout), text);
        }
    }

    #[test]
    fn the_osascript_runs_the_worker_in_the_background_as_administrator() {
        let worker = "/Volumes/My \"Disk\"/Gr'aver.app/Contents/MacOS/graver-writer";
        let socket = r"/private/var/folders/x\y/T/graver-0011223344556677/w.sock";
        let source = macos::osascript_source(worker, socket, "00112233445566778899aabbccddeeff");
        let literal = source
            .strip_prefix("do shell script ")
            .and_then(|s| s.split(" with prompt ").next())
            .expect("a do shell script command");
        assert_eq!(
            unquote_applescript(literal),
            format!(
                "{} --connect-unix {} --token '00112233445566778899aabbccddeeff' </dev/null >/dev/null 2>&1 &",
                macos::shell_quote(worker),
                macos::shell_quote(socket)
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
        let command = macos::worker_shell_command(worker, "/tmp/so ck'et", "abc");
        std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("{command} wait"))
            .status()
            .expect("sh runs");
        let args = std::fs::read_to_string(dir.path().join("args")).expect("the fake worker ran");
        assert_eq!(args, "--connect-unix|/tmp/so ck'et|--token|abc|");
    }

    #[test]
    fn the_socket_stays_short_enough_for_macos() {
        let token = "00112233445566778899aabbccddeeff";
        let temp = Path::new("/var/folders/zz/zyxvpxvq6csfxvn_n0000000000000/T/");
        let dir = macos::socket_dir(temp, token);
        assert_eq!(dir, temp.join("graver-0011223344556677"));
        assert_eq!(macos::socket_path(&dir), dir.join("w.sock"));
        let long = Path::new("/Users").join("x".repeat(100));
        assert_eq!(
            macos::socket_dir(&long, token),
            Path::new("/tmp/graver-0011223344556677")
        );
    }

    #[test]
    fn osascript_failures_are_explained() {
        let cancelled = macos::explain_osascript_failure(Some(1), "0:223: execution error: User canceled. (-128)\n");
        assert_eq!(cancelled, "the administrator prompt was cancelled; nothing was written");
        let denied = macos::explain_osascript_failure(
            Some(1),
            "execution error: The administrator user name or password was incorrect. (-60005)",
        );
        assert!(denied.contains("password was not accepted"), "{denied}");
        let other = macos::explain_osascript_failure(Some(1), "execution error: sh: bad (1)");
        assert_eq!(
            other,
            "the macOS administrator prompt failed: execution error: sh: bad (1); nothing was written"
        );
        assert!(macos::explain_osascript_failure(Some(3), "").contains("exit code 3"));
    }

    #[test]
    fn the_pipe_is_named_after_the_token() {
        assert_eq!(
            windows::pipe_name("00112233445566778899aabbccddeeff"),
            r"\\.\pipe\graver-writer-0011223344556677"
        );
    }

    #[test]
    fn only_the_user_may_open_the_pipe() {
        assert_eq!(
            windows::pipe_sddl("S-1-5-21-1004336348-1177238915-682003330-512"),
            "D:P(A;;GA;;;S-1-5-21-1004336348-1177238915-682003330-512)"
        );
    }

    #[test]
    fn windows_arguments_are_quoted_only_when_needed() {
        assert_eq!(windows::quote_arg("--token"), "--token");
        assert_eq!(
            windows::quote_arg(r"\\.\pipe\graver-writer-00"),
            r"\\.\pipe\graver-writer-00"
        );
        assert_eq!(windows::quote_arg(""), "\"\"");
        assert_eq!(windows::quote_arg("a b"), "\"a b\"");
        assert_eq!(windows::quote_arg(r"C:\dir with space\"), r#""C:\dir with space\\""#);
        assert_eq!(windows::quote_arg(r#"say "hi""#), r#""say \"hi\"""#);
        assert_eq!(windows::quote_arg(r#"a\"b"#), r#""a\\\"b""#);
    }

    #[test]
    fn windows_arguments_split_back_exactly() {
        let awkward = [
            r"C:\Program Files\Graver\graver-writer.exe",
            r"trailing\",
            r"trailing space\ ",
            r#"quote"inside"#,
            r#"back\"slash"quote\\"#,
            r"\\.\pipe\name",
            "tab\there",
            "",
            "plain",
        ];
        for arg in awkward {
            let line = format!("{} {} x", windows::quote_arg(arg), windows::quote_arg(arg));
            assert_eq!(split_windows_args(&line), [arg, arg, "x"], "{line}");
        }
    }

    #[test]
    fn the_worker_parameters_name_the_pipe_and_the_token() {
        let pipe = windows::pipe_name("00112233445566778899aabbccddeeff");
        let parameters = windows::worker_parameters(&pipe, "00112233445566778899aabbccddeeff");
        assert_eq!(
            parameters,
            r"--connect-pipe \\.\pipe\graver-writer-0011223344556677 --token 00112233445566778899aabbccddeeff"
        );
        assert_eq!(
            split_windows_args(&parameters),
            [
                "--connect-pipe",
                pipe.as_str(),
                "--token",
                "00112233445566778899aabbccddeeff"
            ]
        );
    }

    #[test]
    fn shell_execute_failures_are_explained() {
        let worker = Path::new(r"C:\Program Files\Graver\graver-writer.exe");
        assert_eq!(
            windows::explain_shell_execute_error(1223, worker),
            "the administrator prompt was cancelled; nothing was written"
        );
        assert!(windows::explain_shell_execute_error(2, worker).contains("is missing; reinstall Graver"));
        assert!(windows::explain_shell_execute_error(5, worker).contains("access denied"));
        let other = windows::explain_shell_execute_error(1155, worker);
        assert!(
            other.contains("error 1155") && other.ends_with("nothing was written"),
            "{other}"
        );
        assert!(windows::explain_early_exit(1).starts_with("the writer process ended before connecting (exit code 1)"));
    }
}
