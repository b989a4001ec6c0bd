//! Linux: `setfsuid` gives a thread the file-system identity of the user who ran
//! pkexec. (Whether a device is still there is graver-drives' `has_medium`.)

/// Runs `f` with file access checked as the user who asked for elevation, so a
/// worker started through `pkexec` reads only images that user may read. The
/// devices are already open by then; Linux keeps the file-system identity per
/// thread, and threads started inside `f` inherit it.
pub(crate) fn as_invoking_user<T>(f: impl FnOnce() -> T) -> T {
    let uid = std::env::var("PKEXEC_UID")
        .ok()
        .and_then(|u| u.parse::<libc::uid_t>().ok());
    let Some(uid) = uid.filter(|&u| u != 0) else {
        return f();
    };
    // SAFETY: setfsuid only changes this thread's file-system uid; it has no memory effects.
    let previous = unsafe { libc::setfsuid(uid) };
    let result = f();
    // SAFETY: as above, restoring the previous value.
    unsafe { libc::setfsuid(u32::try_from(previous).unwrap_or(0)) };
    result
}
