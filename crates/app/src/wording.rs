//! The words both front ends use for what the writer reports as data: why it refused
//! a target, and how a worker was lost mid-job. The window and the CLI say these the
//! same way, so they are worded once, here; each front end puts the target's name
//! in front.

use graver_client::WorkerLost;
use graver_drives::{Finding, Hazard};
use graver_writer::protocol::Refusal;

/// Why the writer refused a target, in sentences that follow the target's name.
pub fn refusal(refusal: &Refusal) -> String {
    match refusal {
        Refusal::Unplugged => "no such drive; was it unplugged?".into(),
        Refusal::Unidentified => "the job does not say which drive the user chose; nothing was done".into(),
        Refusal::NotWholeDrive {
            partition_of: Some(drive),
        } => format!(
            "not a whole drive but a partition of {0}; choose {0} itself to write the drive",
            drive.display()
        ),
        Refusal::NotWholeDrive { partition_of: None } => {
            "not a whole drive in the list of drives (a partition, or a device Graver does not write to)".into()
        }
        Refusal::FileTarget => "not a whole drive: the privileged writer writes only to drives it finds itself".into(),
        Refusal::DriveChanged => {
            "the drive changed since you chose it (unplugged, swapped or re-attached); nothing was written, \
             choose it again"
                .into()
        }
        Refusal::Forbidden { findings } => graver_drives::sentences(findings),
        Refusal::SystemDrive { finding } => format!(
            "{} Only a writer started in unsafe mode (`--unsafe`, with its own administrator prompt) touches it, \
             and only with the drive's name typed.",
            finding.message
        ),
        Refusal::NameMismatch { expected } => format!("the name typed does not match {expected}; nothing was done"),
        Refusal::Unconfirmed { findings } => findings.iter().map(unconfirmed).collect::<Vec<_>>().join(" "),
        Refusal::Missing => "no such device or file".into(),
        Refusal::FileExists => {
            "the file already exists; Graver never truncates a file silently (remove it or pass --overwrite)".into()
        }
        Refusal::ReadOnly => "the drive is read-only (check its write-protect switch)".into(),
        Refusal::Busy { detail: None } => {
            "the drive is busy: a partition is still mounted or another program has it open; unmount it and try again"
                .into()
        }
        Refusal::Busy { detail: Some(detail) } => format!("the drive is busy: {detail}"),
        Refusal::PermissionDenied => "permission denied; writing to a drive needs administrator rights".into(),
        Refusal::PromptCancelled => "cancelled at the administrator prompt; nothing was written".into(),
        Refusal::NotWritable { kind } => format!("not a block device or regular file ({kind})"),
        Refusal::Unsupported => "writing to raw devices is not supported on this OS yet".into(),
        Refusal::CannotOpen { message } => format!("the drive cannot be opened: {message}"),
    }
}

/// One consent the job lacked: a system drive's name typed, or a warning confirmed.
fn unconfirmed(finding: &Finding) -> String {
    if finding.hazard == Hazard::System {
        format!(
            "{} Its name was not typed to confirm; nothing was done.",
            finding.message
        )
    } else {
        format!(
            "{} The user did not confirm this warning for this drive; nothing was done.",
            finding.message
        )
    }
}

/// What became of a worker that stopped mid-job.
pub fn worker_lost(lost: &WorkerLost) -> String {
    match lost {
        WorkerLost::Ended(how) => how.to_string(),
        WorkerLost::SecondHello => "the writer said hello twice".into(),
        WorkerLost::Unstoppable => "the writer did not stop when asked and was ended".into(),
        WorkerLost::ClientStopped => "the writer client stopped".into(),
    }
}

#[cfg(test)]
mod tests {
    use graver_client::{LaunchError, WorkerExit};

    use super::*;

    fn finding(hazard: Hazard, message: &str) -> Finding {
        Finding {
            hazard,
            message: message.into(),
        }
    }

    /// The words the user has always seen for each refusal (the client's tests check the
    /// worker sends these refusals; these check what they read as).
    #[test]
    fn every_refusal_says_what_the_user_must_know() {
        let system = finding(
            Hazard::System,
            "sda is a system drive (it holds /); writing to it would destroy the running system.",
        );
        let removable = finding(
            Hazard::NonRemovable,
            "sdb is not a removable drive; make sure it is the one you mean to erase.",
        );
        let cases: Vec<(Refusal, &[&str])> = vec![
            (Refusal::Unplugged, &["no such drive; was it unplugged?"]),
            (Refusal::Unidentified, &["does not say which drive"]),
            (
                Refusal::NotWholeDrive {
                    partition_of: Some("/dev/sdb".into()),
                },
                &["not a whole drive", "partition of /dev/sdb", "choose /dev/sdb"],
            ),
            (
                Refusal::NotWholeDrive { partition_of: None },
                &["not a whole drive in the list of drives"],
            ),
            (
                Refusal::FileTarget,
                &["not a whole drive", "writes only to drives it finds itself"],
            ),
            (
                Refusal::DriveChanged,
                &["the drive changed since you chose it", "nothing was written"],
            ),
            (
                Refusal::Forbidden {
                    findings: vec![
                        finding(
                            Hazard::TooSmall,
                            "sdb is too small: it holds 16 MB but the image needs 4.3 GB.",
                        ),
                        finding(Hazard::ReadOnly, "sdb is read-only; check its write-protect switch."),
                    ],
                },
                &["sdb is too small", "needs 4.3 GB. sdb is read-only"],
            ),
            (
                Refusal::SystemDrive {
                    finding: system.clone(),
                },
                &["sda is a system drive", "unsafe mode", "name typed"],
            ),
            (
                Refusal::NameMismatch { expected: "sda".into() },
                &["the name typed does not match sda"],
            ),
            (
                Refusal::Unconfirmed {
                    findings: vec![system, removable],
                },
                &[
                    "system drive (it holds /); writing to it would destroy the running system. Its name was not typed",
                    "not a removable drive; make sure it is the one you mean to erase. The user did not confirm",
                ],
            ),
            (Refusal::Missing, &["no such device or file"]),
            (Refusal::FileExists, &["already exists", "--overwrite"]),
            (Refusal::ReadOnly, &["read-only", "write-protect switch"]),
            (Refusal::Busy { detail: None }, &["busy", "unmount it"]),
            (
                Refusal::Busy {
                    detail: Some("/media/stick is in use by bash (pid 412)".into()),
                },
                &["busy: /media/stick is in use by bash (pid 412)"],
            ),
            (Refusal::PermissionDenied, &["administrator rights"]),
            (Refusal::PromptCancelled, &["cancelled at the administrator prompt"]),
            (
                Refusal::NotWritable {
                    kind: "a directory".into(),
                },
                &["not a block device or regular file (a directory)"],
            ),
            (Refusal::Unsupported, &["not supported on this OS"]),
            (
                Refusal::CannotOpen {
                    message: "Input/output error (os error 5)".into(),
                },
                &["cannot be opened: Input/output error (os error 5)"],
            ),
        ];
        for (refused, needles) in cases {
            let said = refusal(&refused);
            for needle in needles {
                assert!(said.contains(needle), "{refused:?} reads {said:?}, without {needle:?}");
            }
        }
    }

    #[test]
    fn a_lost_worker_says_how_it_ended() {
        let killed = WorkerLost::Ended(Box::new(LaunchError::Ended(WorkerExit::Killed {
            signal: 9,
            said: String::new(),
        })));
        assert_eq!(worker_lost(&killed), "the writer process was killed (signal 9)");
        assert!(worker_lost(&WorkerLost::Unstoppable).contains("did not stop when asked"));
        assert!(worker_lost(&WorkerLost::SecondHello).contains("hello twice"));
        assert!(worker_lost(&WorkerLost::ClientStopped).contains("client stopped"));
    }
}
