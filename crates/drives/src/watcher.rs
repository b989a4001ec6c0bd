//! Noticing drives that arrive and leave.

use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use crate::Drive;

/// Polls the OS about once per `interval` and sends the drive list whenever it
/// changes (and once at the start). Each poll reads only a cheap fingerprint
/// (device names, sizes, mount table); the full list is rebuilt only when the
/// fingerprint changes. Dropping the watcher stops its thread.
pub struct Watcher {
    drives: Receiver<Vec<Drive>>,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Starts watching.
    ///
    /// # Errors
    /// When the watching thread cannot be started.
    pub fn start(interval: Duration) -> std::io::Result<Self> {
        let (tx, drives) = crossbeam_channel::bounded(4);
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let thread = std::thread::Builder::new()
            .name("graver-drive-watcher".into())
            .spawn(move || watch(interval, &tx, &stopped))?;
        Ok(Self {
            drives,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The channel on which each new list arrives.
    pub fn drives(&self) -> &Receiver<Vec<Drive>> {
        &self.drives
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn watch(interval: Duration, tx: &Sender<Vec<Drive>>, stopped: &Receiver<()>) {
    let mut last = None;
    loop {
        let fingerprint = crate::os::fingerprint();
        if last != Some(fingerprint) {
            // A failed listing is retried at the next tick rather than reported as "no drives".
            if let Ok(drives) = crate::list() {
                match tx.try_send(drives) {
                    Ok(()) => last = Some(fingerprint),
                    // Nobody is listening any more.
                    Err(crossbeam_channel::TrySendError::Disconnected(_)) => return,
                    // The receiver is behind; send the then-current list at the next tick.
                    Err(crossbeam_channel::TrySendError::Full(_)) => {}
                }
            }
        }
        match stopped.recv_timeout(interval) {
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
    }
}
