//! macOS, Windows and the rest: no per-thread file-system identity.

/// Runs `f` as it is: the worker reads images with its own rights (the macOS
/// prompt and UAC start it for the user who asked).
pub(crate) fn as_invoking_user<T>(f: impl FnOnce() -> T) -> T {
    f()
}
