//! Windows: the pipe's name and protection, the `ShellExecuteExW` parameters,
//! and what failures mean, as plain functions compiled in every test build, so
//! the quoting rules are tested on every OS.

use std::path::Path;

use crate::LaunchError;

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
pub(crate) fn worker_parameters(pipe: &str, token: &str, unsafe_mode: bool) -> String {
    [
        crate::launch::worker_mode(unsafe_mode),
        "--connect-pipe",
        pipe,
        "--token",
        token,
    ]
    .map(quote_arg)
    .join(" ")
}

/// What a failed `ShellExecuteExW` (its `GetLastError` code) means to the user.
pub(crate) fn explain_shell_execute_error(code: u32, worker: &Path) -> LaunchError {
    match code {
        CANCELLED => LaunchError::Cancelled,
        FILE_NOT_FOUND | PATH_NOT_FOUND => LaunchError::WorkerMissing(worker.to_path_buf()),
        BAD_EXE_FORMAT => LaunchError::BadExecutable(worker.to_path_buf()),
        ACCESS_DENIED => LaunchError::AccessDenied(worker.to_path_buf()),
        code => LaunchError::ShellExecute { code },
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

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

    #[test]
    fn the_pipe_is_named_after_the_token() {
        assert_eq!(
            pipe_name("00112233445566778899aabbccddeeff"),
            r"\\.\pipe\graver-writer-0011223344556677"
        );
    }

    #[test]
    fn only_the_user_may_open_the_pipe() {
        assert_eq!(
            pipe_sddl("S-1-5-21-1004336348-1177238915-682003330-512"),
            "D:P(A;;GA;;;S-1-5-21-1004336348-1177238915-682003330-512)"
        );
    }

    #[test]
    fn windows_arguments_are_quoted_only_when_needed() {
        assert_eq!(quote_arg("--token"), "--token");
        assert_eq!(quote_arg(r"\\.\pipe\graver-writer-00"), r"\\.\pipe\graver-writer-00");
        assert_eq!(quote_arg(""), "\"\"");
        assert_eq!(quote_arg("a b"), "\"a b\"");
        assert_eq!(quote_arg(r"C:\dir with space\"), r#""C:\dir with space\\""#);
        assert_eq!(quote_arg(r#"say "hi""#), r#""say \"hi\"""#);
        assert_eq!(quote_arg(r#"a\"b"#), r#""a\\\"b""#);
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
            let line = format!("{} {} x", quote_arg(arg), quote_arg(arg));
            assert_eq!(split_windows_args(&line), [arg, arg, "x"], "{line}");
        }
    }

    #[test]
    fn the_worker_parameters_name_the_pipe_and_the_token() {
        let pipe = pipe_name("00112233445566778899aabbccddeeff");
        let parameters = worker_parameters(&pipe, "00112233445566778899aabbccddeeff", false);
        assert_eq!(
            parameters,
            r"--serve --connect-pipe \\.\pipe\graver-writer-0011223344556677 --token 00112233445566778899aabbccddeeff"
        );
        assert_eq!(
            split_windows_args(&parameters),
            [
                "--serve",
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
        let explain_shell_execute_error = |code| explain_shell_execute_error(code, worker).to_string();
        assert_eq!(
            explain_shell_execute_error(1223),
            "the administrator prompt was cancelled; nothing was written"
        );
        assert!(explain_shell_execute_error(2).contains("is missing; reinstall Graver"));
        assert!(explain_shell_execute_error(5).contains("access denied"));
        let other = explain_shell_execute_error(1155);
        assert!(
            other.contains("error 1155") && other.ends_with("nothing was written"),
            "{other}"
        );
        assert!(
            LaunchError::EarlyExit(1)
                .to_string()
                .starts_with("the writer process ended before connecting (exit code 1)")
        );
    }
}
