//! Drawing the window: one function per part, each taking the `Ui` it draws in.

use egui::{Color32, Key, KeyboardShortcut, Modifiers, RichText, Ui};
use graver_drives::{Drive, Severity};
use graver_image::ChecksumVerdict;
use graver_writer::protocol::{Eject, Outcome};
use graver_writer::{Phase, Progress};

use super::app::{GraverApp, HashState, ImageState, Screen, judge_drive};
use super::texts as t;

const OK: Color32 = Color32::from_rgb(0x2e, 0x9d, 0x5b);
const BAD: Color32 = Color32::from_rgb(0xd0, 0x43, 0x3c);
const WARN: Color32 = Color32::from_rgb(0xd9, 0x8b, 0x1c);
const HEADING: f32 = 18.0;
const GAP: f32 = 12.0;

impl GraverApp {
    /// Draws one frame: drains events first, so what is drawn is current.
    pub fn ui(&mut self, ui: &mut Ui) {
        self.drain_events();
        let ctx = ui.ctx().clone();
        self.take_dropped_files(&ctx);
        let quit = KeyboardShortcut::new(Modifiers::COMMAND, Key::Q);
        if ctx.input_mut(|i| i.consume_shortcut(&quit)) {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
        egui::Panel::top("header").show(ui, |ui| self.header_ui(ui));
        if self.show_settings {
            egui::Panel::right("settings")
                .resizable(false)
                .show(ui, |ui| self.settings_ui(ui));
        }
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::vertical()
                .auto_shrink([false, false])
                .show(ui, |ui| match &self.screen {
                    Screen::Choose | Screen::Confirm { .. } => self.choose_ui(ui),
                    Screen::Writing { .. } => self.writing_ui(ui),
                    Screen::Finished(_) | Screen::Failed { .. } => self.result_ui(ui),
                });
        });
        if matches!(self.screen, Screen::Confirm { .. }) {
            self.confirm_ui(&ctx);
        }
    }

    fn header_ui(&mut self, ui: &mut Ui) {
        ui.add_space(6.0);
        ui.horizontal(|ui| {
            ui.label(RichText::new(t::TITLE).size(22.0).strong());
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                ui.toggle_value(&mut self.show_settings, t::SETTINGS);
            });
        });
        ui.add_space(6.0);
    }

    fn settings_ui(&mut self, ui: &mut Ui) {
        ui.add_space(GAP);
        ui.heading(t::SETTINGS);
        ui.add_space(GAP);
        let before = self.settings;
        ui.checkbox(&mut self.settings.verify, t::VERIFY);
        ui.checkbox(&mut self.settings.eject, t::EJECT);
        ui.checkbox(&mut self.settings.unsafe_mode, t::UNSAFE);
        if self.settings != before {
            self.save_settings();
        }
        ui.add_space(GAP * 2.0);
        ui.label(RichText::new(t::PRIVACY).weak());
    }

    fn choose_ui(&mut self, ui: &mut Ui) {
        ui.add_space(GAP);
        section(ui, t::STEP_IMAGE, |ui| self.image_ui(ui));
        ui.add_space(GAP);
        section(ui, t::STEP_DRIVE, |ui| self.drives_ui(ui));
        ui.add_space(GAP);
        section(ui, t::STEP_WRITE, |ui| self.write_button_ui(ui));
    }

    fn image_ui(&mut self, ui: &mut Ui) {
        let label = if matches!(self.image, ImageState::None) {
            t::CHOOSE_IMAGE
        } else {
            t::CHANGE_IMAGE
        };
        ui.horizontal_wrapped(|ui| {
            if ui.button(RichText::new(label).size(16.0)).clicked() {
                self.pick_image();
            }
            ui.label(RichText::new(t::DROP_HINT).weak());
        });
        match &self.image {
            ImageState::None => {}
            ImageState::Opening(path) => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(format!("{}  {}", t::OPENING, path.display()));
                });
            }
            ImageState::Failed { path, message } => {
                ui.colored_label(BAD, format!("{}: {message}", path.display()));
            }
            ImageState::Ready(opened) => {
                let image = &opened.image;
                let name = image
                    .path()
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                ui.add_space(4.0);
                ui.label(RichText::new(name).size(16.0).strong());
                let size = image.size();
                let inner = image
                    .inner_name()
                    .map(|n| format!(" · contains {n}"))
                    .unwrap_or_default();
                let written = match size {
                    graver_image::ImageSize::Unknown => size.describe(),
                    _ => format!("{} as written", size.describe()),
                };
                ui.label(format!(
                    "{} on disk · {written} · {}{inner}",
                    graver_image::human::binary(image.file_size()),
                    image.format(),
                ));
                self.hash_ui(ui);
            }
        }
    }

    fn hash_ui(&mut self, ui: &mut Ui) {
        match &self.hash {
            HashState::Idle => {}
            HashState::Running => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(t::HASHING);
                });
            }
            HashState::Failed(message) => {
                ui.colored_label(BAD, message);
            }
            HashState::Done(hashes) => {
                let hex = graver_image::sha256_hex(&hashes.image);
                ui.horizontal(|ui| {
                    ui.label("SHA-256");
                    ui.monospace(&hex);
                    if ui
                        .small_button(t::COPY)
                        .on_hover_text("Copy the SHA-256 to the clipboard")
                        .clicked()
                    {
                        ui.ctx().copy_text(hex.clone());
                    }
                });
            }
        }
        if let Some(warning) = self.opened().and_then(|o| o.warning.as_ref()) {
            ui.colored_label(WARN, warning);
        }
        if let Some(published) = self.opened().and_then(|o| o.published.as_ref()) {
            let file = published
                .source
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            match self.published_verdict() {
                Some(ChecksumVerdict::MatchesFile) => {
                    ui.colored_label(OK, format!("Matches the checksum published in {file}"));
                }
                Some(ChecksumVerdict::MatchesImage) => {
                    ui.colored_label(
                        OK,
                        format!("Matches the checksum published in {file} (decompressed image)"),
                    );
                }
                Some(ChecksumVerdict::Mismatch) => {
                    ui.colored_label(BAD, format!("Does not match the checksum published in {file}"));
                }
                None => {
                    ui.label(format!(
                        "A checksum is published in {file}; it is compared once hashing is done."
                    ));
                }
            }
        }
        ui.horizontal(|ui| {
            ui.label(t::PASTE_HASH);
            let edit = egui::TextEdit::singleline(&mut self.pasted_hash)
                .hint_text(t::PASTE_HASH_HINT)
                .desired_width(420.0);
            ui.add(edit).on_hover_text(t::PASTE_HASH_HINT);
            match self.pasted_verdict() {
                Some(true) => {
                    ui.colored_label(OK, t::HASH_MATCHES);
                }
                Some(false) => {
                    ui.colored_label(BAD, t::HASH_DIFFERS);
                }
                None => {}
            }
        });
    }

    fn drives_ui(&mut self, ui: &mut Ui) {
        ui.checkbox(&mut self.show_all, t::SHOW_ALL);
        ui.add_space(4.0);
        let visible: Vec<Drive> = self.visible_drives().into_iter().cloned().collect();
        if visible.is_empty() {
            ui.label(RichText::new(if self.show_all { t::NO_DRIVES_ALL } else { t::NO_DRIVES }).weak());
        }
        for drive in &visible {
            self.drive_row_ui(ui, drive);
        }
    }

    fn drive_row_ui(&mut self, ui: &mut Ui, drive: &Drive) {
        let findings = self.findings(drive);
        let blocked = self.blocked_reason(drive);
        let mut chosen = self.selected.contains(&drive.identity);
        let label = format!(
            "{} — {} · {} · {}",
            drive.display_name(),
            graver_image::human::decimal(drive.size),
            drive.bus.label(),
            drive.path.display()
        );
        ui.horizontal_wrapped(|ui| {
            let response = ui.add_enabled(blocked.is_none(), egui::Checkbox::new(&mut chosen, label));
            if response.changed() {
                if chosen {
                    self.selected.push(drive.identity.clone());
                } else {
                    self.selected.retain(|i| i != &drive.identity);
                }
            }
            for finding in &findings {
                let color = match finding.hazard.severity() {
                    Severity::Refuse | Severity::Unsafe => BAD,
                    Severity::Confirm => WARN,
                };
                badge(ui, finding.hazard.badge(), color).on_hover_text(&finding.message);
            }
        });
        if blocked.is_some() && chosen {
            self.selected.retain(|i| i != &drive.identity);
        }
        if let Some(reason) = blocked {
            ui.indent(&drive.name, |ui| ui.label(RichText::new(reason).weak()));
        }
    }

    fn write_button_ui(&mut self, ui: &mut Ui) {
        let why_not = if self.opened().is_none() {
            Some(t::WRITE_NEEDS_IMAGE)
        } else if self.chosen_drives().is_empty() {
            Some(t::WRITE_NEEDS_DRIVE)
        } else {
            None
        };
        ui.horizontal(|ui| {
            let button = egui::Button::new(RichText::new(t::WRITE).size(20.0).strong()).min_size([160.0, 44.0].into());
            if ui.add_enabled(self.can_write(), button).clicked() {
                self.ask_to_write();
            }
            if let Some(why) = why_not {
                ui.label(RichText::new(why).weak());
            } else {
                let names: Vec<String> = self
                    .chosen_drives()
                    .iter()
                    .map(|d| d.path.display().to_string())
                    .collect();
                ui.label(format!("to {}", names.join(", ")));
            }
        });
    }

    fn confirm_ui(&mut self, ctx: &egui::Context) {
        let drives: Vec<Drive> = self.chosen_drives().into_iter().cloned().collect();
        let system = self.chosen_system_drives();
        let facts = self.opened().map(|o| o.facts.clone());
        let unsafe_mode = self.settings.unsafe_mode;
        let mut decision = None;
        egui::Modal::new(egui::Id::unique("confirm-write")).show(ctx, |ui| {
            ui.set_max_width(560.0);
            ui.heading(t::CONFIRM_TITLE);
            ui.add_space(GAP);
            for drive in &drives {
                ui.label(
                    RichText::new(format!(
                        "{} — {} ({})",
                        drive.display_name(),
                        graver_image::human::decimal(drive.size),
                        drive.path.display()
                    ))
                    .strong(),
                );
                for finding in self
                    .findings(drive)
                    .iter()
                    .filter(|f| f.hazard.severity() != Severity::Refuse)
                {
                    ui.colored_label(WARN, format!("Warning: {}", finding.message));
                }
            }
            ui.add_space(GAP);
            let whom = if drives.len() == 1 {
                "this drive"
            } else {
                "these drives"
            };
            ui.label(RichText::new(format!("Everything on {whom} will be erased.")).strong());
            let mut names_ok = true;
            if let Screen::Confirm { typed } = &mut self.screen {
                for (drive, typed) in system.iter().zip(typed.iter_mut()) {
                    let name = &drive.name;
                    ui.add_space(GAP);
                    ui.label(format!("{} ({name})", t::TYPE_NAME));
                    ui.add(egui::TextEdit::singleline(typed).hint_text(name.as_str()))
                        .on_hover_text(t::TYPE_NAME);
                    names_ok &= judge_drive(drive, facts.as_ref(), unsafe_mode, Some(typed.trim()), true).is_allowed();
                }
            }
            ui.add_space(GAP);
            ui.horizontal(|ui| {
                let erase = egui::Button::new(RichText::new(t::ERASE_AND_WRITE).strong()).fill(BAD);
                if ui.add_enabled(names_ok, erase).clicked() {
                    decision = Some(true);
                }
                if ui.button(t::CANCEL).clicked() {
                    decision = Some(false);
                }
            });
        });
        match decision {
            Some(true) => self.start_write(),
            Some(false) => self.screen = Screen::Choose,
            None => {}
        }
    }

    fn writing_ui(&mut self, ui: &mut Ui) {
        let image = self
            .image_path()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Screen::Writing {
            progress,
            asking_cancel,
            cancel_sent,
            started,
        } = &mut self.screen
        else {
            return;
        };
        ui.add_space(GAP);
        ui.label(RichText::new(format!("Writing {image}")).size(HEADING).strong());
        ui.add_space(GAP);
        match progress {
            None if !*started => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(t::STARTING);
                });
            }
            None => {
                ui.spinner();
            }
            Some(progress) => progress_ui(ui, progress),
        }
        ui.add_space(GAP * 2.0);
        let mut cancel_now = false;
        if *cancel_sent {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Stopping…");
            });
        } else if *asking_cancel {
            ui.label(t::CANCEL_QUESTION);
            ui.horizontal(|ui| {
                if ui.button(t::YES_CANCEL).clicked() {
                    cancel_now = true;
                }
                if ui.button(t::KEEP_WRITING).clicked() {
                    *asking_cancel = false;
                }
            });
        } else if ui.button(RichText::new(t::CANCEL_WRITE).size(16.0)).clicked() {
            *asking_cancel = true;
        }
        if cancel_now {
            self.cancel_write();
        }
    }

    fn result_ui(&mut self, ui: &mut Ui) {
        ui.add_space(GAP);
        let mut back = None;
        match &self.screen {
            Screen::Finished(result) => {
                let worst = Self::worst(result);
                let (title, color) = match worst {
                    None if result.targets.iter().all(|t| t.outcome == Outcome::Verified) => (t::ALL_VERIFIED, OK),
                    None => (t::ALL_WRITTEN, OK),
                    Some(_) => (t::SOME_FAILED, BAD),
                };
                ui.label(RichText::new(title).size(24.0).strong().color(color));
                ui.add_space(GAP);
                for target in &result.targets {
                    let name = target.target.display();
                    let safe_to_remove = target.ejected.as_ref().is_some_and(Eject::is_safe_to_remove);
                    match &target.outcome {
                        Outcome::Verified => {
                            let safe = if safe_to_remove {
                                format!(" — {}", t::SAFE_TO_REMOVE)
                            } else {
                                String::new()
                            };
                            ui.colored_label(OK, RichText::new(format!("{name}: verified{safe}")).size(16.0));
                        }
                        Outcome::Written => {
                            ui.colored_label(OK, RichText::new(format!("{name}: written")).size(16.0));
                        }
                        Outcome::Refused { refusal } => {
                            let reason = crate::wording::refusal(refusal);
                            ui.colored_label(BAD, RichText::new(format!("{name}: {reason}")).size(16.0));
                        }
                        Outcome::Failed { message, .. } => {
                            ui.colored_label(BAD, RichText::new(message.clone()).size(16.0));
                        }
                    }
                    if let Some(warning) = &target.warning {
                        ui.colored_label(WARN, RichText::new(warning.clone()).size(16.0));
                    }
                    if let Some(eject) = &target.ejected {
                        // The drive's own name ("sdb"), as the OS's eject tools call it.
                        let drive = target
                            .target
                            .file_name()
                            .map_or_else(|| name.to_string(), |n| n.to_string_lossy().into_owned());
                        let note = t::eject_note(&drive, eject);
                        if safe_to_remove {
                            ui.label(RichText::new(note).weak());
                        } else {
                            ui.colored_label(WARN, note);
                        }
                    }
                }
                ui.add_space(GAP);
                ui.label(format!(
                    "{} in {:.0} s",
                    graver_image::human::binary(result.image_len),
                    result.elapsed_secs.max(1.0)
                ));
                if let HashState::Done(hashes) = &self.hash {
                    ui.horizontal(|ui| {
                        ui.label("SHA-256 of the image");
                        ui.monospace(graver_image::sha256_hex(&hashes.image));
                    });
                }
                if worst.is_some() {
                    ui.add_space(GAP);
                    ui.label(t::hint(worst));
                }
            }
            Screen::Failed { message, hint } => {
                ui.label(RichText::new(t::FAILED).size(24.0).strong().color(BAD));
                ui.add_space(GAP);
                ui.label(RichText::new(message).size(16.0));
                ui.add_space(GAP);
                ui.label(*hint);
            }
            _ => {}
        }
        ui.add_space(GAP * 2.0);
        ui.horizontal(|ui| {
            let again = if matches!(self.screen, Screen::Failed { .. }) {
                t::TRY_AGAIN
            } else {
                t::FLASH_ANOTHER
            };
            if ui.button(RichText::new(again).size(16.0)).clicked() {
                back = Some(true);
            }
            if ui.button(RichText::new(t::NEW_IMAGE).size(16.0)).clicked() {
                back = Some(false);
            }
        });
        if let Some(keep_image) = back {
            self.back_to_choose(keep_image);
        }
    }
}

/// A titled card.
fn section(ui: &mut Ui, title: &str, content: impl FnOnce(&mut Ui)) {
    egui::Frame::group(ui.style()).inner_margin(GAP).show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.label(RichText::new(title).size(HEADING).strong());
        ui.add_space(6.0);
        content(ui);
    });
}

/// A small colored tag.
fn badge(ui: &mut Ui, text: &str, color: Color32) -> egui::Response {
    egui::Frame::new()
        .fill(color.gamma_multiply(0.2))
        .stroke((1.0, color))
        .corner_radius(6.0)
        .inner_margin(egui::Margin::symmetric(6, 1))
        .show(ui, |ui| ui.label(RichText::new(text).small().color(color)))
        .inner
}

/// Big, readable progress: one bar per drive, with phase, speed and time left.
fn progress_ui(ui: &mut Ui, progress: &Progress) {
    let phase = progress.phase.label();
    let mut line = format!("{phase} · {}/s", graver_image::human::binary(progress.rate as u64));
    if let Some(eta) = progress.eta_secs {
        let secs = eta.round() as u64;
        line.push_str(&format!(" · {}:{:02} left", secs / 60, secs % 60));
    }
    ui.label(RichText::new(line).size(HEADING));
    if progress.phase == Phase::Stalled {
        ui.colored_label(WARN, t::STALLED);
    }
    ui.add_space(6.0);
    for device in &progress.devices {
        let fraction = match device.phase {
            Phase::Done => 1.0,
            Phase::Failed => 0.0,
            _ if device.phase == progress.phase => progress.fraction as f32,
            _ => progress.fraction as f32,
        };
        let text = format!(
            "{} — {} · {} of {} · {:.0}%",
            device.name,
            device.phase.label(),
            graver_image::human::binary(device.bytes),
            progress.total.describe(),
            fraction * 100.0
        );
        ui.add(egui::ProgressBar::new(fraction).text(text).desired_height(30.0));
        ui.add_space(6.0);
    }
}
