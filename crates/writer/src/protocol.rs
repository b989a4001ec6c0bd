//! The wire protocol between a front end and the privileged writer worker.
//!
//! The whole protocol is in this file; `PROTOCOL.md` beside the crate describes it
//! for people. A frame is a 4-byte little-endian length followed by that many bytes
//! of JSON, one message per frame, at most [`MAX_FRAME`] bytes.
//!
//! 1. The front end sends [`Request::Hello`] with [`PROTOCOL_VERSION`] and the
//!    random token it gave the worker when starting it. A frame that does not
//!    parse, a wrong token or another version ends the worker with
//!    [`Response::Fatal`]; nothing is written.
//! 2. The worker answers [`Response::Ready`].
//! 3. The front end sends one job ([`Request::Write`] or [`Request::Verify`]); the
//!    job's frame comes with the image file, opened by the front end with the user's
//!    rights ([`transport`](crate::transport)); the worker streams [`Response::Progress`] and ends the job with
//!    [`Response::Finished`] or [`Response::JobFailed`]. [`Request::Cancel`] may be
//!    sent at any time during a job. Further jobs may follow.
//! 4. The worker exits when its input closes: the front end has gone away.

use std::io::{self, Read, Write};
use std::path::PathBuf;

use graver_drives::{Drive, Finding, Hazard, Identity};
use serde::{Deserialize, Serialize};

use crate::{ErrorKind, Progress};

/// Bumped whenever a message changes shape.
pub const PROTOCOL_VERSION: u32 = 7;

/// No message comes near this; a larger length prefix is garbage.
pub const MAX_FRAME: usize = 1 << 20;

/// One target of a job, as the user chose it: the worker writes (or reads) it only
/// while `path` still names the drive with `drive`'s identity, and only with the
/// consent the policy asks for that drive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobTarget {
    /// The drive's path (or, for an unprivileged in-process worker, a file's).
    pub path: PathBuf,
    /// The identity of the drive the user chose; `None` for a file.
    pub drive: Option<Identity>,
    /// The warnings (large, not removable) the user was shown for this drive and confirmed.
    pub confirmed: Vec<Hazard>,
    /// The drive's name as the user typed it to confirm a system drive.
    pub typed_name: Option<String>,
}

impl JobTarget {
    /// A regular file target (in-process workers only): no drive, nothing to confirm.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            drive: None,
            confirmed: Vec::new(),
            typed_name: None,
        }
    }

    /// The listed `drive`, with the warnings the user confirmed for it.
    pub fn drive(drive: &Drive, confirmed: Vec<Hazard>) -> Self {
        Self {
            path: drive.path.clone(),
            drive: Some(drive.identity.clone()),
            confirmed,
            typed_name: None,
        }
    }
}

/// A job that writes one image to one or more targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteJob {
    /// The image file's name, for messages. The file itself comes beside the frame,
    /// opened by the front end (see [`transport`](crate::transport)): the worker never
    /// opens this path.
    pub image: PathBuf,
    /// Whole drives (or, for an unprivileged in-process worker, files) to write.
    pub targets: Vec<JobTarget>,
    /// Read every target back and compare.
    pub verify: bool,
    /// Eject each target once written and verified.
    pub eject: bool,
    /// Allow truncating an existing regular file (in-process workers only).
    pub overwrite: bool,
    /// Compute the image's SHA-256 while writing.
    pub sha256: bool,
}

/// A job that compares a target with an image without writing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyJob {
    /// The image file's name, for messages; the file comes beside the frame, as for [`WriteJob::image`].
    pub image: PathBuf,
    /// The drive or file to compare.
    pub target: JobTarget,
}

/// Front end → worker. A field the worker does not know is an error, not something
/// to skip: a request it half understood must not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The first frame: proves the sender started this worker.
    Hello {
        /// [`PROTOCOL_VERSION`] of the sender.
        version: u32,
        /// The token given to the worker at launch.
        token: String,
    },
    /// Start a write.
    Write(WriteJob),
    /// Start a comparison.
    Verify(VerifyJob),
    /// Stop the running job and every job queued before this frame; the targets'
    /// first MiB stays unwritten, and a job that had not started ends without
    /// touching any drive.
    Cancel,
}

/// How one target of a job ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Written and read back equal.
    Verified,
    /// Written; verification was off.
    Written,
    /// Not touched: the worker's own checks refused it.
    Refused {
        /// Why; the front ends word it.
        refusal: Refusal,
    },
    /// Failed part-way.
    Failed {
        /// The class of failure.
        kind: ErrorKind,
        /// What happened, in a sentence.
        message: String,
    },
}

impl Outcome {
    /// Whether the target holds the image (verified, or written without verification).
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Verified | Self::Written)
    }

    /// The class of failure for exit codes; `None` on success.
    pub fn error_kind(&self) -> Option<ErrorKind> {
        match self {
            Self::Verified | Self::Written => None,
            Self::Refused {
                refusal: Refusal::PromptCancelled,
            } => Some(ErrorKind::Cancelled),
            Self::Refused { .. } => Some(ErrorKind::Refused),
            Self::Failed { kind, .. } => Some(*kind),
        }
    }
}

/// Why the worker refused a target, as data: the front ends say it in their own words.
/// Nothing was written to (or read from) a refused target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum Refusal {
    /// No drive is at the path any more: it was unplugged.
    Unplugged,
    /// The path is a listed drive, but the job does not say which drive the user chose.
    Unidentified,
    /// The path is no whole drive in the list of drives.
    NotWholeDrive {
        /// The drive it is a partition of, when it is one.
        partition_of: Option<PathBuf>,
    },
    /// A regular file, given to a privileged worker: it writes only drives it finds itself.
    FileTarget,
    /// The path names another drive than the one the user chose (unplugged, swapped,
    /// re-attached since it was listed).
    DriveChanged,
    /// The policy refuses every write to this drive (unknown, holds the image, too
    /// small, read-only), most serious first.
    Forbidden {
        /// The hazards that refuse it, each with the policy's sentence.
        findings: Vec<Finding>,
    },
    /// A system drive, and this worker was not started in unsafe mode.
    SystemDrive {
        /// Why it is one, with the policy's sentence.
        finding: Finding,
    },
    /// The name typed to confirm a system drive is not its name.
    NameMismatch {
        /// The drive's name, which had to be typed.
        expected: String,
    },
    /// The job lacks consent the policy asks for this drive: a system drive's name
    /// typed (a [`Hazard::System`] finding), warnings confirmed (the others).
    Unconfirmed {
        /// What was not confirmed, with the policy's sentences.
        findings: Vec<Finding>,
    },
    /// Nothing is at the path (a file target that does not exist, a device node gone).
    Missing,
    /// A regular file exists and the job did not ask to overwrite it (in-process workers only).
    FileExists,
    /// The drive is read-only (a write-protect switch, a read-only medium).
    ReadOnly,
    /// Something holds the drive: a mounted partition or another program.
    Busy {
        /// What holds it and what to do, when Graver found out.
        detail: Option<String>,
    },
    /// Opening the drive needs rights this worker does not have.
    PermissionDenied,
    /// The system's administrator prompt for opening the drive was dismissed (macOS's
    /// `authopen`, asked by a worker that runs with the user's rights).
    PromptCancelled,
    /// The path is something that cannot take an image (a directory, a character device).
    NotWritable {
        /// What it is instead.
        kind: String,
    },
    /// This OS cannot write raw devices.
    Unsupported,
    /// The drive could not be listed, opened or prepared; what the OS said.
    CannotOpen {
        /// The OS's error, as it gave it.
        message: String,
    },
}

impl From<graver_drives::DriveError> for Refusal {
    fn from(error: graver_drives::DriveError) -> Self {
        use graver_drives::DriveError;
        match error {
            DriveError::NotFound(_) => Self::Missing,
            DriveError::NotWritable { kind, .. } => Self::NotWritable { kind: kind.to_owned() },
            DriveError::FileExists(_) => Self::FileExists,
            DriveError::ReadOnly(_) => Self::ReadOnly,
            DriveError::Busy(_) => Self::Busy { detail: None },
            DriveError::InUse { detail, .. } => Self::Busy { detail: Some(detail) },
            DriveError::Changed(_) => Self::DriveChanged,
            DriveError::PermissionDenied(_) => Self::PermissionDenied,
            DriveError::Cancelled(_) => Self::PromptCancelled,
            DriveError::Unsupported(_) => Self::Unsupported,
            DriveError::Io { source, .. } => Self::CannotOpen {
                message: source.to_string(),
            },
            other => Self::CannotOpen {
                message: other.to_string(),
            },
        }
    }
}

/// What ejecting a written drive did. Only [`Eject::Ejected`] means the drive
/// may be pulled out at once; the front ends say what to do otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Eject {
    /// Powered off or ejected.
    Ejected,
    /// The OS cannot eject this drive.
    NotSupported {
        /// Why, and what was done instead, in a sentence.
        reason: String,
    },
    /// Ejecting was tried and failed.
    Failed {
        /// What happened, in a sentence.
        message: String,
    },
}

impl Eject {
    /// Whether the drive was powered off or ejected, so it is safe to remove now.
    pub fn is_safe_to_remove(&self) -> bool {
        matches!(self, Self::Ejected)
    }
}

/// One target's part of a [`JobResult`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetResult {
    /// The target as the job named it.
    pub target: PathBuf,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// What ejecting did, when ejecting was asked for and the write succeeded.
    pub ejected: Option<Eject>,
    /// Something the user must know about a write that succeeded, such as a drive
    /// that holds the image but is smaller than it claims.
    pub warning: Option<String>,
}

/// The end of a job that ran: one result per target, in the job's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    /// Bytes of image written to (or compared with) each successful target.
    pub image_len: u64,
    /// SHA-256 of the decompressed image, when computed (64 hex digits on the wire).
    #[serde(with = "hex_digest")]
    pub sha256: Option<[u8; 32]>,
    /// Wall time of the job.
    pub elapsed_secs: f64,
    /// Per target.
    pub targets: Vec<TargetResult>,
}

impl JobResult {
    /// The most serious failure class among the targets, if any failed.
    pub fn worst(&self) -> Option<ErrorKind> {
        self.targets
            .iter()
            .filter_map(|t| t.outcome.error_kind())
            .max_by_key(|k| k.rank())
    }
}

/// An optional SHA-256 as 64 hex digits, or `null`.
mod hex_digest {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(digest: &Option<[u8; 32]>, out: S) -> Result<S::Ok, S::Error> {
        match digest {
            Some(digest) => out.serialize_str(&hex::encode(digest)),
            None => out.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(input: D) -> Result<Option<[u8; 32]>, D::Error> {
        Option::<String>::deserialize(input)?
            .map(|text| {
                let mut digest = [0u8; 32];
                hex::decode_to_slice(&text, &mut digest).map_err(serde::de::Error::custom)?;
                Ok(digest)
            })
            .transpose()
    }
}

/// Worker → front end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    /// The handshake succeeded.
    Ready {
        /// The worker's [`PROTOCOL_VERSION`].
        version: u32,
    },
    /// A progress snapshot of the running job.
    Progress(Progress),
    /// The job ran to its end (some targets may have failed).
    Finished(JobResult),
    /// The job could not run at all or was cancelled: a bad image, nothing writable, a cancellation.
    JobFailed {
        /// The class of failure.
        kind: ErrorKind,
        /// What happened, in a sentence.
        message: String,
    },
    /// A protocol violation; the worker exits after sending it.
    Fatal {
        /// What was wrong.
        message: String,
    },
}

/// Writes one message as a frame and flushes.
///
/// # Errors
/// When the peer has gone or the message cannot be encoded.
pub fn write_frame<T: Serialize>(out: &mut impl Write, message: &T) -> io::Result<()> {
    out.write_all(&frame(message)?)?;
    out.flush()
}

/// One message as a whole frame: its length prefix and its JSON.
///
/// # Errors
/// When the message cannot be encoded or is larger than [`MAX_FRAME`].
pub fn frame<T: Serialize>(message: &T) -> io::Result<Vec<u8>> {
    let body = serde_json::to_vec(message).map_err(io::Error::other)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&l| l as usize <= MAX_FRAME)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "message too large for one frame"))?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Reads one frame; `Ok(None)` when the stream ended cleanly between frames.
///
/// # Errors
/// `InvalidData` for an oversized frame or one that does not parse as `T`;
/// `UnexpectedEof` for a stream that ends inside a frame; other I/O errors as they come.
pub fn read_frame<T: for<'de> Deserialize<'de>>(input: &mut impl Read) -> io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match graver_image::read_up_to(input, &mut len)? {
        0 => return Ok(None),
        4 => {}
        _ => return Err(io::ErrorKind::UnexpectedEof.into()),
    }
    let len = frame_len(len)?;
    let mut body = vec![0; len];
    input.read_exact(&mut body)?;
    parse_body(&body).map(Some)
}

/// The length a frame's 4-byte prefix announces.
///
/// # Errors
/// `InvalidData` when it is larger than [`MAX_FRAME`].
pub fn frame_len(prefix: [u8; 4]) -> io::Result<usize> {
    let len = u32::from_le_bytes(prefix) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes is larger than the protocol allows"),
        ));
    }
    Ok(len)
}

/// Parses the body of one frame (the bytes after its length prefix).
///
/// # Errors
/// `InvalidData` when it is not one message of type `T`.
pub fn parse_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> io::Result<T> {
    serde_json::from_slice(body)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("a frame does not parse: {e}")))
}

/// A fresh random token for one worker launch: 32 hex digits from the OS's generator.
///
/// # Errors
/// When the OS has no randomness to give.
pub fn new_token() -> io::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::path::Path;

    use graver_image::ImageSize;

    use super::*;
    use crate::{DeviceProgress, Phase};

    fn write_job() -> WriteJob {
        WriteJob {
            image: "/home/user/nixos.iso.xz".into(),
            targets: vec![
                JobTarget {
                    path: "/dev/sdb".into(),
                    drive: Some(Identity {
                        sequence: Some(41),
                        media: None,
                        serial: Some("4C530001231122115085".into()),
                        size: 16_008_609_792,
                    }),
                    confirmed: Vec::new(),
                    typed_name: None,
                },
                JobTarget {
                    path: "/dev/sda".into(),
                    drive: Some(Identity {
                        sequence: Some(1),
                        media: None,
                        serial: None,
                        size: 500_107_862_016,
                    }),
                    confirmed: vec![Hazard::Large, Hazard::NonRemovable],
                    typed_name: Some("sda".into()),
                },
            ],
            verify: true,
            eject: true,
            overwrite: false,
            sha256: false,
        }
    }

    #[test]
    fn a_dismissed_prompt_ends_the_target_as_cancelled_and_other_refusals_as_refused() {
        let dismissed = Outcome::Refused {
            refusal: Refusal::PromptCancelled,
        };
        assert_eq!(dismissed.error_kind(), Some(ErrorKind::Cancelled));
        let busy = Outcome::Refused {
            refusal: Refusal::Busy { detail: None },
        };
        assert_eq!(busy.error_kind(), Some(ErrorKind::Refused));
        let error = graver_drives::DriveError::Cancelled("/dev/rdisk4".into());
        assert_eq!(Refusal::from(error), Refusal::PromptCancelled);
    }

    /// One refused target for each way the worker refuses.
    fn refusals() -> JobResult {
        let system = Finding {
            hazard: Hazard::System,
            message: "sda is a system drive (it holds /); writing to it would destroy the running system.".into(),
        };
        let removable = Finding {
            hazard: Hazard::NonRemovable,
            message: "sdb is not a removable drive; make sure it is the one you mean to erase.".into(),
        };
        let refusals = [
            Refusal::Unplugged,
            Refusal::Unidentified,
            Refusal::NotWholeDrive {
                partition_of: Some("/dev/sdb".into()),
            },
            Refusal::NotWholeDrive { partition_of: None },
            Refusal::FileTarget,
            Refusal::DriveChanged,
            Refusal::Forbidden {
                findings: vec![Finding {
                    hazard: Hazard::TooSmall,
                    message: "sdb is too small: it holds 16 MB but the image needs 4.3 GB.".into(),
                }],
            },
            Refusal::SystemDrive {
                finding: system.clone(),
            },
            Refusal::NameMismatch { expected: "sda".into() },
            Refusal::Unconfirmed {
                findings: vec![system, removable],
            },
            Refusal::Missing,
            Refusal::FileExists,
            Refusal::ReadOnly,
            Refusal::Busy { detail: None },
            Refusal::Busy {
                detail: Some("/media/stick is in use by bash (pid 412); close it and try again".into()),
            },
            Refusal::PermissionDenied,
            Refusal::PromptCancelled,
            Refusal::NotWritable {
                kind: "a directory".into(),
            },
            Refusal::Unsupported,
            Refusal::CannotOpen {
                message: "Input/output error (os error 5)".into(),
            },
        ];
        JobResult {
            image_len: 0,
            sha256: None,
            elapsed_secs: 0.25,
            targets: refusals
                .into_iter()
                .map(|refusal| TargetResult {
                    target: "/dev/sdb".into(),
                    outcome: Outcome::Refused { refusal },
                    ejected: None,
                    warning: None,
                })
                .collect(),
        }
    }

    type Named<T> = Vec<(&'static str, T)>;

    /// One sample of every message, named after its fixture file.
    fn samples() -> (Named<Request>, Named<Response>) {
        let requests = vec![
            (
                "hello",
                Request::Hello {
                    version: PROTOCOL_VERSION,
                    token: "00112233445566778899aabbccddeeff".into(),
                },
            ),
            ("write", Request::Write(write_job())),
            (
                "verify",
                Request::Verify(VerifyJob {
                    image: "/home/user/nixos.iso".into(),
                    target: JobTarget {
                        path: "/dev/disk4".into(),
                        drive: Some(Identity {
                            sequence: None,
                            media: Some("6F1A2C3D-0000-4000-8000-00000000ABCD".into()),
                            serial: None,
                            size: 31_914_983_424,
                        }),
                        confirmed: Vec::new(),
                        typed_name: None,
                    },
                }),
            ),
            ("cancel", Request::Cancel),
        ];
        let progress = Progress {
            phase: Phase::Writing,
            bytes: 1 << 30,
            total: ImageSize::Estimate(4 << 30),
            fraction: 0.25,
            rate: 3.5e7,
            eta_secs: Some(92.0),
            devices: vec![
                DeviceProgress {
                    name: "/dev/sdb".into(),
                    phase: Phase::Writing,
                    bytes: 1 << 30,
                },
                DeviceProgress {
                    name: "/dev/sdc".into(),
                    phase: Phase::Stalled,
                    bytes: 1 << 29,
                },
            ],
        };
        let responses = vec![
            (
                "ready",
                Response::Ready {
                    version: PROTOCOL_VERSION,
                },
            ),
            ("progress", Response::Progress(progress)),
            (
                "finished",
                Response::Finished(JobResult {
                    image_len: 4 << 30,
                    sha256: Some([0xab; 32]),
                    elapsed_secs: 120.5,
                    targets: vec![
                        TargetResult {
                            target: "/dev/sdb".into(),
                            outcome: Outcome::Verified,
                            ejected: Some(Eject::Ejected),
                            warning: Some("/dev/sdb: the drive is not as large as it claims: it reports 256 MiB but keeps at most about 32 MiB".into()),
                        },
                        TargetResult {
                            target: "/dev/sdc".into(),
                            outcome: Outcome::Failed {
                                kind: ErrorKind::Io,
                                message: "/dev/sdc: writing failed at byte 1048576: Input/output error".into(),
                            },
                            ejected: None,
                            warning: None,
                        },
                        TargetResult {
                            target: "/dev/sde".into(),
                            outcome: Outcome::Written,
                            ejected: Some(Eject::NotSupported {
                                reason: "sde cannot be powered off here (udisks is not available); its partition table was re-read".into(),
                            }),
                            warning: None,
                        },
                        TargetResult {
                            target: "/dev/sdf".into(),
                            outcome: Outcome::Verified,
                            ejected: Some(Eject::Failed {
                                message: "/dev/sdf: the device is busy".into(),
                            }),
                            warning: None,
                        },
                        TargetResult {
                            target: "/dev/sdd".into(),
                            outcome: Outcome::Refused {
                                refusal: Refusal::Forbidden {
                                    findings: vec![Finding {
                                        hazard: Hazard::ReadOnly,
                                        message: "sdd is read-only; check its write-protect switch.".into(),
                                    }],
                                },
                            },
                            ejected: None,
                            warning: None,
                        },
                    ],
                }),
            ),
            ("refusals", Response::Finished(refusals())),
            (
                "job_failed",
                Response::JobFailed {
                    kind: ErrorKind::BadInput,
                    message: "the image is corrupt or truncated: the xz data is corrupt".into(),
                },
            ),
            (
                "fatal",
                Response::Fatal {
                    message: "wrong token: this worker was not started by you".into(),
                },
            ),
        ];
        (requests, responses)
    }

    fn fixture(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/protocol")
            .join(format!("{name}.json"));
        if std::env::var_os("GRAVER_BLESS").is_some() {
            return String::new();
        }
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with GRAVER_BLESS=1 to record)", path.display()))
    }

    fn check<T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug>(name: &str, message: &T) {
        let mut frame = Vec::new();
        write_frame(&mut frame, message).unwrap();
        let body = &frame[4..];
        assert_eq!(u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize, body.len());
        let json = std::str::from_utf8(body).unwrap();
        if std::env::var_os("GRAVER_BLESS").is_some() {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/protocol");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("{name}.json")), format!("{json}\n")).unwrap();
        } else {
            assert_eq!(json, fixture(name).trim_end(), "the wire format of {name} changed");
        }
        let back: T = read_frame(&mut frame.as_slice()).unwrap().unwrap();
        assert_eq!(&back, message);
    }

    #[test]
    fn every_message_round_trips_and_matches_its_recorded_frame() {
        let (requests, responses) = samples();
        for (name, request) in &requests {
            check(name, request);
        }
        for (name, response) in &responses {
            check(name, response);
        }
    }

    #[test]
    fn bad_frames_are_errors_not_messages() {
        let oversized = (u32::try_from(MAX_FRAME).unwrap() + 1).to_le_bytes();
        let error = read_frame::<Request>(&mut oversized.as_slice()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);

        let mut garbage = 5u32.to_le_bytes().to_vec();
        garbage.extend_from_slice(b"\x00\xffxyz");
        assert_eq!(
            read_frame::<Request>(&mut garbage.as_slice()).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );

        let unknown = br#"{"type":"format_disk"}"#;
        let mut frame = u32::try_from(unknown.len()).unwrap().to_le_bytes().to_vec();
        frame.extend_from_slice(unknown);
        assert_eq!(
            read_frame::<Request>(&mut frame.as_slice()).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );

        // A version-3 job, whose client vouched for system drives by name alone: its
        // field is unknown now, and the job is refused rather than read without it.
        let old = br#"{"type":"write","image":"/i","targets":[],"verify":true,"eject":false,"unsafe_names":["sda"],"overwrite":false,"sha256":false}"#;
        let mut frame = u32::try_from(old.len()).unwrap().to_le_bytes().to_vec();
        frame.extend_from_slice(old);
        assert_eq!(
            read_frame::<Request>(&mut frame.as_slice()).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );

        // A field this worker does not know, in a job and in a hello, is refused, not skipped.
        // (Serde cannot refuse one beside the unit `cancel`; a cancel is safe to act on anyway.)
        for unknown in [
            br#"{"type":"verify","image":"/a.iso","target":"/dev/sdb","offset":0}"#.as_slice(),
            br#"{"type":"hello","version":3,"token":"00","admin":true}"#.as_slice(),
        ] {
            let mut frame = u32::try_from(unknown.len()).unwrap().to_le_bytes().to_vec();
            frame.extend_from_slice(unknown);
            let error = read_frame::<Request>(&mut frame.as_slice()).unwrap_err();
            assert_eq!(
                error.kind(),
                io::ErrorKind::InvalidData,
                "{}",
                String::from_utf8_lossy(unknown)
            );
        }
        let mut write = serde_json::to_value(Request::Write(write_job())).unwrap();
        write["force"] = true.into();
        let body = serde_json::to_vec(&write).unwrap();
        assert_eq!(
            parse_body::<Request>(&body).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );

        let cut = [10u8, 0, 0, 0, b'{'];
        assert_eq!(
            read_frame::<Request>(&mut cut.as_slice()).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        assert!(
            read_frame::<Request>(&mut [].as_slice()).unwrap().is_none(),
            "a clean end is not an error"
        );
    }

    #[test]
    fn tokens_are_fresh_hex() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
