//! How the CLI shows progress and results: a bar on stderr, or JSON lines on stdout.

use std::io::Write as _;
use std::time::Duration;

use graver_writer::{CancelToken, Progress};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// The drives a snapshot shows as stalled, for the bar's message.
fn stalled_names(progress: &Progress) -> String {
    let names: Vec<&str> = progress
        .devices
        .iter()
        .filter(|d| d.phase == graver_writer::Phase::Stalled)
        .map(|d| d.name.as_str())
        .collect();
    names.join(", ")
}

/// "1:05" or "0:07" for a time left.
fn clock(secs: f64) -> String {
    let secs = secs.max(0.0).round() as u64;
    format!("{}:{:02}", secs / 60, secs % 60)
}

/// Prints one JSON object on its own line on stdout.
pub fn json_line<T: Serialize>(value: &T) {
    let mut out = std::io::stdout().lock();
    if serde_json::to_writer(&mut out, value).is_ok() {
        let _ = writeln!(out);
        let _ = out.flush();
    }
}

#[derive(Serialize)]
struct ProgressLine<'a> {
    r#type: &'static str,
    #[serde(flatten)]
    progress: &'a Progress,
}

/// Where progress goes.
pub enum Reporter {
    /// An indicatif bar on stderr.
    Bar(ProgressBar),
    /// JSON lines on stdout.
    Json,
}

const BAR_SCALE: u64 = 10_000;

impl Reporter {
    /// A bar, or JSON lines when `json` is set.
    pub fn new(json: bool) -> Self {
        if json {
            return Self::Json;
        }
        let bar = ProgressBar::with_draw_target(Some(BAR_SCALE), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{prefix:>10} [{bar:32}] {percent:>3}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(250));
        Self::Bar(bar)
    }

    /// Shows one progress snapshot.
    pub fn show(&self, progress: &Progress) {
        match self {
            Self::Json => json_line(&ProgressLine {
                r#type: "progress",
                progress,
            }),
            Self::Bar(bar) => {
                bar.set_prefix(progress.phase.label());
                bar.set_position((progress.fraction * BAR_SCALE as f64) as u64);
                let total = progress.total.describe();
                let mut message = format!(
                    "{} of {}  {}/s",
                    graver_image::human::binary(progress.bytes),
                    total,
                    graver_image::human::binary(progress.rate as u64)
                );
                if let Some(eta) = progress.eta_secs {
                    message.push_str(&format!("  {} left", clock(eta)));
                }
                if progress.phase == graver_writer::Phase::Stalled {
                    message.push_str(&format!(
                        "  {}: no answer for {} s or more; the drive or its port may have stopped responding (Ctrl-C to cancel)",
                        stalled_names(progress),
                        graver_writer::STALL_AFTER.as_secs()
                    ));
                }
                bar.set_message(message);
            }
        }
    }

    /// Removes the bar before the result is printed.
    pub fn finish(&self) {
        if let Self::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

static INTERRUPT: std::sync::OnceLock<CancelToken> = std::sync::OnceLock::new();

/// Makes the first Ctrl-C cancel `token` cleanly; a second one ends the process at once.
pub fn cancel_on_interrupt(token: &CancelToken) {
    let _ = INTERRUPT.set(token.clone());
    crate::os::call_on_interrupt(|| {
        if let Some(token) = INTERRUPT.get() {
            token.cancel();
        }
    });
}
