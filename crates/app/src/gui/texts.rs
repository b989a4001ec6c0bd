//! Every sentence the window shows, in one place, so that translations can be added later.

/// Window title.
pub const TITLE: &str = "Graver";
/// Step headings.
pub const STEP_IMAGE: &str = "1  Image";
pub const STEP_DRIVE: &str = "2  Drive";
pub const STEP_WRITE: &str = "3  Write";
/// Image step.
pub const CHOOSE_IMAGE: &str = "Choose image…";
pub const CHANGE_IMAGE: &str = "Change image…";
pub const DROP_HINT: &str = "or drop an image file on this window (iso, img, raw, dd, wic, gz, bz2, xz, zst, zip)";
pub const OPENING: &str = "Reading the image…";
pub const HASHING: &str = "Computing SHA-256…";
pub const COPY: &str = "Copy";
pub const PASTE_HASH: &str = "Published SHA-256:";
pub const PASTE_HASH_HINT: &str = "paste the checksum from the download page";
pub const HASH_MATCHES: &str = "Matches";
pub const HASH_DIFFERS: &str = "Does not match: the download may be damaged, or not the one published";
/// Drive step.
pub const SHOW_ALL: &str = "Show all drives";
pub const NO_DRIVES: &str = "No USB stick or SD card found. Plug one in; it appears here by itself.";
pub const NO_DRIVES_ALL: &str = "No drives found.";
pub const NEED_UNSAFE: &str = "system drive: turn on unsafe mode in Settings to choose it";
/// Write step.
pub const WRITE: &str = "Write";
pub const WRITE_NEEDS_IMAGE: &str = "Choose an image first.";
pub const WRITE_NEEDS_DRIVE: &str = "Choose a drive.";
pub const ERASE_AND_WRITE: &str = "Erase and write";
pub const CANCEL: &str = "Cancel";
pub const CONFIRM_TITLE: &str = "Erase and write?";
pub const TYPE_NAME: &str = "Type the drive's name to confirm:";
pub const CANCEL_WRITE: &str = "Cancel writing";
/// Shown under the progress line while a drive does not answer.
pub const STALLED: &str = "A drive has not answered for 30 seconds or more: it, its port or its hub may have stopped responding. Wait, or cancel and plug it in again.";
pub const CANCEL_QUESTION: &str =
    "Stop now? The drive will be left without a partition table and will not boot until written again.";
pub const YES_CANCEL: &str = "Yes, stop";
pub const KEEP_WRITING: &str = "Keep writing";
pub const STARTING: &str = "Asking for permission to write to the drive…";
/// Result.
pub const FLASH_ANOTHER: &str = "Flash another drive";
pub const NEW_IMAGE: &str = "Choose another image";
pub const TRY_AGAIN: &str = "Back";
pub const ALL_VERIFIED: &str = "Done: written and verified";
pub const ALL_WRITTEN: &str = "Done: written (verification was off)";
pub const SOME_FAILED: &str = "Not every drive was written";
pub const FAILED: &str = "Writing failed";
/// After a drive's result, only when it was powered off or ejected.
pub const SAFE_TO_REMOVE: &str = "safe to remove";
/// Settings.
pub const SETTINGS: &str = "Settings";
pub const VERIFY: &str = "Verify after writing";
pub const EJECT: &str = "Eject when done";
pub const UNSAFE: &str = "Unsafe mode: allow system drives";
pub const PRIVACY: &str = "Graver never connects to the network.";

/// What ejecting `drive` did, and what to do before unplugging it when it was not powered off.
pub fn eject_note(drive: &str, eject: &graver_writer::protocol::Eject) -> String {
    use graver_writer::protocol::Eject;
    match eject {
        Eject::Ejected => format!("{drive} was ejected: {SAFE_TO_REMOVE}"),
        Eject::NotSupported { reason } => {
            format!("Not powered off: {reason}. Wait until its light stops blinking, then unplug it.")
        }
        Eject::Failed { message } => {
            format!("Ejecting failed: {message}. Eject it from your file manager before unplugging it.")
        }
    }
}

/// What to do next after a failure of this kind.
pub fn hint(kind: Option<graver_writer::ErrorKind>) -> &'static str {
    use graver_writer::ErrorKind;
    match kind {
        Some(ErrorKind::BadInput) => {
            "The image file is damaged or incomplete. Download it again and compare its checksum."
        }
        Some(ErrorKind::Refused) => "Nothing was written. Choose another drive, or fix what is described above.",
        Some(ErrorKind::Io) => {
            "The drive was removed or failed while writing. Reconnect it and write again; \
             if it fails again, the drive may be worn out."
        }
        Some(ErrorKind::Mismatch) => {
            "The drive does not hold what was written: it may be failing, or fake with less room than it claims. \
             Try another drive."
        }
        Some(ErrorKind::Cancelled) => {
            "Writing was stopped. The drive was left without a partition table; write it again to use it."
        }
        None => "",
    }
}

/// When the writer could not even start.
pub const LAUNCH_HINT: &str = "Graver needs administrator rights to write to drives; nothing was written.";
/// When the writer vanished mid-job.
pub const LOST_HINT: &str = "The writer stopped unexpectedly: the drive may have been removed. \
    Reconnect it and write again.";
