//! The desktop window: pick an image, pick a drive, Write.
//!
//! [`GraverApp`] holds the state and draws it with egui; everything slow —
//! reading the image's header, hashing, listing drives, writing — happens on
//! other threads and arrives over one channel, each message followed by a
//! repaint request, so an idle window uses no CPU. The window talks to the
//! writer only through [`graver_client::Client`], the same path as the CLI.

mod app;
mod settings;
mod texts;
mod view;

#[cfg(test)]
mod tests;

pub use self::app::{GraverApp, Services};

/// The icon embedded in the window, rendered from `assets/graver.svg`.
const ICON_PNG: &[u8] = include_bytes!("../../../../assets/icons/graver-256.png");

/// Opens the window and runs until it is closed.
///
/// # Errors
/// When no window can be opened (no display, no OpenGL).
pub fn run() -> Result<(), eframe::Error> {
    let mut viewport = egui::ViewportBuilder::default()
        .with_title(texts::TITLE)
        .with_app_id("org.graver.Graver")
        .with_inner_size([860.0, 640.0])
        .with_min_inner_size([640.0, 480.0])
        .with_drag_and_drop(true);
    if let Ok(icon) = eframe::icon_data::from_png_bytes(ICON_PNG) {
        viewport = viewport.with_icon(icon);
    }
    let options = eframe::NativeOptions {
        viewport,
        ..Default::default()
    };
    eframe::run_native(
        texts::TITLE,
        options,
        Box::new(|cc| Ok(Box::new(GraverApp::new(&cc.egui_ctx, Services::real())))),
    )
}

impl eframe::App for GraverApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        GraverApp::ui(self, ui);
    }
}
