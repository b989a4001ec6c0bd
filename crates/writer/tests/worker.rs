//! Integration tests of the privileged worker, `graver-writer`: the protocol it
//! enforces on its input, against the bare binary. What it writes (or refuses to
//! write) to real loop devices is tested through graver-client's `Client`, in
//! `crates/client/tests/worker.rs`.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command as Process, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use graver_testkit::{Rng, image_file};
use graver_writer::protocol::{JobTarget, PROTOCOL_VERSION, Request, Response, WriteJob, read_frame, write_frame};

/// The longest any single wait may take before the test calls it a hang.
const HANG_GUARD: Duration = Duration::from_secs(30);

fn worker() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_graver-writer"))
}

fn write_job(image: &Path, targets: &[&Path]) -> WriteJob {
    WriteJob {
        image: image.to_path_buf(),
        targets: targets.iter().map(|t| JobTarget::file(*t)).collect(),
        verify: true,
        eject: false,
        overwrite: false,
        sha256: true,
    }
}

// ---------------------------------------------------------------------------
// 1. The protocol, against the bare binary
// ---------------------------------------------------------------------------

/// The worker binary with piped stdin/stdout and a reader thread for its frames.
struct Raw {
    child: Child,
    stdin: Option<ChildStdin>,
    frames: Receiver<std::io::Result<Option<Response>>>,
}

impl Raw {
    fn spawn(token: &str) -> Self {
        let mut child = Process::new(worker())
            .args(["--serve", "--token", token])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().unwrap();
        let (tx, frames) = crossbeam_channel::unbounded();
        std::thread::spawn(move || {
            loop {
                let frame = read_frame::<Response>(&mut stdout);
                let end = !matches!(frame, Ok(Some(_)));
                if tx.send(frame).is_err() || end {
                    return;
                }
            }
        });
        Self { child, stdin, frames }
    }

    /// Sends raw bytes; a worker that already exited may have closed the pipe.
    fn send_bytes(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().unwrap();
        let _ = stdin.write_all(bytes).and_then(|()| stdin.flush());
    }

    fn send(&mut self, request: &Request) {
        let mut bytes = Vec::new();
        write_frame(&mut bytes, request).unwrap();
        self.send_bytes(&bytes);
    }

    /// The next frame, or `None` when the stream ended.
    fn next(&self) -> Option<Response> {
        match self.frames.recv_timeout(HANG_GUARD) {
            Ok(Ok(frame)) => frame,
            Ok(Err(e)) => panic!("the worker sent a bad frame: {e}"),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => None,
            Err(e) => panic!("the worker said nothing for {HANG_GUARD:?}: {e}"),
        }
    }

    /// Waits for the worker to exit with its input still open.
    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the worker did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stderr(&mut self) -> String {
        let mut text = String::new();
        if let Some(stderr) = self.child.stderr.as_mut() {
            let _ = stderr.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Expects a Fatal whose message contains `needle`, then a non-zero exit while
/// the worker's input is still open.
#[track_caller]
fn expect_fatal(raw: &mut Raw, needle: &str, case: &str) {
    match raw.next() {
        Some(Response::Fatal { message }) => assert!(
            message.to_lowercase().contains(needle),
            "{case}: the fatal message {message:?} does not mention {needle:?}"
        ),
        other => panic!("{case}: expected a fatal response, got {other:?}"),
    }
    assert_eq!(
        raw.next(),
        None,
        "{case}: the worker said more after its fatal response"
    );
    let status = raw.wait();
    assert!(!status.success(), "{case}: the worker exited with {status}");
    let stderr = raw.stderr();
    assert!(stderr.contains("protocol error"), "{case}: stderr was {stderr:?}");
}

#[test]
fn protocol_violations_end_the_worker_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let image = image_file(dir.path(), "image.img", 1, 4096, 4096);
    let target = dir.path().join("target.img");
    let token = "00112233445566778899aabbccddeeff";
    let job = Request::Write(WriteJob {
        overwrite: true,
        ..write_job(&image, &[&target])
    });
    let hello = |version, token: &str| Request::Hello {
        version,
        token: token.into(),
    };

    // Control: the right token and version get Ready, and a closed input a clean exit.
    let mut raw = Raw::spawn(token);
    raw.send(&hello(PROTOCOL_VERSION, token));
    assert_eq!(
        raw.next(),
        Some(Response::Ready {
            version: PROTOCOL_VERSION
        })
    );
    raw.stdin = None;
    assert_eq!(raw.next(), None);
    assert!(raw.wait().success());

    // (a) Another token; a write job follows and must never run.
    let mut raw = Raw::spawn(token);
    raw.send(&hello(PROTOCOL_VERSION, "ffeeddccbbaa99887766554433221100"));
    raw.send(&job);
    expect_fatal(&mut raw, "token", "wrong token");

    // (b) Another version, with the right token.
    let mut raw = Raw::spawn(token);
    raw.send(&hello(PROTOCOL_VERSION + 1, token));
    raw.send(&job);
    expect_fatal(&mut raw, "version", "wrong version");

    // (c) Garbage: an impossible length, then a frame that is not JSON.
    let mut raw = Raw::spawn(token);
    raw.send_bytes(&[0xff; 4]);
    expect_fatal(&mut raw, "", "oversized frame");
    let mut raw = Raw::spawn(token);
    let mut garbage = 37u32.to_le_bytes().to_vec();
    garbage.extend_from_slice(&Rng::new(7).bytes(37));
    raw.send_bytes(&garbage);
    expect_fatal(&mut raw, "parse", "non-JSON frame");
    let mut raw = Raw::spawn(token);
    let unknown = br#"{"type":"format_disk","target":"/dev/sda"}"#;
    let mut frame = u32::try_from(unknown.len()).unwrap().to_le_bytes().to_vec();
    frame.extend_from_slice(unknown);
    raw.send_bytes(&frame);
    expect_fatal(&mut raw, "parse", "unknown message");

    // (d) A job before any hello.
    let mut raw = Raw::spawn(token);
    raw.send(&job);
    expect_fatal(&mut raw, "hello", "job first");

    // (e) A second hello after a good one.
    let mut raw = Raw::spawn(token);
    raw.send(&hello(PROTOCOL_VERSION, token));
    assert!(matches!(raw.next(), Some(Response::Ready { .. })));
    raw.send(&hello(PROTOCOL_VERSION, token));
    expect_fatal(&mut raw, "hello", "second hello");

    // (f) A job whose image did not come with it: a standard input that is a pipe
    // carries no descriptors, and the worker opens no path in its place.
    let mut raw = Raw::spawn(token);
    raw.send(&hello(PROTOCOL_VERSION, token));
    assert!(matches!(raw.next(), Some(Response::Ready { .. })));
    raw.send(&job);
    expect_fatal(&mut raw, "exactly one open image file", "job without its image");

    assert!(!target.exists(), "a rejected session created {}", target.display());
}

/// pkexec tells the two polkit actions apart by the first argument alone, so the
/// worker serves nobody who starts it with any other: not even with a valid token.
#[test]
fn only_the_two_modes_are_accepted_as_first_argument() {
    let token = "00112233445566778899aabbccddeeff";
    for args in [
        vec!["--token", token],
        vec!["--token", token, "--serve"],
        vec!["--serve-safe", "--token", token],
        vec!["--SERVE", "--token", token],
        vec!["", "--serve", "--token", token],
    ] {
        let output = Process::new(worker())
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}: the worker answered");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--serve or --serve-unsafe"), "{args:?}: {stderr}");
    }
    for mode in ["--serve", "--serve-unsafe"] {
        let output = Process::new(worker())
            .args([mode, "--token", token])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(output.status.success(), "{mode}: a closed input is a clean end");
    }
}
